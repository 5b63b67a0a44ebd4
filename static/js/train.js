/* The new-run page: engine toggles, the parameter table, the zip upload and the live estimate.
   The form works without this script (a normal POST); this adds what needs no reload. */
(function () {
  "use strict";
  var App = window.App;
  var data = JSON.parse(document.getElementById("page-data").textContent);
  var form = document.getElementById("run-form");
  if (!form) return;

  var models = {};
  data.catalog.baseModels.forEach(function (model) {
    models[model.key] = model;
  });
  var engineLabels = {};
  data.catalog.engines.forEach(function (engine) {
    engineLabels[engine.key] = engine.label;
  });

  var baseSelect = document.getElementById("f-baseModel");
  var rapidBox = document.getElementById("f-engine-rapid");
  var aiBox = document.getElementById("f-engine-ai-toolkit"); // absent unless the feature is active
  var rapidWrap = document.getElementById("rapid-toggle");
  var aiWrap = document.getElementById("ai-toolkit-toggle");
  var aiReason = document.getElementById("ai-toolkit-reason");
  var aiReasonText = document.getElementById("ai-toolkit-reason-text");
  var aiRapidNote = document.getElementById("ai-toolkit-rapid-note");
  var aiNotice = document.getElementById("ai-toolkit-notice");
  var engineLabel = document.getElementById("engine-label");
  var paramsBox = document.getElementById("params");
  var fileInput = document.getElementById("f-trainingZip");
  var uploadedName = document.getElementById("f-uploadedName");
  var uploadStatus = document.getElementById("upload-status");
  var submitButton = document.getElementById("submit-run");

  function model() {
    return models[baseSelect.value];
  }

  function engineEntry(key) {
    var current = model();
    if (!current) return null;
    for (var i = 0; i < current.engines.length; i++) {
      if (current.engines[i].key === key) return current.engines[i];
    }
    return null;
  }

  function currentEngine() {
    if (aiBox && aiBox.checked) return "ai-toolkit";
    if (rapidBox && rapidBox.checked) return "rapid";
    return model() ? model().defaultEngine : "kohya";
  }

  // Visibility and mutual exclusion of the two toggles (ai-toolkit-plan §3.1).
  function syncToggles() {
    var rapid = engineEntry("rapid");
    var rapidOffered = !!(rapid && rapid.available);
    rapidWrap.hidden = !rapidOffered;
    if (!rapidOffered) rapidBox.checked = false;
    if (aiBox) {
      var ai = engineEntry("ai-toolkit");
      var aiOffered = !!(ai && ai.available);
      aiWrap.hidden = !aiOffered;
      if (!aiOffered) aiBox.checked = false;
      var why = ai && !ai.available ? ai.reason : "";
      aiReason.hidden = !why;
      aiReasonText.textContent = why || "";
      aiRapidNote.hidden = !rapidOffered;
      aiBox.disabled = rapidBox.checked;
    }
    rapidBox.disabled = !!(aiBox && aiBox.checked);
    var rapidWhy = document.getElementById("rapid-why");
    var aiWhy = document.getElementById("ai-toolkit-why");
    if (rapidWhy) rapidWhy.hidden = !rapidBox.disabled;
    if (aiWhy) aiWhy.hidden = !(aiBox && aiBox.disabled);
    var engine = currentEngine();
    engineLabel.textContent = engineLabels[engine] || engine;
    if (aiNotice) aiNotice.hidden = engine !== "ai-toolkit";
  }

  // --- the parameter table (mirrors templates/training/_param_row.html) ---

  function numberText(value) {
    return value === null || value === undefined ? "" : String(value);
  }

  // Mirrors training/web/forms.py range_text.
  function rangeText(row) {
    var shown = row.default === null && row.computed ? "auto" : numberText(row.default) || "none";
    if (row.type === "bool") shown = row.default === true ? "on" : "off";
    if ((row.type === "int" || row.type === "float") && row.min !== null && row.max !== null) {
      if (row.min === row.max) return "Fixed at " + numberText(row.min) + ".";
      return numberText(row.min) + " to " + numberText(row.max) + ", default " + shown + ".";
    }
    return "Default " + shown + ".";
  }

  // --- presets (the values come from training/presets.py, in page-data) ---

  var appliedPreset = document.getElementById("f-appliedPreset");

  function presetChoices() {
    var byEngine = data.presets[baseSelect.value] || {};
    return byEngine[currentEngine()] || [];
  }

  function valueText(value) {
    if (value === true) return "on";
    if (value === false) return "off";
    return String(value);
  }

  function renderPresetValues() {
    presetChoices().forEach(function (choice) {
      var node = form.querySelector('.preset-values[data-preset="' + choice.key + '"]');
      if (!node) return;
      node.textContent = choice.values.map(function (v) {
        return v.label + " " + valueText(v.value);
      }).join(" · ");
    });
  }

  function applyPreset(key) {
    presetChoices().forEach(function (choice) {
      if (choice.key !== key) return;
      choice.values.forEach(function (v) {
        var input = document.getElementById(App.inputId("params." + v.name));
        if (!input) return;
        if (input.type === "checkbox") input.checked = v.value === true;
        else input.value = String(v.value);
      });
    });
    if (appliedPreset) appliedPreset.value = key;
  }

  function renderRow(row) {
    var name = "params." + row.name;
    var id = App.inputId(name);
    var described = id + "-help " + id + "-error";
    var control;
    var hidden = null;
    if (row.locked) {
      var shown = row.default === null ? "not used" : String(row.default);
      control = App.el("input", { type: "text", id: id, value: shown, readonly: true,
        "aria-describedby": id + "-help" });
    } else if (row.type === "bool") {
      hidden = App.el("input", { type: "hidden", name: name, value: "false" });
      control = App.el("input", { type: "checkbox", id: id, name: name, value: "true",
        "aria-describedby": described });
      control.checked = row.default === true;
    } else if (row.type === "enum") {
      control = App.el("select", { id: id, name: name, "aria-describedby": described },
        row.options.map(function (option) {
          var node = App.el("option", { value: option, text: option });
          node.selected = option === row.default;
          return node;
        }));
    } else {
      control = App.el("input", {
        type: "number", id: id, name: name, value: numberText(row.default),
        min: row.min, max: row.max,
        step: row.type === "int" ? row.step || 1 : "any",
        inputmode: row.type === "int" ? "numeric" : "decimal",
        placeholder: row.computed ? "auto" : null,
        "aria-describedby": described,
      });
    }
    var help = row.help ? row.help + " " : "";
    help += row.locked ? "Fixed for this engine." : rangeText(row);
    return App.el("div", { className: "param" + (row.locked ? " param-locked" : ""),
      "data-name": row.name }, [
      App.el("label", { for: id, text: row.label }),
      hidden,
      control,
      App.el("p", { className: "help", id: id + "-help", text: help }),
      App.el("p", { className: "field-error", id: id + "-error", hidden: true }),
    ]);
  }

  function renderParams() {
    var entry = engineEntry(currentEngine());
    var rows = entry && entry.available ? entry.params : [];
    paramsBox.replaceChildren.apply(paramsBox, rows.map(renderRow));
  }

  // --- errors next to their fields ---

  function errorNode(inputName) {
    return document.getElementById(App.inputId(inputName) + "-error");
  }

  function setError(inputName, message, live) {
    var node = errorNode(inputName);
    if (!node) return false;
    node.textContent = message;
    node.hidden = !message;
    if (live) node.dataset.live = "1";
    var input = document.getElementById(App.inputId(inputName));
    if (input && input.tagName !== "FIELDSET") {
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
    return true;
  }

  function clearLiveErrors() {
    form.querySelectorAll('.field-error[data-live="1"]').forEach(function (node) {
      node.textContent = "";
      node.hidden = true;
      delete node.dataset.live;
      var input = document.getElementById(node.id.replace(/-error$/, ""));
      if (input) input.removeAttribute("aria-invalid");
    });
  }

  function showErrors(errors) {
    var byInput = {};
    errors.forEach(function (error) {
      if (!error.input) return;
      (byInput[error.input] = byInput[error.input] || []).push(error.message);
    });
    Object.keys(byInput).forEach(function (name) {
      setError(name, byInput[name].join(" "), true);
    });
  }

  // Editing a field clears what was said about it.
  form.addEventListener("input", function (event) {
    var name = event.target.name;
    if (name && name !== "engine") setError(name === "uploadedName" ? "trainingZip" : name, "");
  });

  // --- the live estimate ---

  var figures = {
    cost: document.getElementById("estimate-cost"),
    jobs: document.getElementById("estimate-jobs"),
    eta: document.getElementById("estimate-eta"),
  };
  var estimate = document.getElementById("estimate");
  var estimateStatus = document.getElementById("estimate-status");
  var warningsList = document.getElementById("estimate-warnings");
  var timer = null;
  var sequence = 0;

  function showFigures(estimate) {
    figures.cost.textContent = estimate ? App.formatCost(estimate.cost.total) : "—";
    figures.jobs.textContent = estimate ? App.formatNumber(estimate.jobsAhead) : "—";
    figures.eta.textContent = estimate ? App.formatMinutes(estimate.etaMinutes) : "—";
    warningsList.replaceChildren.apply(
      warningsList,
      ((estimate && estimate.warnings) || []).map(function (text) {
        return App.el("li", { text: text });
      })
    );
  }

  function estimateNow() {
    var mine = ++sequence;
    var body = new FormData(form);
    body.delete("trainingZip");
    body.delete("csrfmiddlewaretoken");
    estimate.dataset.state = "loading";
    App.postForm(data.urls.estimate, body).then(
      function (answer) {
        if (mine !== sequence) return; // a newer request is on its way
        clearLiveErrors();
        if (answer.ok && answer.body.estimate) {
          showFigures(answer.body.estimate);
          estimate.dataset.state = "ready";
          var total = answer.body.estimate.cost.total;
          estimateStatus.textContent =
            "Estimated cost " + App.formatCost(total) + " for " +
            answer.body.imageCount + " training file" + (answer.body.imageCount === 1 ? "" : "s") +
            ".";
        } else if (answer.ok) {
          showFigures(null);
          estimate.dataset.state = "incomplete";
          estimateStatus.textContent = answer.body.message;
        } else {
          showFigures(null);
          estimate.dataset.state = "error";
          estimateStatus.textContent = answer.body.message || "No estimate.";
          showErrors(answer.body.errors || []);
        }
      },
      function () {
        if (mine !== sequence) return;
        showFigures(null);
        estimate.dataset.state = "error";
        estimateStatus.textContent = "The price could not be fetched; check your connection.";
      }
    );
  }

  function scheduleEstimate() {
    if (data.step !== "review" || !estimate) return; // the price is on the review step
    window.clearTimeout(timer);
    sequence++; // an answer to a request sent before this change is stale
    estimate.dataset.state = "pending";
    timer = window.setTimeout(estimateNow, 400);
  }

  // --- training data ---

  function syncSource() {
    var source = form.querySelector('input[name="dataSource"]:checked');
    var value = source ? source.value : "upload";
    form.querySelectorAll(".source").forEach(function (section) {
      section.hidden = section.dataset.source !== value;
    });
  }

  // The zip is stored by the data step's own POST (throttled on the server, bounded while it
  // streams); choosing a file uploads it at once, after a size check that saves a long wait.
  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    if (!file) return;
    if (file.size > data.uploadMaxBytes) {
      setError("trainingZip", "The zip is larger than the upload limit; upload fewer or smaller images, or give a URL instead.");
      fileInput.value = "";
      return;
    }
    setError("trainingZip", "");
    uploadedName.value = "";
    uploadStatus.textContent = "Uploading " + file.name + "…";
    var button = document.getElementById("upload-button");
    if (form.requestSubmit && button) form.requestSubmit(button);
  });

  // --- wiring ---

  function reapply() {
    renderParams(); // defaults re-applied for the new base model or engine
    renderPresetValues();
    var chosen = form.querySelector('input[name="preset"]:checked');
    if (chosen && chosen.value !== "custom") applyPreset(chosen.value);
  }

  baseSelect.addEventListener("change", function () {
    syncToggles();
    reapply();
    scheduleEstimate();
  });
  [rapidBox, aiBox].forEach(function (box) {
    if (!box) return;
    box.addEventListener("change", function () {
      syncToggles();
      reapply(); // off returns to the base model's default engine
      scheduleEstimate();
    });
  });
  form.querySelectorAll('input[name="preset"]').forEach(function (radio) {
    radio.addEventListener("change", function () {
      if (radio.value !== "custom") applyPreset(radio.value);
      else {
        if (appliedPreset) appliedPreset.value = "";
        var advanced = document.getElementById("advanced");
        if (advanced) advanced.open = true;
      }
    });
  });
  form.querySelectorAll('input[name="dataSource"]').forEach(function (radio) {
    radio.addEventListener("change", function () {
      syncSource();
      scheduleEstimate();
    });
  });
  form.addEventListener("input", function (event) {
    if (event.target !== fileInput && event.target.name !== "engine") scheduleEstimate();
  });
  form.addEventListener("change", function (event) {
    if (event.target.tagName === "SELECT" && event.target !== baseSelect) scheduleEstimate();
  });

  form.addEventListener("submit", function (event) {
    var action = event.submitter ? event.submitter.value : "";
    // Only the data step's own upload sends the file; every other step leaves it behind.
    if (action !== "upload" && (data.step !== "data" || uploadedName.value)) fileInput.disabled = true;
    if (action === "start") {
      // After the form data is taken: a disabled submitter would not send its action.
      window.setTimeout(function () {
        submitButton.disabled = true;
        submitButton.textContent = "Starting…";
      }, 0);
    }
  });
  window.addEventListener("pageshow", function () {
    fileInput.disabled = false;
    if (submitButton && !submitButton.hasAttribute("disabled")) submitButton.textContent = "Start training";
  });

  syncToggles();
  syncSource();
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
