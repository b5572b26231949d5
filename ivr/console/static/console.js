// The console's only script (the CSP allows scripts from our own files only).
// Keeps the handler's summary draft on the server as they type, so a lapsed lease or a
// closed tab loses nothing, and each save renews the lease.
(function () {
  "use strict";
  var SAVE_AFTER_MS = 800;

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function startDrafts(textarea) {
    var status = document.getElementById("draft-status");
    var url = textarea.getAttribute("data-draft-url");
    var timer = null;
    var lastSent = textarea.value;

    function show(message) { if (status) { status.textContent = message; } }

    function save() {
      timer = null;
      if (textarea.value === lastSent) { return; }
      var text = textarea.value;
      var body = new URLSearchParams();
      body.set("summary", text);
      fetch(url, { method: "POST", body: body, credentials: "same-origin",
                   headers: { "X-CSRFToken": csrfToken() } })
        .then(function (response) { return response.json().then(function (data) { return [response, data]; }); })
        .then(function (pair) {
          if (pair[0].ok && pair[1].saved) { lastSent = text; }
          show(pair[1].message || "Draft saved.");
        })
        .catch(function () { show("Draft not saved: the console cannot be reached. Keep this tab open."); });
    }

    textarea.addEventListener("input", function () {
      show("Saving draft…");
      if (timer) { clearTimeout(timer); }
      timer = setTimeout(save, SAVE_AFTER_MS);
    });
    window.addEventListener("beforeunload", function () { if (timer) { clearTimeout(timer); save(); } });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.getElementById("summary");
    if (summary && summary.getAttribute("data-draft-url")) { startDrafts(summary); }
  });
})();
