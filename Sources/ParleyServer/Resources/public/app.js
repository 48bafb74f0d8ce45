// Parley's web app: plain DOM, no framework, no build step. All user text goes in as text.
import * as e2e from "/e2e.js";

const io = globalThis.io;
const $ = (id) => document.getElementById(id);
const STORED_IDS_BELOW = 2 ** 52; // ids of messages that are never stored start here

const state = {
  token: localStorage.getItem("parley.token"),
  guestName: localStorage.getItem("parley.guest"),
  me: null,
  socket: null,
  conversations: new Map(), // "#room" or "@handle" → conversation
  active: null,
  pending: new Map(), // clientId → { conversation, payload, text }
  receipts: new Map(), // message id → "delivered" | "read"
  lastTyping: 0,
};

// ---- helpers ------------------------------------------------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Text with its http(s) links as anchors; everything else stays text. */
function linkify(text) {
  const fragment = document.createDocumentFragment();
  for (const part of text.split(/(https?:\/\/[^\s<>"']+)/)) {
    if (/^https?:\/\//.test(part)) {
      const link = element("a", "", part);
      link.href = part;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      fragment.append(link);
    } else if (part) {
      fragment.append(document.createTextNode(part));
    }
  }
  return fragment;
}

function time(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function setStatus(status) {
  const node = $("status");
  node.textContent = status;
  node.className = "status " + status;
}

async function api(path, body, token) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body || {}) });
  return response.json().catch(() => ({}));
}

/** Sends a command; resolves with its ack ({ok, …}). */
function command(event, payload) {
  return new Promise((resolve) => state.socket.emit(event, payload, resolve));
}

// ---- sign in ------------------------------------------------------------------------------

function showSignIn(error) {
  if (!$("guest-name").value) {
    fetch("/api/guest-name").then((r) => r.json()).then((reply) => { if (!$("guest-name").value) $("guest-name").value = reply.name; }).catch(() => {});
  }
  $("signin").hidden = false;
  $("app").hidden = true;
  $("signout").hidden = true;
  $("account-error").textContent = error || "";
  setStatus("offline");
}

$("guest-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.guestName = $("guest-name").value.trim();
  localStorage.setItem("parley.guest", state.guestName);
  connect();
});

async function signIn(path) {
  const reply = await api(path, { handle: $("handle").value, password: $("password").value });
  if (!reply.token) {
    $("account-error").textContent = (reply.error && reply.error.message) || "That did not work.";
    return;
  }
  state.token = reply.token;
  localStorage.setItem("parley.token", reply.token);
  localStorage.removeItem("parley.guest");
  connect();
}

$("account-form").addEventListener("submit", (event) => { event.preventDefault(); signIn("/api/login"); });
$("register").addEventListener("click", () => { if ($("account-form").reportValidity()) signIn("/api/register"); });

$("signout").addEventListener("click", async () => {
  if (state.token) await api("/api/logout", {}, state.token);
  localStorage.removeItem("parley.token");
  localStorage.removeItem("parley.guest");
  location.reload();
});

// ---- connection -----------------------------------------------------------------------------

function connect() {
  const auth = state.token ? { token: state.token } : state.guestName ? { name: state.guestName } : {};
  const socket = io({ auth });
  state.socket = socket;
  setStatus("connecting");
  socket.on("connect", onConnect);
  socket.on("disconnect", () => setStatus("reconnecting"));
  socket.on("connect_error", (error) => {
    if (error.data && error.data.code === "unauthorized") {
      localStorage.removeItem("parley.token");
      state.token = null;
    }
    socket.disconnect();
    showSignIn(error.message);
  });
  socket.on("message", (message) => addMessage(room("#" + message.room), message));
  socket.on("dm", async (message) => {
    await E2E.whenReady;
    await openMessage(message);
    const other = message.from.id === (state.me && state.me.id) ? message.to : message.from;
    addMessage(room("@" + other.name), message);
  });
  socket.on("room:members", ({ room: name, members }) => {
    room("#" + name).members = members;
    if (state.active === "#" + name) renderHeader();
  });
  socket.on("room:notice", ({ room: name, text }) => addNotice(room("#" + name), text));
  socket.on("room:removed", ({ room: name, user }) => addNotice(room("#" + name), `${user.name} was removed`));
  socket.on("room:cleared", ({ room: name }) => {
    const conversation = room("#" + name);
    conversation.messages = [];
    conversation.ids.clear();
    conversation.more = false;
    if (state.active === conversation.key) renderMessages();
  });
  socket.on("typing", showTyping);
  socket.on("receipt", ({ id, status }) => {
    if (state.receipts.get(id) !== "read") state.receipts.set(id, status);
    renderTicks(id);
  });
  socket.on("friend:request", refreshFriends);
  socket.on("friend:update", refreshFriends);
}

