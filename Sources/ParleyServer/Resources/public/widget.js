/*
 * Parley's chat widget. On any page:
 *   <script src="https://chat.example.com/widget.js" data-room="support"></script>
 * shows a chat bubble in the corner that opens a small chat of that room. The chat runs in an
 * iframe served by the Parley server, so the page needs no other setup.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var origin = new URL(script.src, location.href).origin;
  var room = script.getAttribute("data-room") || "lobby";

  var bubble = document.createElement("button");
  bubble.type = "button";
  bubble.textContent = "Chat";
  bubble.setAttribute("aria-expanded", "false");
  bubble.setAttribute("aria-label", "Open the chat of " + room);
  bubble.id = "parley-widget-bubble";
  bubble.style.cssText = "position:fixed;right:20px;bottom:20px;z-index:2147483647;padding:12px 18px;border:none;" +
    "border-radius:24px;background:#1a5fb4;color:#fff;font:600 15px system-ui,sans-serif;box-shadow:0 2px 8px rgba(0,0,0,.3);cursor:pointer";

  var frame = null;
  bubble.addEventListener("click", function () {
    if (!frame) {
      frame = document.createElement("iframe");
      frame.id = "parley-widget-frame";
      frame.title = "Chat: " + room;
      frame.src = origin + "/widget.html?room=" + encodeURIComponent(room);
      frame.style.cssText = "position:fixed;right:20px;bottom:76px;width:340px;height:460px;max-width:calc(100vw - 40px);" +
        "max-height:calc(100vh - 100px);border:1px solid #d8d8dd;border-radius:12px;background:#fff;z-index:2147483647;" +
        "box-shadow:0 4px 16px rgba(0,0,0,.25)";
      document.body.appendChild(frame);
    } else {
      frame.hidden = !frame.hidden;
    }
    bubble.setAttribute("aria-expanded", String(!frame.hidden));
  });
  document.body.appendChild(bubble);
})();
