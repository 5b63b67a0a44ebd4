/* The run page: while the run is active, poll the API (with If-None-Match, so an unchanged run
   costs a 304) and update status, progress, cost, time, the samples grid, the timeline and which
   of cancel / retry is offered. When the run finishes the page is drawn once more by the server
   (the failure explanation and the Buzz outcome are worded there). Samples open enlarged in a
   dialog (Esc closes); cancel asks first. */
(function () {
  "use strict";
  var App = window.App;
  var runId = JSON.parse(document.getElementById("run-id").textContent);
  var active = JSON.parse(document.getElementById("active-statuses").textContent);
  var retryable = JSON.parse(document.getElementById("retryable-statuses").textContent);
  var prompts = JSON.parse(document.getElementById("sample-prompts").textContent);
  var badge = document.querySelector('#run-status [data-field="status"]');
  var live = document.getElementById("run-live");
  var status = badge.textContent.trim();
  var seenEpochs = document.querySelectorAll("#samples-grid thead th.epoch-head").length;
  var seenEvents = document.querySelectorAll("#timeline > li").length;
  var etag = null;

  // --- enlarged view -------------------------------------------------------------------------
  var dialog = document.getElementById("sample-view");
  var opener = null;
  document.getElementById("samples").addEventListener("click", function (event) {
    var button = event.target.closest("button.sample");
    if (!button || !dialog.showModal) return;
    opener = button;
    var img = document.getElementById("sample-view-img");
    img.src = button.dataset.full;
    img.alt = button.dataset.caption;
    document.getElementById("sample-view-caption").textContent = button.dataset.caption;
    dialog.showModal();
    document.getElementById("sample-view-close").focus();
  });
  dialog.addEventListener("close", function () {
    if (opener) opener.focus();
  });
  dialog.addEventListener("click", function (event) {
    if (event.target === dialog) dialog.close(); // a click on the backdrop
  });

  // --- cancel, confirmed -----------------------------------------------------------------------
  var ask = document.getElementById("cancel-ask");
  var confirmBox = document.getElementById("cancel-confirm");
  ask.addEventListener("click", function () {
    confirmBox.hidden = false;
    ask.hidden = true;
    document.getElementById("cancel-yes").focus();
  });
  document.getElementById("cancel-no").addEventListener("click", function () {
    confirmBox.hidden = true;
    ask.hidden = false;
    ask.focus();
  });

  // --- live updates ----------------------------------------------------------------------------
  function sampleCell(epoch, i) {
    var url = (epoch.sampleImages || [])[i];
    if (!url) return App.el("td", { text: "—" });
    var label = i < prompts.length ? prompts[i] : "Sample " + (i + 1);
    var caption = "Epoch " + epoch.epochNumber + ": " + label;
    return App.el("td", {}, [
      App.el("button", { type: "button", className: "sample", "data-full": url,
                         "data-caption": caption, "aria-label": "Enlarge " + caption.replace(":", ",") }, [
        App.el("img", { src: url, alt: caption, loading: "lazy" }),
      ]),
    ]);
  }

  function renderGrid(epochs) {
    var width = 0;
    epochs.forEach(function (e) { width = Math.max(width, (e.sampleImages || []).length); });
    var head = [App.el("th", { scope: "col", text: "Prompt" })].concat(epochs.map(function (e) {
      var cell = [ "Epoch " + e.epochNumber ];
      if (e.modelUrl) {
        var size = e.modelSize ? " (" + App.formatBytes(e.modelSize) + ")" : "";
        cell.push(App.el("br"), App.el("a", { href: e.modelUrl, download: true,
          className: "epoch-download", text: "Download this epoch" + size }));
      }
      return App.el("th", { scope: "col", className: "epoch-head" }, cell);
    }));
    var rows = [];
    for (var i = 0; i < Math.max(width, prompts.length); i++) {
      var label = i < prompts.length ? prompts[i] : "Sample " + (i + 1);
      var cells = [App.el("th", { scope: "row", className: "sample-prompt", text: label })];
      epochs.forEach(function (e) { cells.push(sampleCell(e, i)); });
      rows.push(App.el("tr", {}, cells));
    }
    var table = App.el("table", { className: "samples", id: "samples-grid" }, [
      App.el("caption", { className: "visually-hidden",
                          text: "Sample images: one row per prompt, one column per epoch" }),
      App.el("thead", {}, [App.el("tr", {}, head)]),
      App.el("tbody", {}, rows),
    ]);
    document.getElementById("samples").replaceChildren(table);
  }

  function renderEvent(event) {
    var text = " ";
    var time = App.el("time", { datetime: event.at, "data-format": "time" });
    App.localTime(time);
    var parts = [time, " ", App.el("span", { className: "event-kind", text: event.kind })];
    if (event.toStatus) text += (event.fromStatus ? event.fromStatus + " → " : "") + event.toStatus;
    if (event.message) text += " — " + event.message;
    parts.push(text);
    return App.el("li", {}, parts);
  }

  function renderTime(run) {
    var node = document.getElementById("run-time");
    var text = App.formatDuration(run.elapsedSeconds) + " so far";
    if (run.eta && run.eta.at) {
      var left = (new Date(run.eta.at).getTime() - Date.now()) / 1000;
      text += "; about " + App.formatDuration(Math.max(0, left)) + " to go";
    }
    node.textContent = text;
  }

  function apply(run) {
    if (run.status !== status) {
      status = run.status;
      badge.className = "status status-" + status;
      badge.textContent = status;
      live.textContent = "Status: " + status;
    }
    if (status !== "pending" && status !== "submitting") {
      // "being submitted" no longer applies
      document.querySelectorAll(".message-while-submitting").forEach(function (n) { n.remove(); });
    }
    var epochs = run.epochs || [];
    var progress = document.querySelector('#run-progress [data-field="progress"]');
    var bar = progress && progress.querySelector("progress");
    if (bar) {
      bar.value = epochs.length;
      progress.querySelector(".progress-text").textContent =
        epochs.length + " / " + bar.max + " epochs";
    }
    var cost = run.chargedCost !== null ? run.chargedCost : run.estimatedCost;
    var estimated = run.chargedCost === null && run.estimatedCost !== null;
    document.getElementById("run-cost").textContent =
      cost === null ? "—" : App.formatCost(cost) + (estimated ? " (est.)" : "");
    renderTime(run);
    if (epochs.length !== seenEpochs) {
      renderGrid(epochs);
      document.getElementById("epochs-empty").hidden = epochs.length > 0;
      if (epochs.length > seenEpochs) live.textContent = "Epoch " + epochs.length + " finished.";
      seenEpochs = epochs.length;
    }
    var events = run.events || [];
    if (events.length !== seenEvents) {
      var timeline = document.getElementById("timeline");
      timeline.replaceChildren.apply(timeline, events.map(renderEvent));
      seenEvents = events.length;
    }
    document.getElementById("cancel-form").hidden = active.indexOf(status) === -1;
    document.getElementById("retry-form").hidden = retryable.indexOf(status) === -1;
  }

  function tick() {
    if (active.indexOf(status) === -1) return false;
    var url = "/api/v1/training-runs/" + runId + "/";
    return App.getJSONIfChanged(url, etag).then(function (answer) {
      if (answer.changed) {
        etag = answer.etag;
        apply(answer.body);
        if (active.indexOf(answer.body.status) === -1) {
          window.location.reload(); // finished: the server words the outcome
          return false;
        }
      }
      return true;
    });
  }

  if (active.indexOf(status) !== -1) App.poll(tick, 2000);
})();
