// Gust chat client: messages live over a WebSocket; where there is none
// (or it cannot connect), long polling with the cursor protocol of
// Tornado's chat demo (POST /a/message/updates, cursor=last id seen).
"use strict";
(function () {
  var room = document.getElementById("room");
  if (!room) return;
  var list = document.getElementById("messages");
  var empty = document.getElementById("empty");
  var errorBox = document.getElementById("error");
  var statusEl = document.getElementById("status");
  var form = document.getElementById("composer");
  var input = document.getElementById("body");
  var fileInput = document.getElementById("file");
  var me = room.dataset.me;
  var maxUpload = parseInt(room.dataset.maxUpload, 10);
  var cursor = room.dataset.cursor || "0";
  var xsrf = form.querySelector("input[name=_xsrf]").value;
  var socket = null, socketFailures = 0, transport = null;
  var pollDelay = 500;

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }
  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) t.textContent = d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
    });
  }
  function nearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }
  function scrollDown() { list.scrollTop = list.scrollHeight; }

  // m.html was rendered by the server from message.html, autoescaped.
  function addMessage(m) {
    var id = parseInt(m.id, 10);
    if (!(id > parseInt(cursor, 10))) return;
    if (list.querySelector('li[data-id="' + id + '"]')) return;
    var stick = nearBottom() || m.from === me;
    var li = document.createElement("li");
    li.className = "message" + (m.from === me ? " mine" : "");
    li.dataset.id = String(id);
    li.innerHTML = m.html;
    localTimes(li);
    list.appendChild(li);
    cursor = String(id);
    empty.hidden = true;
    if (stick) scrollDown();
  }
  function addMessages(ms) { (ms || []).forEach(addMessage); }

  function post(url, fields) {
    var body = new URLSearchParams(fields);
    body.set("_xsrf", xsrf);
    return fetch(url, {method: "POST", body: body, credentials: "same-origin",
                       headers: {"Accept": "application/json"}});
  }
  function errorOf(resp) {
    return resp.json().then(function (j) { return j.error || resp.statusText; },
                            function () { return "The server answered " + resp.status + "."; });
  }

  // ---- Long polling (Tornado's updater) ----
  // A quick catch-up first: it says at once whether the server is there
  // (a poll may wait for minutes before it answers).
  function catchUp() {
    transport = "poll";
    fetch("/a/messages?since=" + encodeURIComponent(cursor), {credentials: "same-origin"}).then(function (resp) {
      if (resp.status === 403) { location.href = "/login"; return; }
      if (!resp.ok) throw new Error(resp.status);
      return resp.json().then(function (j) {
        setStatus("live", "live (long polling)");
        addMessages(j.messages);
        poll();
      });
    }).catch(function () {
      setStatus("down", "reconnecting…");
      pollDelay = Math.min(pollDelay * 2, 30000);
      setTimeout(catchUp, pollDelay);
    });
  }
  function poll() {
    transport = "poll";
    post("/a/message/updates", {cursor: cursor}).then(function (resp) {
      if (resp.status === 403) { location.href = "/login"; return; }
      if (!resp.ok) throw new Error(resp.status);
      return resp.json().then(function (j) {
        setStatus("live", "live (long polling)");
        pollDelay = 500;
        addMessages(j.messages);
        setTimeout(poll, 0);
      });
    }).catch(function () {
      setStatus("down", "reconnecting…");
      pollDelay = Math.min(pollDelay * 2, 30000);
      setTimeout(catchUp, pollDelay);
    });
  }

  // ---- WebSocket ----
  function openSocket() {
    transport = "websocket";
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var opened = false;
    try {
      socket = new WebSocket(proto + location.host + "/a/socket?cursor=" + encodeURIComponent(cursor));
    } catch (e) {
      socket = null;
      catchUp();
      return;
    }
    socket.onopen = function () {
      opened = true;
      socketFailures = 0;
      setStatus("live", "live (WebSocket)");
    };
    socket.onmessage = function (ev) {
      var j;
      try { j = JSON.parse(ev.data); } catch (e) { return; }
      if (j.type === "message") addMessage(j.message);
      else if (j.type === "messages") addMessages(j.messages);
      else if (j.type === "error") { showError(j.error); if (j.body && !input.value) input.value = j.body; }
    };
    socket.onclose = function () {
      socket = null;
      setStatus("down", "reconnecting…");
      if (!opened) socketFailures++;
      if (socketFailures >= 3) { catchUp(); return; } // blocked by a proxy: fall back
      setTimeout(openSocket, Math.min(500 * Math.pow(2, socketFailures), 10000));
    };
  }

  // ---- Sending ----
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    showError("");
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({body: text}));
      input.value = "";
      return;
    }
    input.value = "";
    post("/a/message/new", {body: text}).then(function (resp) {
      if (resp.ok) return resp.json().then(addMessage);
      input.value = input.value || text;
      return errorOf(resp).then(showError);
    }).catch(function () {
      input.value = input.value || text;
      showError("Your message was not sent: the server cannot be reached.");
    });
  });

  // ---- Attachments, with a progress bar ----
  var uploadBox = document.getElementById("upload");
  var bar = document.getElementById("upload-progress");
  var pct = document.getElementById("upload-pct");
  fileInput.addEventListener("change", function () {
    var file = fileInput.files[0];
    fileInput.value = "";
    if (!file) return;
    showError("");
    if (file.size > maxUpload) {
      showError("“" + file.name + "” is too large: attachments are limited to " +
                Math.floor(maxUpload / 1048576) + " MB.");
      return;
    }
    var data = new FormData();
    data.append("file", file, file.name);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/a/upload");
    xhr.setRequestHeader("X-Xsrftoken", xsrf);
    xhr.setRequestHeader("Accept", "application/json");
    document.getElementById("upload-name").textContent = file.name;
    bar.value = 0; pct.textContent = "0%";
    uploadBox.hidden = false;
    xhr.upload.onprogress = function (ev) {
      if (!ev.lengthComputable) return;
      var p = Math.round(100 * ev.loaded / ev.total);
      bar.value = p; pct.textContent = p + "%";
    };
    xhr.onload = function () {
      uploadBox.hidden = true;
      var j = null;
      try { j = JSON.parse(xhr.responseText); } catch (e) { /* an HTML page */ }
      if (xhr.status === 200 && j) { addMessage(j); return; }
      showError((j && j.error) || ("The upload failed (" + xhr.status + ")."));
    };
    xhr.onerror = function () {
      uploadBox.hidden = true;
      showError("The upload failed: the connection was lost.");
    };
    xhr.send(data);
  });

  localTimes(list);
  scrollDown();
  if (room.dataset.websocket === "1" && typeof window.WebSocket === "function") openSocket();
  else catchUp();
  window.gustChat = {transport: function () { return transport; }};
})();
