/* provml's pages: what several pages' scripts share. Plain JS, no build step. */
"use strict";
window.provml = (function () {
  var root = document.body.getAttribute("data-root") || "";
  // series colours: distinguishable, each >= 3:1 against white (graphics contrast)
  var PALETTE = ["#0b5cad", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207", "#4b5563"];

  function data(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  /* a line plot of one metric: steps on x, one series per label (null: no value) */
  function plot(container, title, steps, series) {
    if (!window.uPlot || !container) return null;
    var width = Math.max(container.clientWidth || 400, 280);
    var opts = {
      title: "", width: width, height: 240,
      scales: { x: { time: false } },
      axes: [{ label: "step", stroke: "#1f2933" }, { stroke: "#1f2933" }],
      series: [{ label: "step" }].concat(series.map(function (s, i) {
        return { label: s.label, stroke: PALETTE[i % PALETTE.length], width: 2, spanGaps: true,
                 points: { show: steps.length < 40 } };
      }))
    };
    var rows = [steps].concat(series.map(function (s) { return s.values; }));
    return new window.uPlot(opts, rows, container);
  }

  return { root: root, data: data, el: el, plot: plot, palette: PALETTE,
           api: function (path) { return root + path; } };
})();
