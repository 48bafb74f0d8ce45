// The widget's chat: a guest in one room, its messages and a composer. Text only, as text.
const room = new URLSearchParams(location.search).get("room") || "lobby";
const $ = (id) => document.getElementById(id);
const name = localStorage.getItem("parley.widget.name");
const socket = globalThis.io({ auth: name ? { name } : {} });
let me = null;
const seen = new Set();

$("title").textContent = "#" + room;

function show(message) {
  if (seen.has(message.id)) return;
  seen.add(message.id);
  const item = document.createElement("li");
  item.className = "message" + (me && message.from.id === me.id ? " mine" : "");
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = message.from.name;
  const text = document.createElement("div");
  text.className = "text";
  text.textContent = message.text || (message.image ? "[image]" : "");
  item.append(meta, text);
  $("messages").append(item);
  $("messages").scrollTop = $("messages").scrollHeight;
}

socket.on("connect", () => {
  $("status").textContent = "connected";
  $("status").className = "status connected";
  socket.emit("me", {}, (reply) => {
    me = reply.user;
    localStorage.setItem("parley.widget.name", me.name);
    socket.emit("room:join", { room }, () => {
      socket.emit("history:get", { room, limit: 30 }, (page) => { if (page.ok) page.messages.forEach(show); });
    });
  });
});
socket.on("disconnect", () => { $("status").textContent = "reconnecting"; $("status").className = "status reconnecting"; });
socket.on("message", (message) => { if (message.room === room) show(message); });

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value;
  if (!text.trim()) return;
  $("text").value = "";
  socket.emit("message:send", { room, text, clientId: crypto.randomUUID() }, (ack) => { if (ack.ok) show(ack.message); });
});
