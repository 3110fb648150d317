// robustaudit report self-check: records script errors and whether the key parts are visible,
// as JSON in <html data-report-status>, so a headless browser (and the tests) can read it back.
(function () {
  "use strict";
  var errors = [];
  window.addEventListener("error", function (e) { errors.push(String(e.message || e)); });
  function visible(el) {
    var r = el.getBoundingClientRect(), s = window.getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none";
  }
  function check(name) {
    var els = document.querySelectorAll('[data-check="' + name + '"]');
    var shown = 0;
    for (var i = 0; i < els.length; i++) { if (visible(els[i])) { shown++; } }
    return { present: els.length, visible: shown };
  }
  function report() {
    var status = {
      errors: errors,
      verdict: check("verdict"),
      heatmap: check("heatmap"),
      comparison: check("comparison"),
      delta: check("delta"),
      heatmapCells: document.querySelectorAll("svg.heatmap rect.hm-cell").length,
      images: document.querySelectorAll("svg.ex-img image").length
    };
    document.documentElement.setAttribute("data-report-status", JSON.stringify(status));
  }
  if (document.readyState === "complete") { report(); } else { window.addEventListener("load", report); }
})();