async function onConnect() {
  setStatus("connected");
  $("signin").hidden = true;
  $("app").hidden = false;
  $("signout").hidden = false;
  const reply = await command("me", {});
  state.me = reply.user;
  if (state.me.kind === "account" && !E2E.device) await setupE2E();
  E2E.ready();
  $("whoami").textContent = `${state.me.name} (${state.me.kind})`;
  if (state.me.kind === "guest") localStorage.setItem("parley.guest", state.me.name);
  $("friends-section").hidden = state.me.kind !== "account";
  if (state.me.kind === "account") refreshFriends();
  // Guests are in no room after a reconnection; accounts are put back by the server.
  for (const conversation of state.conversations.values()) {
    if (conversation.kind === "room") await command("room:join", { room: conversation.name });
  }
  // Accounts come back to their rooms (the server rejoins them); show one of them, or the lobby.
  if (!state.conversations.size) await joinRoom("lobby");
  else if (!state.active) select(state.conversations.keys().next().value);
  // Messages not acknowledged before the connection dropped: the server drops repeats by clientId.
  for (const [clientId, item] of state.pending) {
    state.socket.emit(item.event, item.payload, (ack) => settle(clientId, ack));
  }
}

window.addEventListener("offline", () => setStatus("offline"));

// ---- conversations --------------------------------------------------------------------------

function room(key) {
  if (!state.conversations.has(key)) {
    state.conversations.set(key, {
      key, kind: key[0] === "#" ? "room" : "dm", name: key.slice(1),
      messages: [], ids: new Set(), unread: 0, members: [], more: true, loading: false,
    });
    renderSidebar();
  }
  return state.conversations.get(key);
}

async function joinRoom(name) {
  const reply = await command("room:join", { room: name });
  if (!reply.ok) { alert(reply.error.message); return; }
  const conversation = room("#" + reply.room.name);
  conversation.members = reply.members;
  select(conversation.key);
}

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("join-room").value.trim();
  if (name) joinRoom(name);
  $("join-room").value = "";
});

function select(key) {
  state.active = key;
  const conversation = state.conversations.get(key);
  conversation.unread = 0;
  renderSidebar();
  renderHeader();
  renderMessages();
  if (!conversation.loaded) loadHistory(conversation);
  markRead(conversation);
}

async function loadHistory(conversation) {
  if (conversation.loading || !conversation.more) return;
  conversation.loading = true;
  const oldest = conversation.messages.find((message) => !message.notice && message.id < STORED_IDS_BELOW);
  const where = conversation.kind === "room" ? { room: conversation.name } : { with: conversation.name };
  const reply = await command("history:get", { ...where, before: oldest ? oldest.id : undefined, limit: 50 });
  conversation.loading = false;
  conversation.loaded = true;
  if (!reply.ok) return;
  conversation.more = reply.more;
  for (const message of reply.messages) insert(conversation, await openMessage(message));
  if (state.active === conversation.key) renderMessages(true);
}

$("messages").addEventListener("scroll", () => {
  const conversation = state.conversations.get(state.active);
  if (conversation && $("messages").scrollTop < 40) loadHistory(conversation);
});

