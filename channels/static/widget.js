/*
 * crm-assistant chat widget. Embed with:
 *   <script src="https://YOUR-GATEWAY/widget.js" defer></script>
 * Optional attributes: data-title="Chat with us", data-token="<CRM API token>" (signed-in mode).
 * Plain JavaScript, no build step, nothing loaded from anywhere but the gateway.
 * Server text is always inserted with textContent; links become <a> elements only for http(s) URLs.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__crmWidgetLoaded) {
    return;
  }
  window.__crmWidgetLoaded = true;

  var MAX_CHARS = parseInt("{{max_message_chars}}", 10) || 2000;
  var base = new URL(script.src, window.location.href);
  var ORIGIN = base.origin;
  var WS_URL = ORIGIN.replace(/^http/, "ws") + "/widget/ws";
  var TITLE = script.getAttribute("data-title") || "Chat with us";
  var token = script.getAttribute("data-token") || "";
  var STORAGE_KEY = "crm-widget-open";
  var WS_FAILURES_BEFORE_FALLBACK = 3;
  var WS_RETRY_WHILE_FALLBACK_MS = 30000;
  var CONNECT_TIMEOUT_MS = 8000;

  // --- DOM -------------------------------------------------------------------------------------

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        node.setAttribute(name, attrs[name]);
      });
    }
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  var host = el("div", { "class": "crm-widget-host", "data-crm-widget": "" });
  var shadow = host.attachShadow({ mode: "open" });
  shadow.appendChild(el("link", { rel: "stylesheet", href: ORIGIN + "/widget.css" }));

  var root = el("div", { "class": "crmw-root" });
  var launcher = el("button", {
    type: "button",
    "class": "crmw-launcher",
    "aria-expanded": "false",
    "aria-controls": "crmw-panel",
    "aria-label": "Open chat: " + TITLE
  }, "Chat");
  var panel = el("section", {
    id: "crmw-panel",
    "class": "crmw-panel",
    role: "dialog",
    "aria-modal": "false",
    "aria-labelledby": "crmw-title"
  });
  panel.hidden = true;

  var header = el("div", { "class": "crmw-header" });
  var heading = el("h2", { id: "crmw-title", "class": "crmw-title" }, TITLE);
  var closeButton = el("button", { type: "button", "class": "crmw-close", "aria-label": "Close chat" }, "\u00d7");
  header.appendChild(heading);
  header.appendChild(closeButton);

  var status = el("div", { "class": "crmw-status", role: "status", "aria-live": "polite" });
  var log = el("div", {
    "class": "crmw-log",
    role: "log",
    "aria-live": "polite",
    "aria-label": "Conversation",
    tabindex: "0"
  });
  var empty = el("p", { "class": "crmw-empty" }, "Say hi to start the conversation.");
  log.appendChild(empty);
  var typing = el("div", { "class": "crmw-typing", "aria-live": "polite" });
  typing.hidden = true;
  typing.appendChild(el("span", { "class": "crmw-dots", "aria-hidden": "true" }, "\u2026"));
  typing.appendChild(el("span", { "class": "crmw-typing-text" }, "The assistant is typing"));

  var form = el("form", { "class": "crmw-form" });
  var label = el("label", { "for": "crmw-input", "class": "crmw-label" }, "Your message");
  var input = el("textarea", {
    id: "crmw-input",
    "class": "crmw-input",
    rows: "2",
    maxlength: String(MAX_CHARS),
    placeholder: "Type a message\u2026",
    autocomplete: "off"
  });
  var sendButton = el("button", { type: "submit", "class": "crmw-send" }, "Send");
  // Push-to-talk, shown to signed-in users when the server can listen: hold the button (or hold
  // Space/Enter on it), speak, release.
  var micButton = el("button", {
    type: "button",
    "class": "crmw-mic",
    "aria-label": "Hold to talk",
    "aria-pressed": "false",
    title: "Hold to talk"
  }, "\uD83C\uDFA4");
  micButton.hidden = true;
  var heardLine = el("div", { "class": "crmw-heard", "aria-live": "polite" });
  heardLine.hidden = true;
  form.appendChild(label);
  form.appendChild(input);
  form.appendChild(micButton);
  form.appendChild(sendButton);

  panel.appendChild(header);
  panel.appendChild(status);
  panel.appendChild(log);
  panel.appendChild(typing);
  panel.appendChild(heardLine);
  panel.appendChild(form);
  root.appendChild(panel);
  root.appendChild(launcher);
  shadow.appendChild(root);

  // --- rendering -------------------------------------------------------------------------------

  var URL_PATTERN = /https?:\/\/[^\s<>"']+/g;

  // Text with its http(s) URLs as links; every piece goes in as a text node.
  function linkified(text) {
    var source = String(text);
    var fragment = document.createDocumentFragment();
    var last = 0;
    source.replace(URL_PATTERN, function (match, offset) {
      var url = match.replace(/[.,;:!?)\]]+$/, "");
      var parsed = null;
      try {
        parsed = new URL(url);
      } catch (e) {
        parsed = null;
      }
      if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
        return match;
      }
      fragment.appendChild(document.createTextNode(source.slice(last, offset)));
      var link = el("a", { href: parsed.href, target: "_blank", rel: "noopener noreferrer" }, url);
      fragment.appendChild(link);
      last = offset + url.length;
      return match;
    });
    fragment.appendChild(document.createTextNode(source.slice(last)));
    return fragment;
  }

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  function clearEmpty() {
    if (empty.parentNode) {
      empty.parentNode.removeChild(empty);
    }
  }

  function addUser(text) {
    clearEmpty();
    var item = el("div", { "class": "crmw-msg crmw-user" });
    item.appendChild(el("span", { "class": "crmw-sr" }, "You: "));
    var body = el("p", { "class": "crmw-text" });
    body.appendChild(linkified(text));
    item.appendChild(body);
    log.appendChild(item);
    scrollDown();
    return item;
  }

  function addBot(reply, active) {
    clearEmpty();
    var item = el("div", { "class": "crmw-msg crmw-bot" });
    item.appendChild(el("span", { "class": "crmw-sr" }, "Assistant: "));
    if (reply.text) {
      var body = el("p", { "class": "crmw-text" });
      body.appendChild(linkified(reply.text));
      item.appendChild(body);
    }
    if (reply.rows && reply.rows.length) {
      var table = el("table", { "class": "crmw-table" });
      reply.rows.forEach(function (row) {
        var tr = el("tr");
        (row || []).forEach(function (cell) {
          tr.appendChild(el("td", null, String(cell)));
        });
        table.appendChild(tr);
      });
      item.appendChild(table);
    }
    if (reply.image) {
      var picture = el("p", { "class": "crmw-text" });
      picture.appendChild(linkified(String(reply.image)));
      item.appendChild(picture);
    }
    if (reply.buttons && reply.buttons.length) {
      var group = el("div", { "class": "crmw-buttons", role: "group", "aria-label": "Choices" });
      reply.buttons.forEach(function (choice) {
        var button = el("button", { type: "button", "class": "crmw-choice" }, choice.title);
        button.disabled = !active;
        button.addEventListener("click", function () {
          Array.prototype.forEach.call(group.querySelectorAll("button"), function (b) {
            b.disabled = true;
          });
          button.classList.add("crmw-chosen");
          button.setAttribute("aria-pressed", "true");
          send({ type: "button", key: choice.key }, addUser(choice.title));
          input.focus();
        });
        group.appendChild(button);
      });
      item.appendChild(group);
    }
    log.appendChild(item);
    scrollDown();
  }

  function addError(message) {
    clearEmpty();
    var item = el("div", { "class": "crmw-msg crmw-error" });
    item.appendChild(el("span", { "class": "crmw-sr" }, "Notice: "));
    item.appendChild(el("p", { "class": "crmw-text" }, message));
    log.appendChild(item);
    scrollDown();
  }

  function disableOldButtons() {
    Array.prototype.forEach.call(log.querySelectorAll(".crmw-choice"), function (b) {
      b.disabled = true;
    });
  }

  function showReplies(replies) {
    setTyping(false);
    disableOldButtons();
    (replies || []).forEach(function (reply) {
      addBot(reply, true);
    });
  }

  function isUser(turn) {
    var who = String(turn.speaker || "").toLowerCase();
    return who === "user" || who === "visitor" || who === "human";
  }

  function showHistory(turns) {
    while (log.firstChild) {
      log.removeChild(log.firstChild);
    }
    turns = turns || [];
    if (!turns.length && !outbox.length) {
      log.appendChild(empty);
      return;
    }
    turns.forEach(function (turn, index) {
      if (isUser(turn)) {
        addUser(turn.text || "");
      } else {
        // Only the newest answer's buttons can still be used; older ones were superseded.
        addBot(turn, index === turns.length - 1 && !outbox.length);
      }
    });
    outbox.forEach(function (item) {
      log.appendChild(item.bubble);
    });
    scrollDown();
  }

  function setTyping(on) {
    typing.hidden = !on;
    if (on) {
      scrollDown();
    }
  }

  function setStatus(text) {
    status.textContent = text || "";
  }

  // --- transport: websocket first, HTTP when it cannot connect ------------------------------------

  var socket = null;
  var socketOpen = false;
  var started = false;
  var failures = 0;
  var backoff = 500;
  var retryTimer = null;
  var useHttp = false;
  // Visitor messages not answered yet: {frame, bubble, sent}. Their bubbles survive a history
  // refresh; unsent ones go out as soon as a connection (or the HTTP fallback) is there.
  var outbox = [];

  function handleFrame(frame) {
    if (frame.type === "typing") {
      setTyping(true);
    } else if (frame.type === "replies") {
      if (!frame.voice && !frame.push) {
        outbox.shift();
      }
      if (frame.push) {
        setTyping(false);
      }
      showReplies(frame.replies);
    } else if (frame.type === "history") {
      showHistory(frame.turns);
    } else if (frame.type === "auth") {
      micButton.hidden = !(frame.voice && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
    } else if (frame.type === "partial") {
      heardLine.hidden = false;
      heardLine.textContent = frame.text + "\u2026";
    } else if (frame.type === "heard") {
      heardLine.hidden = true;
      heardLine.textContent = "";
      if (frame.text) {
        disableOldButtons();
        addUser(frame.text).classList.add("crmw-spoken");
      }
    } else if (frame.type === "speech") {
      playSpeech(frame);
    } else if (frame.type === "error") {
      setTyping(false);
      if (frame.voice) {
        stopTalking(false);
        heardLine.hidden = true;
      } else if (frame.code === "invalid_token") {
        token = "";
      } else {
        outbox.shift();
      }
      addError(frame.message || "Something went wrong. Please try again.");
    }
  }

  // --- push-to-talk ------------------------------------------------------------------------------

  var VOICE_RATE = 16000;
  var voice = { stream: null, context: null, source: null, node: null, active: false, player: null };

  function toPcm16k(samples, rate) {
    // Average the input samples that fall into each 16 kHz sample, then clip to 16-bit.
    var ratio = rate / VOICE_RATE;
    var length = Math.floor(samples.length / ratio);
    var out = new Int16Array(length);
    for (var i = 0; i < length; i++) {
      var from = Math.floor(i * ratio);
      var to = Math.min(samples.length, Math.floor((i + 1) * ratio));
      var sum = 0;
      for (var j = from; j < to; j++) {
        sum += samples[j];
      }
      var value = to > from ? sum / (to - from) : 0;
      value = Math.max(-1, Math.min(1, value));
      out[i] = value < 0 ? value * 0x8000 : value * 0x7fff;
    }
    return out;
  }

  function canTalk() {
    return !micButton.hidden && socket && socketOpen && socket.readyState === WebSocket.OPEN;
  }

  function startTalking() {
    if (voice.active || !canTalk()) {
      return;
    }
    voice.active = true;
    micButton.setAttribute("aria-pressed", "true");
    micButton.classList.add("crmw-recording");
    var pending = voice.stream
      ? Promise.resolve(voice.stream)
      : navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
    pending.then(function (stream) {
      voice.stream = stream;
      if (!voice.active || !canTalk()) {
        return;
      }
      var Context = window.AudioContext || window.webkitAudioContext;
      voice.context = voice.context || new Context();
      voice.context.resume();
      voice.source = voice.context.createMediaStreamSource(stream);
      voice.node = voice.context.createScriptProcessor(4096, 1, 1);
      voice.node.onaudioprocess = function (event) {
        if (voice.active && canTalk()) {
          var pcm = toPcm16k(event.inputBuffer.getChannelData(0), voice.context.sampleRate);
          if (pcm.length) {
            socket.send(pcm.buffer);
          }
        }
      };
      socket.send(JSON.stringify({ type: "voice_start" }));
      voice.source.connect(voice.node);
      voice.node.connect(voice.context.destination);
      setStatus("Listening\u2026 release to send.");
    }).catch(function () {
      stopTalking(false);
      addError("I can't use your microphone. Allow it in the browser's settings, or type instead.");
    });
  }

  function stopTalking(send) {
    var wasStreaming = voice.active && voice.node;
    voice.active = false;
    micButton.setAttribute("aria-pressed", "false");
    micButton.classList.remove("crmw-recording");
    if (voice.node) {
      voice.node.onaudioprocess = null;
      voice.node.disconnect();
      voice.source.disconnect();
      voice.node = null;
      voice.source = null;
    }
    setStatus("");
    if (send && wasStreaming && canTalk()) {
      socket.send(JSON.stringify({ type: "voice_end" }));
      setTyping(true);
    }
  }

  function playSpeech(frame) {
    if (voice.player) {
      voice.player.pause();
    }
    voice.player = new Audio("data:" + (frame.content_type || "audio/wav") + ";base64," + frame.base64);
    host.setAttribute("data-speech-bytes", String(Math.floor(frame.base64.length * 3 / 4)));
    var playing = voice.player.play();
    if (playing && playing.catch) {
      playing.catch(function () { /* autoplay refused: the text answer is on screen */ });
    }
  }

  micButton.addEventListener("pointerdown", function (event) {
    event.preventDefault();
    startTalking();
  });
  ["pointerup", "pointerleave", "pointercancel"].forEach(function (name) {
    micButton.addEventListener(name, function () {
      stopTalking(true);
    });
  });
  micButton.addEventListener("keydown", function (event) {
    if ((event.key === " " || event.key === "Enter") && !event.repeat) {
      event.preventDefault();
      startTalking();
    }
  });
  micButton.addEventListener("keyup", function (event) {
    if (event.key === " " || event.key === "Enter") {
      event.preventDefault();
      stopTalking(true);
    }
  });

  function scheduleConnect(delay) {
    if (retryTimer) {
      clearTimeout(retryTimer);
    }
    retryTimer = setTimeout(function () {
      retryTimer = null;
      connect();
    }, delay);
  }

  function connect() {
    if (socket) {
      return;
    }
    var ws;
    try {
      ws = new WebSocket(WS_URL);
    } catch (e) {
      onSocketFailure(false);
      return;
    }
    socket = ws;
    var opened = false;
    // A connection that neither opens nor fails (a silent proxy) counts as failed after a while.
    var openTimer = setTimeout(function () {
      if (!opened && ws.readyState !== WebSocket.OPEN) {
        ws.close();
      }
    }, CONNECT_TIMEOUT_MS);
    ws.onopen = function () {
      clearTimeout(openTimer);
      opened = true;
      socketOpen = true;
      failures = 0;
      backoff = 500;
      useHttp = false;
      setStatus("");
      if (token) {
        ws.send(JSON.stringify({ type: "auth", token: token }));
      }
      ws.send(JSON.stringify({ type: "history" }));
      outbox.forEach(function (item) {
        if (!item.sent) {
          item.sent = true;
          ws.send(JSON.stringify(item.frame));
        }
      });
    };
    ws.onmessage = function (event) {
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      handleFrame(frame);
    };
    ws.onclose = function () {
      clearTimeout(openTimer);
      stopTalking(false);
      if (socket !== ws) {
        return;
      }
      socket = null;
      socketOpen = false;
      setTyping(false);
      // What went out on this socket is in the conversation's history if it arrived; the history
      // shown on reconnect tells. Only messages that never left are sent again.
      outbox = outbox.filter(function (item) {
        return !item.sent;
      });
      onSocketFailure(opened);
    };
  }

  function onSocketFailure(hadOpened) {
    if (!hadOpened) {
      failures += 1;
    }
    if (failures >= WS_FAILURES_BEFORE_FALLBACK) {
      if (!useHttp) {
        useHttp = true;
        setStatus("Live connection unavailable; messages are sent another way.");
        loadHistoryOverHttp(flushOverHttp);
      }
      scheduleConnect(WS_RETRY_WHILE_FALLBACK_MS);
      return;
    }
    setStatus("Reconnecting\u2026");
    scheduleConnect(backoff);
    backoff = Math.min(backoff * 2, 15000);
  }

  function httpHeaders(json) {
    var headers = {};
    if (json) {
      headers["Content-Type"] = "application/json";
    }
    if (token) {
      headers.Authorization = "Bearer " + token;
    }
    return headers;
  }

  function readJson(response) {
    return response.json().catch(function () {
      return {};
    }).then(function (data) {
      if (!response.ok) {
        if (response.status === 401) {
          token = "";
        }
        var message = data && data.error && data.error.message;
        throw new Error(message || "The assistant could not be reached. Please try again.");
      }
      return data;
    });
  }

  function loadHistoryOverHttp(then) {
    fetch(ORIGIN + "/widget/history", { credentials: "include", headers: httpHeaders(false) })
      .then(readJson)
      .then(function (data) {
        showHistory(data.turns);
      })
      .catch(function (error) {
        addError(error.message);
      })
      .then(function () {
        if (then) {
          then();
        }
      });
  }

  function postOverHttp(item) {
    item.sent = true;
    setTyping(true);
    fetch(ORIGIN + "/widget/messages", {
      method: "POST",
      credentials: "include",
      headers: httpHeaders(true),
      body: JSON.stringify(item.frame)
    })
      .then(readJson)
      .then(function (data) {
        outbox = outbox.filter(function (other) {
          return other !== item;
        });
        showReplies(data.replies);
      })
      .catch(function (error) {
        outbox = outbox.filter(function (other) {
          return other !== item;
        });
        setTyping(false);
        addError(error.message);
      });
  }

  function flushOverHttp() {
    outbox.forEach(function (item) {
      if (!item.sent) {
        postOverHttp(item);
      }
    });
  }

  function send(frame, bubble) {
    var item = { frame: frame, bubble: bubble, sent: false };
    outbox.push(item);
    if (socket && socketOpen && socket.readyState === WebSocket.OPEN) {
      item.sent = true;
      socket.send(JSON.stringify(frame));
    } else if (useHttp || !started) {
      postOverHttp(item);
    }
    // Otherwise the socket is (re)connecting: the message goes out when it opens.
  }

  function start() {
    if (started) {
      if (socket && socketOpen) {
        socket.send(JSON.stringify({ type: "history" }));
      } else if (useHttp) {
        loadHistoryOverHttp(null);
      }
      return;
    }
    started = true;
    connect();
  }

  window.addEventListener("online", function () {
    if (!socket && started) {
      failures = 0;
      backoff = 500;
      scheduleConnect(0);
    }
  });

  // --- behaviour -------------------------------------------------------------------------------

  function remember(open) {
    try {
      window.sessionStorage.setItem(STORAGE_KEY, open ? "1" : "0");
    } catch (e) {
      /* storage blocked: the panel just starts closed */
    }
  }

  function openPanel() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", "Close chat: " + TITLE);
    root.classList.add("crmw-open");
    remember(true);
    start();
    input.focus();
  }

  function closePanel() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", "Open chat: " + TITLE);
    root.classList.remove("crmw-open");
    remember(false);
    launcher.focus();
  }

  function submit() {
    var text = input.value;
    if (!text.trim()) {
      return;
    }
    if (text.length > MAX_CHARS) {
      addError("Your message is longer than " + MAX_CHARS + " characters. Please shorten it.");
      return;
    }
    input.value = "";
    disableOldButtons();
    send({ type: "message", text: text }, addUser(text));
  }

  launcher.addEventListener("click", function () {
    if (panel.hidden) {
      openPanel();
    } else {
      closePanel();
    }
  });
  closeButton.addEventListener("click", closePanel);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      event.preventDefault();
      closePanel();
    }
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submit();
  });

  function mountHost() {
    document.body.appendChild(host);
    var wasOpen = false;
    try {
      wasOpen = window.sessionStorage.getItem(STORAGE_KEY) === "1";
    } catch (e) {
      wasOpen = false;
    }
    if (wasOpen) {
      panel.hidden = false;
      launcher.setAttribute("aria-expanded", "true");
      launcher.setAttribute("aria-label", "Close chat: " + TITLE);
      root.classList.add("crmw-open");
      start();
    }
  }

  if (document.body) {
    mountHost();
  } else {
    document.addEventListener("DOMContentLoaded", mountHost);
  }
})();
