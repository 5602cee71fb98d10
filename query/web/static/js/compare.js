/* The comparison page: "differences only" without a reload, and the metric curves of
   the runs overlaid (uPlot). The table is the server's; this only hides its rows. */
"use strict";
(function () {
  var P = window.provml;
  var toggle = document.getElementById("diff-only");
  function apply() {
    document.querySelectorAll("#compare tbody tr").forEach(function (tr) {
      tr.hidden = toggle.checked && tr.getAttribute("data-differs") !== "true";
    });
  }
  if (toggle) {
    toggle.addEventListener("change", apply);
    apply();
  }
  var curves = P.data("curves-data");
  if (curves) {
    document.querySelectorAll(".chart[data-metric]").forEach(function (chart) {
      var c = curves[chart.getAttribute("data-metric")];
      if (c) P.plot(chart, chart.getAttribute("data-metric"), c.steps, c.series);
    });
  }
})();