/** Puts a message in id order; false when it is already there. */
function insert(conversation, message) {
  if (conversation.ids.has(message.id)) return false;
  conversation.ids.add(message.id);
  const messages = conversation.messages;
  let index = messages.length;
  while (index > 0 && messages[index - 1].id > message.id) index--;
  messages.splice(index, 0, message);
  return true;
}

function addMessage(conversation, message) {
  if (!insert(conversation, message)) return;
  const mine = state.me && message.from.id === state.me.id;
  if (!mine && !message.ephemeral) state.socket.emit("message:delivered", { ids: [message.id], ...thisDevice() });
  if (state.active === conversation.key) {
    renderMessages();
    markRead(conversation);
  } else if (!mine) {
    conversation.unread++;
    renderSidebar();
  }
}

function addNotice(conversation, text) {
  conversation.messages.push({ notice: text, id: (conversation.messages.at(-1) || { id: 0 }).id + 1e-6 });
  if (state.active === conversation.key) renderMessages();
}

function markRead(conversation) {
  if (!state.me || !document.hasFocus()) return;
  const ids = conversation.messages
    .filter((m) => !m.notice && !m.ephemeral && m.from.id !== state.me.id && !m.readSent)
    .map((m) => { m.readSent = true; return m.id; });
  for (let start = 0; start < ids.length; start += 100) {
    state.socket.emit("message:read", { ids: ids.slice(start, start + 100), ...thisDevice() });
  }
}
window.addEventListener("focus", () => { const c = state.conversations.get(state.active); if (c) markRead(c); });

// ---- sending --------------------------------------------------------------------------------

function send(fields) {
  const conversation = state.conversations.get(state.active);
  if (!conversation) return;
  if (conversation.kind === "dm" && E2E.device) sendEncrypted(conversation, fields);
  else sendPlain(conversation, fields);
}

/** Sends a message as it is (a room's, or a direct one without end-to-end encryption). */
function sendPlain(conversation, fields) {
  const clientId = crypto.randomUUID();
  const event = conversation.kind === "room" ? "message:send" : "dm:send";
  const payload = {
    ...(conversation.kind === "room" ? { room: conversation.name } : { to: conversation.name }), clientId, text: fields.text,
    ...(fields.image ? { image: fields.image } : {}),
  };
  state.pending.set(clientId, { event, payload, conversation: conversation.key, text: fields.text || "[image]" });
  renderMessages();
  state.socket.emit(event, payload, (ack) => settle(clientId, ack));
}

/** Refusals that change nothing and pass (milliseconds before sending again): the message stays
 *  pending, says why, and goes again with its clientId, so the server stores it once. */
const SEND_AGAIN_AFTER = { store_unavailable: 2000, rate_limited: 1000 };

function settle(clientId, ack) {
  const item = state.pending.get(clientId);
  if (!item) return;
  const again = ack && !ack.ok && SEND_AGAIN_AFTER[ack.error.code];
  if (again) {
    item.held = ack.error.message;
    renderMessages();
    // Once disconnected, the reconnection sends every pending message instead.
    setTimeout(() => {
      if (state.pending.get(clientId) === item && state.socket.connected) {
        state.socket.emit(item.event, item.payload, (reply) => settle(clientId, reply));
      }
    }, again);
    return;
  }
  state.pending.delete(clientId);
  if (ack && ack.ok && item.plaintext !== undefined) {
    Object.assign(ack.message, { text: item.plaintext, e2eState: "ok", sealedImage: item.sealedImage });
  }
  if (ack && ack.ok) addMessage(state.conversations.get(item.conversation), ack.message);
  else if (ack) alert(ack.error.message);
  renderMessages();
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value;
  if (!text.trim()) return;
  $("text").value = "";
  send({ text });
});

async function sendImage(file) {
  if (!file || !file.type.startsWith("image/")) return;
  send({ text: "", image: await file.arrayBuffer(), imageType: file.type });
}
$("image").addEventListener("change", () => { sendImage($("image").files[0]); $("image").value = ""; });
$("text").addEventListener("paste", (event) => {
  const file = [...(event.clipboardData || {}).files || []].find((f) => f.type.startsWith("image/"));
  if (file) { event.preventDefault(); sendImage(file); }
});

