/* The run page: while the run is active, poll the API and update status, progress, cost, epochs,
   samples, the timeline and which of cancel / retry is offered. */
(function () {
  "use strict";
  var App = window.App;
  var runId = JSON.parse(document.getElementById("run-id").textContent);
  var active = JSON.parse(document.getElementById("active-statuses").textContent);
  var retryable = JSON.parse(document.getElementById("retryable-statuses").textContent);
  var badge = document.querySelector('#run-status [data-field="status"]');
  var live = document.getElementById("run-live");
  var status = badge.textContent.trim();
  var seenEpochs = document.querySelectorAll("#epochs > li").length;
  var seenEvents = document.querySelectorAll("#timeline > li").length;

  function renderEpoch(epoch) {
    var n = epoch.epochNumber;
    var children = [App.el("h3", { text: "Epoch " + n })];
    if (epoch.modelUrl) {
      var size = epoch.modelSize ? " (" + App.formatBytes(epoch.modelSize) + ")" : "";
      children.push(App.el("p", {}, [
        App.el("a", { href: epoch.modelUrl, download: true, text: "Download epoch " + n + size }),
      ]));
    }
    children.push(App.el("div", { className: "gallery" }, (epoch.sampleImages || []).map(
      function (url, i) {
        return App.el("a", { href: url }, [
          App.el("img", { src: url, alt: "Epoch " + n + ", sample " + (i + 1), loading: "lazy" }),
        ]);
      })));
    return App.el("li", { className: "epoch" }, children);
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

  function apply(run) {
    if (run.status !== status) {
      status = run.status;
      badge.className = "status status-" + status;
      badge.textContent = status;
      live.textContent = "Status: " + status;
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
    if (epochs.length !== seenEpochs) {
      var list = document.getElementById("epochs");
      list.replaceChildren.apply(list, epochs.map(renderEpoch));
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
    var error = document.getElementById("run-error");
    if (run.error) {
      error.textContent = run.error.message + " ";
      error.appendChild(App.el("code", { text: run.error.code }));
      error.hidden = false;
    }
    document.getElementById("cancel-form").hidden = active.indexOf(status) === -1;
    document.getElementById("retry-form").hidden = retryable.indexOf(status) === -1;
  }

  function tick() {
    if (active.indexOf(status) === -1) return false;
    return App.getJSON("/api/v1/training-runs/" + runId + "/").then(function (run) {
      apply(run);
      return active.indexOf(run.status) !== -1;
    });
  }

  if (active.indexOf(status) !== -1) App.poll(tick, 2000);
})();
