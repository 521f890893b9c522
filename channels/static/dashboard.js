/* Assistant analytics for managers and agents: a period, the totals, rates per channel as bar charts
 * (inline SVG), and a table per intent. Reads /console/api/analytics; text only, never innerHTML. */
(function () {
  "use strict";

  var root = document.getElementById("dashboard");
  if (!root) {
    return;
  }
  var SVG = "http://www.w3.org/2000/svg";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function pct(value) {
    return value === null || value === undefined ? "\u2013" : Math.round(value * 1000) / 10 + " %";
  }

  function num(value, digits) {
    return value === null || value === undefined ? "\u2013" : Number(value).toFixed(digits || 0);
  }

  var header = el("header", { "class": "bar" });
  header.appendChild(el("h1", {}, "Assistant analytics"));
  var back = el("a", { href: "/console" }, "Back to the queue");
  header.appendChild(back);
  var form = el("form", { "class": "period" });
  var start = el("input", { type: "date", "aria-label": "From" });
  var end = el("input", { type: "date", "aria-label": "To" });
  form.appendChild(el("label", {}, "From "));
  form.appendChild(start);
  form.appendChild(el("label", {}, " to "));
  form.appendChild(end);
  form.appendChild(el("button", { type: "submit" }, "Show"));
  var notice = el("p", { "class": "notice", role: "alert" });
  var totals = el("dl", { "class": "totals", "aria-label": "Totals" });
  var charts = el("section", { "class": "charts", "aria-label": "Rates per channel" });
  var intents = el("table", { "class": "intents", "aria-label": "Per intent" });
  var main = el("main", { "class": "dashboard" });
  [form, notice, el("h2", {}, "All channels"), totals, el("h2", {}, "Per channel"), charts, el("h2", {}, "Per intent"), intents]
    .forEach(function (node) { main.appendChild(node); });
  root.appendChild(header);
  root.appendChild(main);

  var TOTALS = [
    ["Conversations", "conversations", num],
    ["Containment", "containment_rate", pct],
    ["Handoff rate", "handoff_rate", pct],
    ["Not understood", "fallback_rate", pct],
    ["Average sentiment", "average_sentiment", function (v) { return num(v, 2); }],
    ["Prospects qualified", "qualification_rate", pct],
    ["Leads converted", "lead_conversion_rate", pct],
    ["First agent reply", "first_agent_reply_seconds", function (v) { return v === null ? "\u2013" : Math.round(v) + " s"; }],
    ["SLA breaches", "sla_breaches", num],
    ["CSAT", "csat", function (v) { return num(v, 2); }]
  ];

  function bars(title, rows, key) {
    var figure = el("figure", { "class": "chart" });
    figure.appendChild(el("figcaption", {}, title));
    var height = rows.length * 26 + 10;
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 320 " + height);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", title);
    rows.forEach(function (row, i) {
      var value = row[1][key] || 0;
      var label = document.createElementNS(SVG, "text");
      label.setAttribute("x", "0");
      label.setAttribute("y", String(i * 26 + 20));
      label.textContent = row[0];
      var rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", "90");
      rect.setAttribute("y", String(i * 26 + 6));
      rect.setAttribute("height", "18");
      rect.setAttribute("width", String(Math.max(1, value * 180)));
      rect.setAttribute("fill", "#1d4ed8");
      var figureText = document.createElementNS(SVG, "text");
      figureText.setAttribute("x", String(96 + value * 180));
      figureText.setAttribute("y", String(i * 26 + 20));
      figureText.textContent = pct(row[1][key]);
      svg.appendChild(label);
      svg.appendChild(rect);
      svg.appendChild(figureText);
    });
    figure.appendChild(svg);
    return figure;
  }

  function render(report) {
    totals.textContent = "";
    TOTALS.forEach(function (item) {
      totals.appendChild(el("dt", {}, item[0]));
      totals.appendChild(el("dd", { "data-metric": item[1] }, item[2](report.total[item[1]])));
    });
    charts.textContent = "";
    var rows = Object.keys(report.by_channel).map(function (name) { return [name, report.by_channel[name]]; });
    charts.appendChild(bars("Containment", rows, "containment_rate"));
    charts.appendChild(bars("Handoff rate", rows, "handoff_rate"));
    charts.appendChild(bars("Not understood", rows, "fallback_rate"));
    intents.textContent = "";
    var head = el("tr", {});
    ["Intent", "User turns", "Conversations", "Not understood", "Average sentiment"].forEach(function (h) {
      head.appendChild(el("th", { scope: "col" }, h));
    });
    intents.appendChild(head);
    Object.keys(report.by_intent).forEach(function (name) {
      var r = report.by_intent[name];
      var tr = el("tr", {});
      [name, num(r.user_turns), num(r.conversations), pct(r.fallback_rate), num(r.average_sentiment, 2)]
        .forEach(function (cell) { tr.appendChild(el("td", {}, cell)); });
      intents.appendChild(tr);
    });
    start.value = report.start;
    end.value = report.end;
  }

  function load() {
    var query = [];
    if (start.value) { query.push("start=" + start.value); }
    if (end.value) { query.push("end=" + end.value); }
    notice.textContent = "";
    fetch("/console/api/analytics" + (query.length ? "?" + query.join("&") : ""), { credentials: "same-origin" })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) { throw new Error((data.error && data.error.message) || "Could not load the report."); }
          return data;
        });
      })
      .then(render)
      .catch(function (error) { notice.textContent = error.message; });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    load();
  });
  load();
})();