$("text").addEventListener("input", () => {
  const conversation = state.conversations.get(state.active);
  if (!conversation || Date.now() - state.lastTyping < 2000) return;
  state.lastTyping = Date.now();
  state.socket.emit("typing", conversation.kind === "room" ? { room: conversation.name } : { to: conversation.name }, () => {});
});

let typingTimer;
function showTyping({ room: name, from, typing }) {
  if (state.me && from.id === state.me.id) return;
  const key = name !== undefined ? "#" + name : "@" + from.name;
  if (key !== state.active) return;
  $("typing").textContent = typing ? `${from.name} is typing…` : "";
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => { $("typing").textContent = ""; }, 3000);
}

// ---- friends ----------------------------------------------------------------------------------

async function refreshFriends() {
  const reply = await command("friend:list", {});
  if (!reply.ok) return;
  const requests = $("requests");
  requests.replaceChildren();
  for (const user of reply.incoming) {
    const item = element("li", "", `${user.name} wants to be friends `);
    const accept = element("button", "", "Accept");
    accept.onclick = async () => { await command("friend:accept", { handle: user.name }); refreshFriends(); };
    const reject = element("button", "link", "Reject");
    reject.onclick = async () => { await command("friend:reject", { handle: user.name }); refreshFriends(); };
    item.append(accept, reject);
    requests.append(item);
  }
  for (const user of reply.outgoing) requests.append(element("li", "muted", `waiting for ${user.name}`));
  const friends = $("friends");
  friends.replaceChildren();
  for (const user of reply.friends) {
    const item = element("li");
    const open = element("span", "name", "@" + user.name);
    open.tabIndex = 0;
    open.onclick = () => { room("@" + user.name); select("@" + user.name); };
    item.append(open);
    const block = element("button", "link", "Block");
    block.title = `Block ${user.name}`;
    block.onclick = async (event) => {
      event.stopPropagation();
      if (confirm(`Block ${user.name}? They will not be able to write to you.`)) { await command("block", { handle: user.name }); refreshFriends(); }
    };
    item.append(block);
    friends.append(item);
  }
  for (const user of reply.blocked) {
    const item = element("li", "muted", `${user.name} (blocked) `);
    const unblock = element("button", "link", "Unblock");
    unblock.onclick = async () => { await command("unblock", { handle: user.name }); refreshFriends(); };
    item.append(unblock);
    friends.append(item);
  }
}

$("friend-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const handle = $("friend-handle").value.trim();
  if (!handle) return;
  const reply = await command("friend:request", { handle });
  if (!reply.ok) alert(reply.error.message);
  $("friend-handle").value = "";
  refreshFriends();
});

// ---- rendering --------------------------------------------------------------------------------

function renderSidebar() {
  const list = $("rooms");
  list.replaceChildren();
  for (const conversation of state.conversations.values()) {
    const item = element("li", conversation.key === state.active ? "active" : "", conversation.key);
    if (conversation.unread) item.append(element("span", "badge", String(conversation.unread)));
    item.onclick = () => select(conversation.key);
    item.tabIndex = 0;
    item.onkeydown = (event) => { if (event.key === "Enter") select(conversation.key); };
    list.append(item);
  }
}

function renderHeader() {
  const conversation = state.conversations.get(state.active);
  $("title").textContent = conversation ? conversation.key : "Pick or join a room";
  $("members").textContent = conversation && conversation.kind === "room"
    ? conversation.members.map((m) => m.name).join(", ")
    : "";
  $("verify").hidden = !(conversation && conversation.kind === "dm" && E2E.device);
  $("safety").hidden = true;
  $("key-warning").hidden = true;
}

