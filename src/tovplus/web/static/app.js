/* Small progressive enhancements. Every action also works without this file. */
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(function () { return true; }, function () { return fallbackCopy(text); });
    }
    return Promise.resolve(fallbackCopy(text));
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  ready(function () {
    // Copy buttons: <button data-copy="input-id" hidden> shown only when scripts run.
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      var input = document.getElementById(button.getAttribute("data-copy"));
      if (!input) return;
      var scope = button.closest(".onetime, .setup");
      var status = scope && scope.querySelector(".copy__status");
      button.hidden = false;
      input.addEventListener("focus", function () { input.select(); });
      button.addEventListener("click", function () {
        copyText(input.value).then(function (ok) {
          input.select();
          if (status) status.textContent = ok ? "Copied to the clipboard." : "Select the text and copy it with your keyboard.";
          if (ok) button.textContent = "Copied";
        });
      });
    });

    // While something runs, ask the page's small JSON route every few seconds (at most 10 minutes)
    // and reload when anything the page shows has changed.
    var live = document.querySelector("[data-live-url]");
    if (live && live.getAttribute("data-live-busy") === "true") {
      var polls = 0;
      var poll = function () {
        polls += 1;
        fetch(live.getAttribute("data-live-url"), { headers: { Accept: "application/json" }, credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (state) {
            if (!state) return;
            if (state.fingerprint !== live.getAttribute("data-live-fingerprint")) { window.location.reload(); return; }
            live.textContent = state.message;
            if (state.busy && polls < 200) window.setTimeout(poll, 3000);
          }, function () { if (polls < 200) window.setTimeout(poll, 6000); });
      };
      window.setTimeout(poll, 2000);
    }

    // A new occasion's time zone starts as this browser's.
    document.querySelectorAll("[data-browser-zone]").forEach(function (input) {
      try {
        var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
        if (zone && input.value === "UTC") input.value = zone;
      } catch (e) { /* keep UTC */ }
    });

    // A one-time key or a form error takes the focus, so it is read out first.
    var target = document.getElementById("form-error") || document.getElementById("onetime");
    if (target) target.focus();

    // No double submissions: a form being sent disables its buttons.
    document.querySelectorAll("form[method=post]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (form.dataset.sending === "1") { event.preventDefault(); return; }
        form.dataset.sending = "1";
        var submitter = event.submitter;
        window.setTimeout(function () {
          form.querySelectorAll("button[type=submit]").forEach(function (b) {
            b.setAttribute("aria-busy", b === submitter ? "true" : "false");
            b.disabled = true;
          });
        }, 0);
      });
    });

    // The event choice only matters for the "one event" scope.
    document.querySelectorAll("select[data-controls]").forEach(function (select) {
      var controlled = document.getElementById(select.getAttribute("data-controls"));
      if (!controlled) return;
      function sync() { controlled.hidden = select.value !== "event"; }
      select.addEventListener("change", sync);
      sync();
    });

    // Only one confirmation panel open at a time; Escape closes it.
    var panels = document.querySelectorAll("details.confirm");
    panels.forEach(function (details) {
      details.addEventListener("toggle", function () {
        if (!details.open) return;
        panels.forEach(function (other) { if (other !== details) other.open = false; });
        // Focus the safe choice, never the destructive button: Enter, Enter must not revoke.
        var safe = details.querySelector("[data-safe]");
        if (safe) safe.focus();
      });
      details.querySelectorAll("[data-cancel]").forEach(function (button) {
        button.addEventListener("click", function () {
          details.open = false;
          details.querySelector("summary").focus();
        });
      });
      // The destructive button waits for the typed name (the server checks it again).
      var typed = details.querySelector("[data-confirm-name]");
      var confirmed = details.querySelector("[data-confirmed]");
      if (typed && confirmed) {
        var matches = function () {
          return typed.value.trim().toLowerCase() === typed.getAttribute("data-confirm-name").toLowerCase();
        };
        confirmed.disabled = !matches();
        typed.addEventListener("input", function () { confirmed.disabled = !matches(); });
      }
      details.addEventListener("keydown", function (event) {
        if (event.key === "Escape" && details.open) {
          details.open = false;
          details.querySelector("summary").focus();
        }
      });
    });
  });
})();
