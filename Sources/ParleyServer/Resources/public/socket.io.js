/*
 * Parley's Socket.IO client for browsers (Socket.IO v5 over Engine.IO v4).
 *
 * Load it with <script src="/socket.io/socket.io.js"></script>, or import it from an ES module
 * for its effect; either way it defines the global `io`:
 *
 *   const socket = io();                       // this page's origin, namespace "/"
 *   const admin = io("/admin", { auth: { token } });
 *   socket.on("chat message", (msg) => …);
 *   socket.emit("chat message", "hi", (reply) => …);   // the last function is the ack
 *   socket.connected, socket.id, socket.off(…), socket.once(…), socket.disconnect()
 *
 * Transports: WebSocket, with HTTP long-polling when WebSocket cannot open. Reconnection with
 * exponential backoff after a lost connection; emits made while disconnected are sent on
 * connecting. Binary arguments: ArrayBuffer and typed arrays (received as ArrayBuffer).
 */
(function (root) {
  "use strict";

  var RECORD_SEPARATOR = "\x1e";

  // ---- events -----------------------------------------------------------------------------

  function Emitter() {
    this._listeners = {};
  }
  Emitter.prototype.on = function (event, listener) {
    (this._listeners[event] = this._listeners[event] || []).push(listener);
    return this;
  };
  Emitter.prototype.off = function (event, listener) {
    if (event === undefined) { this._listeners = {}; return this; }
    if (listener === undefined) { delete this._listeners[event]; return this; }
    this._listeners[event] = (this._listeners[event] || []).filter(function (candidate) {
      return candidate !== listener && candidate._original !== listener;
    });
    return this;
  };
  Emitter.prototype.once = function (event, listener) {
    var self = this;
    function once() {
      self.off(event, once);
      listener.apply(self, arguments);
    }
    once._original = listener;
    return this.on(event, once);
  };
  Emitter.prototype._fire = function (event, args) {
    var listeners = (this._listeners[event] || []).slice();
    for (var i = 0; i < listeners.length; i++) listeners[i].apply(this, args || []);
  };

  // ---- binary -----------------------------------------------------------------------------

  function isBinary(value) {
    return typeof ArrayBuffer !== "undefined" && (value instanceof ArrayBuffer || ArrayBuffer.isView(value));
  }
  function hasBinary(value) {
    if (isBinary(value)) return true;
    if (Array.isArray(value)) return value.some(hasBinary);
    if (value && typeof value === "object") return Object.keys(value).some(function (key) { return hasBinary(value[key]); });
    return false;
  }
  function toArrayBuffer(value) {
    if (value instanceof ArrayBuffer) return value;
    return value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength);
  }
  /** Replaces binary values by placeholders; the buffers go to `buffers` in order. */
  function deconstruct(value, buffers) {
    if (isBinary(value)) {
      buffers.push(toArrayBuffer(value));
      return { _placeholder: true, num: buffers.length - 1 };
    }
    if (Array.isArray(value)) return value.map(function (item) { return deconstruct(item, buffers); });
    if (value && typeof value === "object" && !(value instanceof Date)) {
      var copy = {};
      Object.keys(value).forEach(function (key) { copy[key] = deconstruct(value[key], buffers); });
      return copy;
    }
    return value;
  }
  function reconstruct(value, buffers) {
    if (Array.isArray(value)) return value.map(function (item) { return reconstruct(item, buffers); });
    if (value && typeof value === "object") {
      if (value._placeholder === true && typeof value.num === "number") return buffers[value.num];
      var copy = {};
      Object.keys(value).forEach(function (key) { copy[key] = reconstruct(value[key], buffers); });
      return copy;
    }
    return value;
  }
  function toBase64(buffer) {
    var bytes = new Uint8Array(buffer), text = "";
    for (var i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text);
  }
  function fromBase64(text) {
    var raw = atob(text), bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  // ---- Socket.IO packets --------------------------------------------------------------------

  var CONNECT = 0, DISCONNECT = 1, EVENT = 2, ACK = 3, CONNECT_ERROR = 4, BINARY_EVENT = 5, BINARY_ACK = 6;

  /** Encodes a packet as Engine.IO messages: its text, then its binary attachments. */
  function encodePacket(packet) {
    var buffers = [];
    var data = packet.data === undefined ? undefined : deconstruct(packet.data, buffers);
    var type = packet.type;
    if (buffers.length && type === EVENT) type = BINARY_EVENT;
    if (buffers.length && type === ACK) type = BINARY_ACK;
    var text = String(type);
    if (type === BINARY_EVENT || type === BINARY_ACK) text += buffers.length + "-";
    if (packet.nsp && packet.nsp !== "/") text += packet.nsp + ",";
    if (packet.id !== undefined) text += packet.id;
    if (data !== undefined) text += JSON.stringify(data);
    return [text].concat(buffers);
  }

  function decodePacket(text) {
    var index = 0, packet = { type: Number(text.charAt(0)), nsp: "/", attachments: 0 };
    if (!(packet.type >= 0 && packet.type <= 6)) throw new Error("unknown packet type");
    index = 1;
    if (packet.type === BINARY_EVENT || packet.type === BINARY_ACK) {
      var dash = text.indexOf("-", index);
      packet.attachments = Number(text.substring(index, dash));
      index = dash + 1;
    }
    if (text.charAt(index) === "/") {
      var comma = text.indexOf(",", index);
      packet.nsp = text.substring(index, comma === -1 ? text.length : comma);
      index = comma === -1 ? text.length : comma + 1;
    }
    var digits = "";
    while (index < text.length && text.charAt(index) >= "0" && text.charAt(index) <= "9") digits += text.charAt(index++);
    if (digits) packet.id = Number(digits);
    if (index < text.length) packet.data = JSON.parse(text.substring(index));
    return packet;
  }

  // ---- Engine.IO ------------------------------------------------------------------------------

  /**
   * One Engine.IO connection: WebSocket first, long-polling when WebSocket cannot open.
   * Fires "open", "message" (string or ArrayBuffer) and "close" (reason).
   */
  function Engine(origin, path, transports) {
    Emitter.call(this);
    this.origin = origin;
    this.path = path;
    this.transports = transports;
    this.closed = false;
    this._writeQueue = [];
    this._posting = false;
  }
  Engine.prototype = Object.create(Emitter.prototype);

  Engine.prototype.open = function () {
    if (this.transports.indexOf("websocket") !== -1 && typeof WebSocket !== "undefined") this._openWebSocket();
    else this._openPolling();
  };

  Engine.prototype._url = function (transport, sid) {
    return this.origin + this.path + "?EIO=4&transport=" + transport + (sid ? "&sid=" + encodeURIComponent(sid) : "") + "&t=" + Date.now().toString(36);
  };

  Engine.prototype._openWebSocket = function () {
    var self = this, opened = false;
    var ws = new WebSocket(this._url("websocket").replace(/^http/, "ws"));
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = function () { opened = true; };
    ws.onmessage = function (event) {
      if (typeof event.data === "string") self._onPacket(event.data);
      else self._fire("message", [event.data]);
    };
    ws.onclose = function () {
      if (!opened && !self.closed && self.transports.indexOf("polling") !== -1) self._openPolling();
      else self._close("transport close");
    };
  };

  Engine.prototype._openPolling = function () {
    var self = this;
    this.polling = true;
    fetch(this._url("polling"), { credentials: "include", cache: "no-store" })
      .then(function (response) { return response.text(); })
      .then(function (text) { self._onPayload(text); self._poll(); })
      .catch(function () { self._close("transport error"); });
  };

  Engine.prototype._poll = function () {
    var self = this;
    if (this.closed) return;
    fetch(this._url("polling", this.sid), { credentials: "include", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("poll failed");
        return response.text();
      })
      .then(function (text) { self._onPayload(text); self._poll(); })
      .catch(function () { self._close("transport error"); });
  };

  Engine.prototype._onPayload = function (text) {
    var packets = text.split(RECORD_SEPARATOR);
    for (var i = 0; i < packets.length; i++) {
      if (packets[i].charAt(0) === "b") this._fire("message", [fromBase64(packets[i].substring(1))]);
      else this._onPacket(packets[i]);
    }
  };

  Engine.prototype._onPacket = function (text) {
    switch (text.charAt(0)) {
      case "0":
        var handshake = JSON.parse(text.substring(1));
        this.sid = handshake.sid;
        this._pingDeadline = handshake.pingInterval + handshake.pingTimeout;
        this._armPingTimer();
        this._fire("open");
        break;
      case "1": this._close("transport close"); break;
      case "2": this._armPingTimer(); this._write("3"); break;
      case "4": this._fire("message", [text.substring(1)]); break;
      default: break; // noop, and anything else
    }
  };

  Engine.prototype._armPingTimer = function () {
    var self = this;
    clearTimeout(this._pingTimer);
    this._pingTimer = setTimeout(function () { self._close("ping timeout"); }, this._pingDeadline);
  };

  /** Sends Engine.IO messages: strings are text messages, ArrayBuffers binary ones. */
  Engine.prototype.send = function (messages) {
    for (var i = 0; i < messages.length; i++) this._write(typeof messages[i] === "string" ? "4" + messages[i] : messages[i]);
  };

  Engine.prototype._write = function (packet) {
    if (this.closed) return;
    if (!this.polling) { this.ws.send(packet); return; }
    this._writeQueue.push(typeof packet === "string" ? packet : "b" + toBase64(packet));
    this._flush();
  };

  Engine.prototype._flush = function () {
    var self = this;
    if (this._posting || !this._writeQueue.length || this.closed) return;
    var body = this._writeQueue.join(RECORD_SEPARATOR);
    this._writeQueue = [];
    this._posting = true;
    fetch(this._url("polling", this.sid), { method: "POST", body: body, credentials: "include", headers: { "Content-Type": "text/plain;charset=UTF-8" } })
      .then(function (response) {
        if (!response.ok) throw new Error("post failed");
        self._posting = false;
        self._flush();
      })
      .catch(function () { self._close("transport error"); });
  };

  Engine.prototype.close = function () {
    if (this.closed) return;
    if (!this.polling && this.ws && this.ws.readyState === 1) this.ws.send("1");
    else if (this.polling) this._write("1");
    this._close("forced close", true);
  };

  Engine.prototype._close = function (reason, quietly) {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this._pingTimer);
    if (this.ws) { this.ws.onclose = null; try { this.ws.close(); } catch (ignored) {} }
    if (!quietly) this._fire("close", [reason]);
  };

  // ---- Socket -------------------------------------------------------------------------------

  function Socket(uri, options) {
    Emitter.call(this);
    options = options || {};
    var base = typeof location !== "undefined" ? location.href : "http://localhost/";
    var url = new URL(uri || "/", base);
    this.origin = url.origin;
    this.nsp = url.pathname && url.pathname !== "" ? url.pathname : "/";
    this.options = {
      path: options.path || "/socket.io/",
      transports: options.transports || ["websocket", "polling"],
      reconnection: options.reconnection !== false,
      reconnectionDelay: options.reconnectionDelay || 500,
      reconnectionDelayMax: options.reconnectionDelayMax || 5000,
      auth: options.auth,
    };
    if (this.options.path.charAt(this.options.path.length - 1) !== "/") this.options.path += "/";
    this.connected = false;
    this.id = undefined;
    this._acks = {};
    this._nextAck = 0;
    this._sendBuffer = [];
    this._attempts = 0;
    this._gaveUp = false;
    if (options.autoConnect !== false) this.connect();
  }
  Socket.prototype = Object.create(Emitter.prototype);

  Socket.prototype.connect = function () {
    var self = this;
    if (this.engine && !this.engine.closed) return this;
    this._gaveUp = false;
    var engine = new Engine(this.origin, this.options.path, this.options.transports);
    this.engine = engine;
    engine.on("open", function () { self._sendConnect(); });
    engine.on("message", function (data) { self._onMessage(data); });
    engine.on("close", function (reason) { self._onClose(reason); });
    engine.open();
    return this;
  };
  Socket.prototype.open = Socket.prototype.connect;

  Socket.prototype._sendConnect = function () {
    var self = this, auth = this.options.auth;
    function send(data) { self._packet({ type: CONNECT, nsp: self.nsp, data: data }); }
    if (typeof auth === "function") auth(send); else send(auth);
  };

  Socket.prototype._packet = function (packet) {
    packet.nsp = packet.nsp || this.nsp;
    this.engine.send(encodePacket(packet));
  };

  Socket.prototype.emit = function (event) {
    var args = Array.prototype.slice.call(arguments, 1);
    var packet = { type: EVENT, nsp: this.nsp, data: [event].concat(args) };
    if (typeof args[args.length - 1] === "function") {
      packet.id = this._nextAck++;
      this._acks[packet.id] = args.pop();
      packet.data = [event].concat(args);
    }
    if (this.connected) this._packet(packet); else this._sendBuffer.push(packet);
    return this;
  };

  Socket.prototype.send = function () {
    return this.emit.apply(this, ["message"].concat(Array.prototype.slice.call(arguments)));
  };

  Socket.prototype._onMessage = function (data) {
    if (typeof data !== "string") {
      if (!this._pending) return;
      this._pending.buffers.push(data);
      if (this._pending.buffers.length === this._pending.packet.attachments) {
        var packet = this._pending.packet;
        packet.data = reconstruct(packet.data, this._pending.buffers);
        this._pending = null;
        this._onPacket(packet);
      }
      return;
    }
    var decoded;
    try { decoded = decodePacket(data); } catch (error) { return; }
    if (decoded.attachments > 0) { this._pending = { packet: decoded, buffers: [] }; return; }
    this._onPacket(decoded);
  };

  Socket.prototype._onPacket = function (packet) {
    if (packet.nsp !== this.nsp) return;
    var self = this;
    switch (packet.type) {
      case CONNECT:
        this.id = packet.data && packet.data.sid;
        this.connected = true;
        this._attempts = 0;
        this._fire("connect");
        var buffered = this._sendBuffer;
        this._sendBuffer = [];
        buffered.forEach(function (item) { self._packet(item); });
        break;
      case CONNECT_ERROR:
        var error = new Error(packet.data && packet.data.message || "connection refused");
        error.data = packet.data && packet.data.data;
        this._gaveUp = true;
        this._fire("connect_error", [error]);
        this.engine.close();
        break;
      case EVENT:
      case BINARY_EVENT:
        var args = packet.data.slice(1);
        if (packet.id !== undefined) {
          var sent = false;
          args.push(function () {
            if (sent) return;
            sent = true;
            self._packet({ type: ACK, id: packet.id, data: Array.prototype.slice.call(arguments) });
          });
        }
        this._fire(packet.data[0], args);
        break;
      case ACK:
      case BINARY_ACK:
        var ack = this._acks[packet.id];
        if (ack) { delete this._acks[packet.id]; ack.apply(this, packet.data); }
        break;
      case DISCONNECT:
        this._gaveUp = true;
        this.engine.close();
        this._onClose("io server disconnect");
        break;
    }
  };

  Socket.prototype._onClose = function (reason) {
    var wasConnected = this.connected;
    this.connected = false;
    this.id = undefined;
    if (wasConnected) this._fire("disconnect", [reason]);
    if (!this._gaveUp && this.options.reconnection) this._reconnect();
  };

  Socket.prototype._reconnect = function () {
    var self = this;
    var delay = Math.min(this.options.reconnectionDelayMax, this.options.reconnectionDelay * Math.pow(2, this._attempts++));
    delay = Math.round(delay * (0.5 + Math.random()));
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = setTimeout(function () {
      if (self._gaveUp) return;
      self._fire("reconnect_attempt", [self._attempts]);
      self.connect();
    }, delay);
  };

  Socket.prototype.disconnect = function () {
    this._gaveUp = true;
    clearTimeout(this._reconnectTimer);
    if (this.connected) this._packet({ type: DISCONNECT });
    if (this.engine) this.engine.close();
    this._onClose("io client disconnect");
    return this;
  };
  Socket.prototype.close = Socket.prototype.disconnect;

  function io(uri, options) {
    if (uri && typeof uri === "object") { options = uri; uri = undefined; }
    return new Socket(uri, options);
  }
  io.connect = io;
  io.Socket = Socket;
  io.protocol = 5;
  root.io = io;
})(typeof globalThis !== "undefined" ? globalThis : this);