function renderMessages(keepPosition) {
  const list = $("messages");
  const conversation = state.conversations.get(state.active);
  const fromBottom = list.scrollHeight - list.scrollTop;
  list.replaceChildren();
  if (!conversation) return;
  for (const message of conversation.messages) list.append(message.notice ? element("li", "notice", message.notice) : messageElement(message));
  for (const item of state.pending.values()) {
    if (item.conversation !== conversation.key) continue;
    const node = element("li", "message mine pending");
    node.append(element("div", "meta", item.held ? `not sent yet: ${item.held} Trying again…` : "sending…"), element("div", "text", item.text));
    list.append(node);
  }
  list.scrollTop = keepPosition ? list.scrollHeight - fromBottom : list.scrollHeight;
}

function messageElement(message) {
  const mine = state.me && message.from.id === state.me.id;
  const node = element("li", "message" + (mine ? " mine" : ""));
  node.dataset.id = message.id;
  const meta = element("div", "meta");
  meta.append(element("span", "sender", message.from.name), element("time", "", time(message.sentAt)));
  if (mine) meta.append(element("span", "ticks"));
  node.append(meta);
  if (message.e2eState === "ok") meta.append(element("span", "lock", "🔒"));
  if (message.e2eState && message.e2eState !== "ok") {
    node.append(element("div", "text failed", {
      failed: "🔒 This message could not be decrypted: it was changed, or not sealed for this device.",
      elsewhere: "🔒 Encrypted for your other devices, not this one.",
      unreadable: "🔒 An encrypted message: sign in with an account to read it.",
    }[message.e2eState]));
  } else if (message.text) {
    const body = element("div", "text");
    body.append(linkify(message.text));
    node.append(body);
  }
  if (message.image && (!message.e2e || message.e2eState === "ok")) node.append(imageElement(message));
  if (mine) renderTicks(message.id, node);
  return node;
}

function imageElement(message) {
  const image = element("img");
  image.alt = `image from ${message.from.name}`;
  const show = (data) => {
    image.src = URL.createObjectURL(new Blob([data], { type: message.image.type }));
    image.onclick = () => window.open(image.src, "_blank", "noopener");
  };
  if (message.sealedImage) {
    // Encrypted once for every device; its key came in this device's sealed copy.
    const { key, nonce, type } = message.sealedImage;
    const ids = { senderUser: message.from.id, messageId: message.clientId || "" };
    command("image:get", { id: message.id })
      .then((reply) => reply.ok ? e2e.openImage({ key, nonce, ciphertext: bytes(reply.data) }, ids) : null)
      .then((data) => { if (data) image.src = URL.createObjectURL(new Blob([data], { type })); })
      .catch(() => image.replaceWith(element("div", "text failed", "🔒 This image could not be decrypted: it was changed.")));
    image.onclick = () => window.open(image.src, "_blank", "noopener");
    return image;
  }
  if (message.image.data) show(message.image.data);
  else command("image:get", { id: message.id }).then((reply) => { if (reply.ok) show(reply.data); });
  return image;
}

function renderTicks(id, node) {
  node = node || document.querySelector(`.message[data-id="${id}"]`);
  const ticks = node && node.querySelector(".ticks");
  if (!ticks) return;
  const status = state.receipts.get(id);
  ticks.textContent = status ? "✓✓" : "✓";
  ticks.className = "ticks" + (status === "read" ? " read" : "");
  ticks.title = status || "sent";
}

// ---- end-to-end encryption (docs/E2E.md) ------------------------------------------------------

const E2E = {
  device: null, // { deviceId, keys: CryptoKeyPair with a private key that cannot be exported }
  whenReady: null,
  ready: () => {},
};
E2E.whenReady = new Promise((resolve) => { E2E.ready = resolve; });

const bytes = (value) => (value instanceof Uint8Array ? value : new Uint8Array(value));
const toBase64 = (data) => btoa(Array.from(data, (byte) => String.fromCharCode(byte)).join(""));
const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/** The device this connection acknowledges messages for, as `message:delivered` takes it. */
const thisDevice = () => (E2E.device ? { device: E2E.device.deviceId } : {});

