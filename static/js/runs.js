/* My runs: while any run is active, poll the API (If-None-Match: an unchanged list is a 304)
   and update status, progress and cost in place. */
(function () {
  "use strict";
  var App = window.App;
  var table = document.getElementById("runs");
  if (!table) return;
  var active = JSON.parse(document.getElementById("active-statuses").textContent);
  var live = document.getElementById("runs-live");
  var etag = null;

  function rows() {
    return Array.prototype.slice.call(table.querySelectorAll("tr[data-run-id]"));
  }

  function anyActive() {
    return rows().some(function (row) {
      return active.indexOf(row.dataset.status) !== -1;
    });
  }

  function update(row, run) {
    var changed = row.dataset.status !== run.status;
    row.dataset.status = run.status;
    var badge = row.querySelector('[data-field="status"]');
    badge.className = "status status-" + run.status;
    badge.textContent = run.status;
    var total = Number(row.dataset.total);
    var done = (run.epochs || []).length;
    var progress = row.querySelector('[data-field="progress"]');
    if (total) {
      progress.replaceChildren(
        App.el("progress", { max: total, value: done, "aria-label": "Epochs done" }),
        " ",
        App.el("span", { className: "progress-text", text: done + " / " + total + " epochs" })
      );
    }
    var cost = run.chargedCost !== null ? run.chargedCost : run.estimatedCost;
    var estimated = run.chargedCost === null && run.estimatedCost !== null;
    row.querySelector('[data-field="cost"]').textContent =
      cost === null ? "—" : App.formatCost(cost) + (estimated ? " (est.)" : "");
    return changed ? run.loraName + ": " + run.status : null;
  }

  function tick() {
    if (!anyActive()) {
      live.textContent = "";
      return false;
    }
    return App.getJSONIfChanged("/api/v1/training-runs/?pageSize=100", etag).then(function (answer) {
      if (!answer.changed) return anyActive(); // 304: nothing new since the last look
      etag = answer.etag;
      var page = answer.body;
      var byId = {};
      page.results.forEach(function (run) {
        byId[run.id] = run;
      });
      var news = [];
      rows().forEach(function (row) {
        var run = byId[row.dataset.runId];
        if (run) {
          var note = update(row, run);
          if (note) news.push(note);
        }
      });
      if (news.length) live.textContent = news.join("; ");
      return anyActive();
    });
  }

  if (anyActive()) App.poll(tick, 3000);
})();
