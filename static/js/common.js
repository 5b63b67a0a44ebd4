/* Small helpers shared by the pages. No framework, no build step. */
(function () {
  "use strict";
  var App = (window.App = window.App || {});

  App.csrfToken = function () {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  };

  // Same rule as training/web/forms.py input_id().
  App.inputId = function (name) {
    return "f-" + name.replace(/\./g, "-");
  };

  App.formatNumber = function (value) {
    if (value === null || value === undefined || Number.isNaN(Number(value))) return "—";
    return Number(value).toLocaleString("en-US");
  };

  App.formatCost = function (value) {
    return value === null || value === undefined ? "—" : App.formatNumber(value) + " Buzz";
  };

  App.formatMinutes = function (minutes) {
    if (minutes === null || minutes === undefined) return "—";
    if (minutes < 1) return "under a minute";
    if (minutes < 90) return "about " + Math.round(minutes) + " min";
    return "about " + (minutes / 60).toFixed(1) + " h";
  };

  App.getJSON = function (url) {
    return fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    });
  };

  // A GET that sends the previous answer's ETag: {changed: false} on 304, else the new body.
  App.getJSONIfChanged = function (url, etag) {
    var headers = { Accept: "application/json" };
    if (etag) headers["If-None-Match"] = etag;
    return fetch(url, { credentials: "same-origin", cache: "no-store", headers: headers }).then(
      function (response) {
        if (response.status === 304) return { changed: false, etag: etag };
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json().then(function (body) {
          return { changed: true, etag: response.headers.get("ETag"), body: body };
        });
      }
    );
  };

  App.formatDuration = function (seconds) {
    var s = Math.round(Number(seconds) || 0);
    if (s < 60) return s + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " min " + (s % 60) + " s";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  };

  App.postForm = function (url, formData) {
    return fetch(url, {
      method: "POST",
      body: formData,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": App.csrfToken() },
    }).then(function (response) {
      return response
        .json()
        .catch(function () {
          return { message: "The server answered " + response.status + "." };
        })
        .then(function (body) {
          return { ok: response.ok, status: response.status, body: body };
        });
    });
  };

  // Calls tick() every `everyMs` while it resolves to true; slower while the tab is hidden.
  App.poll = function (tick, everyMs) {
    function schedule() {
      window.setTimeout(run, document.hidden ? everyMs * 4 : everyMs);
    }
    function run() {
      Promise.resolve()
        .then(tick)
        .then(
          function (again) {
            if (again) schedule();
          },
          function () {
            schedule(); // a failed poll (network blip) tries again later
          }
        );
    }
    schedule();
  };

  App.el = function (tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) {
        node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      }
    });
    return node;
  };

  // Like Django's filesizeformat, so server- and script-drawn sizes read the same.
  App.formatBytes = function (bytes) {
    var units = ["bytes", "KB", "MB", "GB", "TB"];
    var value = Number(bytes);
    var i = 0;
    while (value >= 1024 && i < units.length - 1) {
      value /= 1024;
      i++;
    }
    return (i === 0 ? String(value) : value.toFixed(1)) + "\u00a0" + units[i];
  };

  // <time datetime> elements read in the visitor's own time zone (the server writes UTC).
  App.localTime = function (node) {
    var date = new Date(node.getAttribute("datetime"));
    if (Number.isNaN(date.getTime())) return;
    node.textContent = node.dataset.format === "time"
      ? date.toLocaleTimeString()
      : date.toLocaleString();
    node.title = date.toISOString();
  };
  document.querySelectorAll("time[datetime]").forEach(App.localTime);
})();