function keyStore(mode, run) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open("parley-e2e", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("identities");
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const request = run(open.result.transaction("identities", mode).objectStore("identities"));
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    };
  });
}

/** This browser profile's device for the signed-in account: made once, kept in IndexedDB. */
async function setupE2E() {
  const slot = `${location.origin}/${state.me.id}`;
  let device = await keyStore("readonly", (store) => store.get(slot));
  if (!device) {
    device = { deviceId: "web-" + crypto.randomUUID().slice(0, 8), keys: await e2e.generateIdentity() };
    await keyStore("readwrite", (store) => store.put(device, slot));
  }
  const reply = await command("device:publish", { deviceId: device.deviceId, publicKey: await e2e.rawPublic(device.keys.publicKey) });
  if (reply.ok) E2E.device = device;
}

async function deviceList(handle) {
  const reply = await command("device:list", { handle });
  return reply.ok ? { user: reply.user, devices: reply.devices.map((d) => ({ ...d, publicKey: bytes(d.publicKey) })) } : null;
}

// Senders' devices, asked once per sender while reading (a page of history is one request, not
// fifty); asked again when a message does not open, in case a key changed meanwhile.
const senderDevices = new Map();
function cachedDeviceList(handle, fresh) {
  if (fresh || !senderDevices.has(handle)) senderDevices.set(handle, deviceList(handle));
  return senderDevices.get(handle);
}

// The keys seen for other accounts' devices, and which the user verified (trust on first use).
const knownSlot = () => `parley.known.${state.me.id}`;
const known = () => JSON.parse(localStorage.getItem(knownSlot()) || "{}");
function changedDevices(user, devices) {
  const seen = known()[user.id] || {};
  return devices.filter((d) => seen[d.deviceId] && seen[d.deviceId].key !== e2e.toHex(d.publicKey));
}
function acceptDevices(user, devices, verified) {
  const all = known();
  const seen = all[user.id] || {};
  for (const d of devices) {
    const key = e2e.toHex(d.publicKey);
    const was = seen[d.deviceId];
    seen[d.deviceId] = { key, verified: verified ?? Boolean(was && was.key === key && was.verified) };
  }
  all[user.id] = seen;
  localStorage.setItem(knownSlot(), JSON.stringify(all));
}

/** Reads an encrypted message for this device, in place: its text, or why it cannot be read. */
async function openMessage(message) {
  if (!message.e2e) return message;
  message.text = "";
  if (!E2E.device) return Object.assign(message, { e2eState: "unreadable" });
  const copy = message.e2e.copies.find((c) => c.device === E2E.device.deviceId);
  if (!copy) return Object.assign(message, { e2eState: "elsewhere" });
  const aad = e2e.associatedData({
    senderUser: message.from.id, senderDevice: message.e2e.senderDevice, recipientUser: state.me.id,
    recipientDevice: E2E.device.deviceId, messageId: message.clientId || "",
  });
  const sealed = { ephemeralPublic: bytes(copy.ephemeralPublic), nonce: bytes(copy.nonce), ciphertext: bytes(copy.ciphertext) };
  for (const fresh of [false, true]) {
    try {
      const sender = await cachedDeviceList(message.from.name, fresh);
      const device = sender && sender.devices.find((d) => d.deviceId === message.e2e.senderDevice);
      if (!device) throw new Error("the sender's device is unknown");
      const plaintext = await e2e.open(sealed, aad, E2E.device.keys, await e2e.importPublic(device.publicKey));
      const content = JSON.parse(new TextDecoder().decode(plaintext));
      const image = content.image && message.image
        ? { key: fromBase64(content.image.key), nonce: fromBase64(content.image.nonce), type: content.image.type }
        : undefined;
      return Object.assign(message, { text: content.text || "", e2eState: "ok", sealedImage: image });
    } catch {
      // Asked again once, with the sender's current devices.
    }
  }
  return Object.assign(message, { e2eState: "failed" });
}

