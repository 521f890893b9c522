/* The agent console: the handoff queue, one conversation with the customer's records beside it, and the
 * agent's moves (take, reply, hand back, resolve). Live over /console/ws; every change goes through the
 * console API with the session's CSRF token. No framework: plain DOM, text only (never innerHTML). */
(function () {
  "use strict";

  var root = document.getElementById("console");
  if (!root) {
    return;
  }
  var CSRF = root.getAttribute("data-csrf") || "";
  var AGENT = root.getAttribute("data-agent") || "";
  var API = "/console/api/handoffs";
  var selected = null; // ticket id
  var selectedConversation = null;
  var queue = [];

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      node.setAttribute(name, attrs[name]);
    });
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  // --- layout ------------------------------------------------------------------------------------
  var header = el("header", { "class": "bar" });
  header.appendChild(el("h1", {}, "Agent console"));
  header.appendChild(el("span", { "class": "who" }, "Signed in as " + AGENT));
  var liveState = el("span", { "class": "live", role: "status", "aria-live": "polite" }, "Connecting\u2026");
  header.appendChild(liveState);
  header.appendChild(el("a", { href: "/console/dashboard" }, "Analytics"));
  var logout = el("button", { type: "button", "class": "secondary" }, "Sign out");
  header.appendChild(logout);

  var queuePane = el("nav", { "class": "queue", "aria-label": "Handoff queue" });
  queuePane.appendChild(el("h2", {}, "Queue"));
  var queueList = el("ul", { "class": "tickets" });
  queuePane.appendChild(queueList);
  var emptyQueue = el("p", { "class": "muted" }, "Nobody is waiting for an agent.");
  queuePane.appendChild(emptyQueue);

  var main = el("main", { "class": "conversation", "aria-label": "Conversation" });
  var title = el("h2", {}, "Choose a conversation from the queue");
  var meta = el("p", { "class": "meta" });
  var turns = el("ol", { "class": "turns", role: "log", "aria-live": "polite", "aria-label": "Messages" });
  var actions = el("div", { "class": "actions" });
  var takeButton = el("button", { type: "button" }, "Take");
  var noteInput = el("input", { type: "text", placeholder: "Note for the bot (optional)", "aria-label": "Hand-back note" });
  var backButton = el("button", { type: "button", "class": "secondary" }, "Hand back to the bot");
  var resolveButton = el("button", { type: "button", "class": "secondary" }, "Resolve");
  actions.appendChild(takeButton);
  actions.appendChild(noteInput);
  actions.appendChild(backButton);
  actions.appendChild(resolveButton);
  var form = el("form", { "class": "reply" });
  var replyLabel = el("label", { "for": "reply-text" }, "Reply to the customer");
  var replyBox = el("textarea", { id: "reply-text", rows: "3" });
  var sendButton = el("button", { type: "submit" }, "Send");
  form.appendChild(replyLabel);
  form.appendChild(replyBox);
  form.appendChild(sendButton);
  var notice = el("p", { "class": "notice", role: "alert" });
  main.appendChild(title);
  main.appendChild(meta);
  main.appendChild(notice);
  main.appendChild(turns);
  main.appendChild(actions);
  main.appendChild(form);

  var side = el("aside", { "class": "customer", "aria-label": "Customer" });
  side.appendChild(el("h2", {}, "Customer"));
  var records = el("dl", { "class": "records" });
  side.appendChild(records);
  side.appendChild(el("h2", {}, "Knowledge base"));
  var kbForm = el("form", { "class": "kb" });
  var kbInput = el("input", { type: "search", placeholder: "Search articles", "aria-label": "Search the knowledge base" });
  kbForm.appendChild(kbInput);
  kbForm.appendChild(el("button", { type: "submit", "class": "secondary" }, "Search"));
  var kbResults = el("ul", { "class": "kb-results" });
  side.appendChild(kbForm);
  side.appendChild(kbResults);

  var layout = el("div", { "class": "layout" });
  layout.appendChild(queuePane);
  layout.appendChild(main);
  layout.appendChild(side);
  root.appendChild(header);
  root.appendChild(layout);

  // --- API ---------------------------------------------------------------------------------------
  function call(method, path, body) {
    var options = { method: method, credentials: "same-origin", headers: { "X-CSRF-Token": CSRF } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.status === 401) {
          window.location.href = "/console";
        }
        if (!response.ok) {
          throw new Error((data.error && data.error.message) || "That did not work. Please try again.");
        }
        return data;
      });
    });
  }

  function showError(error) {
    notice.textContent = error.message;
  }

  // --- queue -------------------------------------------------------------------------------------
  function countdown(seconds) {
    if (seconds === null || seconds === undefined) {
      return "";
    }
    var late = seconds < 0;
    var s = Math.abs(seconds);
    var text = Math.floor(s / 60) + "m " + ("0" + (s % 60)).slice(-2) + "s";
    return late ? "SLA missed " + text + " ago" : "SLA in " + text;
  }

  function renderQueue() {
    queueList.textContent = "";
    emptyQueue.hidden = queue.length > 0;
    queue.forEach(function (item) {
      var li = el("li", { "class": "ticket state-" + item.state + (item.ticket_id === selected ? " selected" : "") });
      var button = el("button", { type: "button", "data-ticket": String(item.ticket_id) });
      button.appendChild(el("strong", {}, "#" + item.ticket_id + " " + item.subject));
      var line = [item.priority, item.state === "waiting" ? "waiting" : "with an agent", item.channel];
      if (item.sentiment) {
        line.push("mood: " + item.sentiment);
      }
      button.appendChild(el("span", { "class": "line" }, line.join(" \u00b7 ")));
      var sla = el("span", { "class": "sla", "data-seconds": String(item.sla_seconds_left) }, countdown(item.sla_seconds_left));
      button.appendChild(sla);
      button.addEventListener("click", function () {
        open(item.ticket_id);
      });
      li.appendChild(button);
      queueList.appendChild(li);
    });
  }

  function loadQueue() {
    return call("GET", API).then(function (data) {
      queue = data.items || [];
      renderQueue();
    }).catch(showError);
  }

  setInterval(function () {
    Array.prototype.forEach.call(queueList.querySelectorAll(".sla"), function (node) {
      var left = parseInt(node.getAttribute("data-seconds"), 10);
      if (!isNaN(left)) {
        node.setAttribute("data-seconds", String(left - 1));
        node.textContent = countdown(left - 1);
      }
    });
  }, 1000);

  // --- one conversation --------------------------------------------------------------------------
  function addTurn(turn) {
    var li = el("li", { "class": "turn from-" + turn.speaker });
    li.appendChild(el("span", { "class": "speaker" }, turn.speaker === "user" ? "Customer" : turn.speaker === "agent" ? "Agent" : "Bot"));
    li.appendChild(el("span", { "class": "text" }, turn.text));
    if (turn.sentiment) {
      li.appendChild(el("span", { "class": "mood mood-" + turn.sentiment }, turn.sentiment));
    }
    turns.appendChild(li);
    turns.scrollTop = turns.scrollHeight;
  }

  function renderRecords(view) {
    records.textContent = "";
    var rows = [];
    var t = view.ticket;
    rows.push(["Reason", t.reason || ""]);
    rows.push(["Priority", t.priority]);
    if (t.sentiment_trend && t.sentiment_trend.length) {
      rows.push(["Sentiment trend", t.sentiment_trend.map(function (v) { return v.toFixed(2); }).join(", ")]);
    }
    Object.keys(t.bant || {}).forEach(function (key) {
      rows.push([key, String(t.bant[key])]);
    });
    if (view.records.account) {
      rows.push(["Account", view.records.account.name + " (open pipeline " + view.records.account.pipeline + ")"]);
    }
    if (view.records.lead) {
      var lead = view.records.lead;
      rows.push(["Lead", [lead.name, lead.company, lead.email, "score " + lead.score].filter(Boolean).join(" \u00b7 ")]);
    }
    if (t.csat) {
      rows.push(["Rating", t.csat + " / 5"]);
    }
    rows.forEach(function (row) {
      records.appendChild(el("dt", {}, row[0]));
      records.appendChild(el("dd", {}, row[1]));
    });
  }

  function setButtons(state, assignee) {
    var mine = state === "agent";
    takeButton.disabled = state !== "waiting";
    backButton.disabled = !mine;
    resolveButton.disabled = state === "closed" || state === "bot" && !assignee;
    sendButton.disabled = !mine;
    replyBox.disabled = !mine;
  }

  function open(ticketId) {
    selected = ticketId;
    notice.textContent = "";
    renderQueue();
    return call("GET", API + "/" + ticketId).then(function (view) {
      selectedConversation = view.conversation.id;
      title.textContent = "#" + view.ticket.id + " " + view.ticket.subject;
      meta.textContent = view.conversation.channel + " \u00b7 " + view.conversation.state + " \u00b7 " + view.ticket.status;
      turns.textContent = "";
      view.turns.forEach(addTurn);
      renderRecords(view);
      setButtons(view.conversation.state, view.ticket.assignee_id);
    }).catch(showError);
  }

  function act(path, body) {
    if (selected === null) {
      return;
    }
    notice.textContent = "";
    call("POST", API + "/" + selected + path, body || {}).then(function () {
      return open(selected);
    }).then(loadQueue).catch(showError);
  }

  takeButton.addEventListener("click", function () { act("/take"); });
  backButton.addEventListener("click", function () {
    act("/hand-back", { note: noteInput.value });
    noteInput.value = "";
  });
  resolveButton.addEventListener("click", function () { act("/resolve"); });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = replyBox.value.trim();
    if (!text || selected === null) {
      return;
    }
    replyBox.value = "";
    notice.textContent = "";
    call("POST", API + "/" + selected + "/reply", { text: text }).catch(function (error) {
      replyBox.value = text;
      showError(error);
    });
  });
  replyBox.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  kbForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var q = kbInput.value.trim();
    if (!q) {
      return;
    }
    kbResults.textContent = "";
    call("GET", "/console/api/knowledge?q=" + encodeURIComponent(q)).then(function (data) {
      var hits = data.items || [];
      if (!hits.length) {
        kbResults.appendChild(el("li", { "class": "muted" }, "No article matches."));
      }
      hits.forEach(function (hit) {
        var li = el("li", {});
        li.appendChild(el("strong", {}, hit.title));
        li.appendChild(el("span", { "class": "line" }, hit.snippet || ""));
        kbResults.appendChild(li);
      });
    }).catch(function (error) {
      kbResults.appendChild(el("li", { "class": "muted" }, error.message));
    });
  });

  logout.addEventListener("click", function () {
    fetch("/console/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": CSRF } })
      .then(function () { window.location.href = "/console"; });
  });

  // --- live --------------------------------------------------------------------------------------
  var backoff = 500;
  function connect() {
    var ws = new WebSocket(window.location.origin.replace(/^http/, "ws") + "/console/ws");
    ws.onopen = function () {
      backoff = 500;
      liveState.textContent = "Live";
      loadQueue();
    };
    ws.onmessage = function (event) {
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (data.type === "turn" && data.conversation_id === selectedConversation) {
        addTurn(data);
      }
      if (data.type === "queue" || data.type === "turn") {
        loadQueue();
      }
    };
    ws.onclose = function () {
      liveState.textContent = "Reconnecting\u2026";
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 15000);
    };
  }
  setButtons("bot", null);
  connect();
})();
