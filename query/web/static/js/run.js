/* A run's page: its tasks as a DAG (cytoscape + dagre) and its metrics per step (uPlot).
   Everything drawn here is also in the page's tables. */
"use strict";
(function () {
  var P = window.provml;
  var dag = P.data("dag-data");
  var box = document.getElementById("dag");
  if (dag && box && window.cytoscape) {
    if (window.cytoscapeDagre) window.cytoscape.use(window.cytoscapeDagre);
    var elements = dag.tasks.map(function (t) {
      return { data: { id: t.execution, label: dag.names[t.execution] || t.name, status: t.status || "running" } };
    });
    var seen = {};
    dag.edges.forEach(function (e) {
      var key = e.from + " " + e.to;
      if (seen[key] || e.from === e.to) return;
      seen[key] = true;
      elements.push({ data: { id: "e" + elements.length, source: e.from, target: e.to } });
    });
    var cy = window.cytoscape({
      container: box, elements: elements,
      style: [
        { selector: "node", style: { shape: "round-rectangle", "background-color": "#9fb1fc",
          "border-width": 1, "border-color": "#3b4a80", label: "data(label)", "text-valign": "center",
          color: "#1f2933", "font-size": 12, width: "label", height: 28, padding: 10 } },
        { selector: "node[status = 'failed']", style: { "background-color": "#fca5a5", "border-color": "#9b1c1c", "border-width": 2 } },
        { selector: "edge", style: { width: 1.5, "line-color": "#6b7280", "target-arrow-color": "#6b7280",
          "target-arrow-shape": "triangle", "curve-style": "bezier" } }
      ],
      layout: { name: window.cytoscapeDagre ? "dagre" : "breadthfirst", rankDir: "LR", directed: true, padding: 20 }
    });
    cy.on("tap", "node", function (ev) {
      var id = ev.target.id();
      window.location.href = P.root + "/lineage?node=" + encodeURIComponent(id) + "&direction=both&depth=1";
    });
    window.provmlDag = cy;
    box.setAttribute("data-ready", "true");
  }
  var series = P.data("series-data");
  if (series) {
    document.querySelectorAll(".chart[data-metric]").forEach(function (chart) {
      var perTask = series[chart.getAttribute("data-metric")] || {};
      var steps = {};
      Object.keys(perTask).forEach(function (t) { perTask[t].forEach(function (p) { steps[p[0]] = true; }); });
      var xs = Object.keys(steps).map(Number).sort(function (a, b) { return a - b; });
      var lines = Object.keys(perTask).map(function (t) {
        var at = {};
        perTask[t].forEach(function (p) { at[p[0]] = p[1]; });
        return { label: t, values: xs.map(function (x) { return x in at ? at[x] : null; }) };
      });
      P.plot(chart, chart.getAttribute("data-metric"), xs, lines);
    });
  }
})();