/** Seals a message (its text, and its image's key) for each device of the friend and of this
 *  account, and sends it with the image encrypted once. A key that changed since it was last
 *  seen is shown first, and sending needs the user's confirmation. */
async function sendEncrypted(conversation, fields) {
  const them = await deviceList(conversation.name);
  if (!them) return;
  if (!them.devices.length) {
    if (fields.image && !confirm(`${conversation.name} has no device keys yet: send this image without end-to-end encryption?`)) return;
    addNotice(conversation, `${conversation.name} has no device keys yet: sent without end-to-end encryption`);
    sendPlain(conversation, fields);
    return;
  }
  const changed = changedDevices(them.user, them.devices);
  if (changed.length) {
    $("key-warning-text").textContent =
      `The security key of ${conversation.name} (device ${changed.map((d) => d.deviceId).join(", ")}) has changed. ` +
      "Compare safety numbers with them before you trust it. Your message was not sent.";
    $("key-warning").hidden = false;
    $("accept-key").onclick = () => {
      acceptDevices(them.user, them.devices, false);
      $("key-warning").hidden = true;
      sendEncrypted(conversation, fields);
    };
    return;
  }
  acceptDevices(them.user, them.devices);
  const mine = (await deviceList(state.me.name)) || { devices: [] };
  const clientId = crypto.randomUUID();
  const content = { text: fields.text };
  let sealedImage, encryptedImage;
  if (fields.image) {
    const sealed = await e2e.sealImage(bytes(fields.image), { senderUser: state.me.id, messageId: clientId });
    sealedImage = { key: sealed.key, nonce: sealed.nonce, type: fields.imageType };
    encryptedImage = sealed.ciphertext;
    content.image = { type: fields.imageType, key: toBase64(sealed.key), nonce: toBase64(sealed.nonce) };
  }
  const plaintext = new TextEncoder().encode(JSON.stringify(content));
  const copies = [];
  for (const [owner, device] of [...them.devices.map((d) => [them.user.id, d]), ...mine.devices.map((d) => [state.me.id, d])]) {
    const aad = e2e.associatedData({
      senderUser: state.me.id, senderDevice: E2E.device.deviceId, recipientUser: owner, recipientDevice: device.deviceId, messageId: clientId,
    });
    const sealed = await e2e.seal(plaintext, aad, E2E.device.keys, await e2e.importPublic(device.publicKey));
    copies.push({ device: device.deviceId, ...sealed });
  }
  const payload = { to: conversation.name, clientId, e2e: { senderDevice: E2E.device.deviceId, copies } };
  if (encryptedImage) payload.image = encryptedImage;
  state.pending.set(clientId, {
    event: "dm:send", payload, conversation: conversation.key, text: fields.text || "[image]", plaintext: fields.text, sealedImage,
  });
  renderMessages();
  state.socket.emit("dm:send", payload, (ack) => settle(clientId, ack));
}

$("verify").addEventListener("click", async () => {
  const conversation = state.conversations.get(state.active);
  const them = conversation && await deviceList(conversation.name);
  if (!them) return;
  const changed = new Set(changedDevices(them.user, them.devices).map((d) => d.deviceId));
  const seen = known()[them.user.id] || {};
  const mine = await e2e.rawPublic(E2E.device.keys.publicKey);
  const lines = [];
  for (const d of them.devices) {
    const note = changed.has(d.deviceId) ? " (key changed)" : seen[d.deviceId] && seen[d.deviceId].verified ? " (verified)" : "";
    lines.push(`${conversation.name}/${d.deviceId}${note}: ${await e2e.safetyNumber(mine, d.publicKey)}`);
  }
  $("safety-numbers").textContent = lines.length ? lines.join("\n") : `${conversation.name} has no device keys yet.`;
  $("safety").hidden = false;
  $("mark-verified").onclick = () => {
    acceptDevices(them.user, them.devices, true);
    $("safety").hidden = true;
  };
});

// ---- start --------------------------------------------------------------------------------------

if (state.token || state.guestName !== null) connect();
else showSignIn();
