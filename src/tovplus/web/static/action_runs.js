/* Live state of the connection page's action runs: while a run waits or runs, poll the small
   JSON route every 1.5 s and redraw the list (text only). Without scripts, reloading shows it. */
(function () {
  "use strict";
  var list = document.querySelector("ol.action-runs[data-poll]");
  if (!list) return;
  var url = list.getAttribute("data-poll");
  var active = list.getAttribute("data-active") === "true";

  function span(cls, text) {
    var el = document.createElement("span");
    el.className = cls;
    el.textContent = text;
    return el;
  }

  function draw(runs) {
    while (list.firstChild) list.removeChild(list.firstChild);
    if (!runs.length) {
      var empty = document.createElement("li");
      empty.className = "empty action-runs__empty";
      empty.textContent = "No action has run yet.";
      list.appendChild(empty);
      return;
    }
    runs.forEach(function (r) {
      var li = document.createElement("li");
      li.className = "run run--" + r.state;
      li.setAttribute("data-run", r.id);
      li.appendChild(span("run__state", r.state_label));
      li.appendChild(span("run__label", r.label));
      var when = new Date(r.when);
      var meta = r.trigger + " · " + (isNaN(when) ? r.when : when.toLocaleString());
      if (r.attempts > 1) meta += " · " + r.attempts + " attempts";
      li.appendChild(span("run__meta", meta));
      if (r.outcome) li.appendChild(span(r.failed ? "run__error" : "run__summary", r.outcome));
      list.appendChild(li);
    });
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (!body) return;
        draw(body.runs);
        active = body.active;
        list.setAttribute("data-active", active ? "true" : "false");
        if (active) window.setTimeout(poll, 1500);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }

  if (active) window.setTimeout(poll, 1500);
})();
