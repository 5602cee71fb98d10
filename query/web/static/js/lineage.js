/* The lineage view: the graph /api/v1/lineage answers, drawn with PROV's conventions
   (entities yellow ellipses, activities blue rectangles, agents orange houses), laid out
   with dagre; a node expands, a folded fan-out pages, a path can be shown alone, and the
   view exports as SVG or PNG. The tables under the graph always list what it shows.
   Nothing here invents an edge: every edge drawn is one the JSON endpoints answered. */
"use strict";
(function () {
  var P = window.provml;
  var start = P.data("lineage-data");
  var box = document.getElementById("graph");
  if (!start || !box || !window.cytoscape) return;
  if (window.cytoscapeDagre) window.cytoscape.use(window.cytoscapeDagre);

  var view = start.view, root = view.root, direction = start.direction, fold = start.fold;
  var expanded = {};           // node id -> true once its neighbours were asked for
  var foldPages = {};          // fold node id -> {offset, more, members: [ids]}
  var COLORS = { entity: "#fffc87", activity: "#9fb1fc", agent: "#fed37f" };
  var BORDERS = { entity: "#808080", activity: "#0000ff", agent: "#8a5a00" };
  var SHAPES = { entity: "ellipse", activity: "rectangle", agent: "pentagon" };

  function clip(text, n) { text = String(text || ""); return text.length > n ? text.slice(0, n - 1) + "…" : text; }
  function shortId(id) { var parts = String(id).replace(/\/$/, "").split("/"); return parts[parts.length - 1]; }

  function nodeElement(n) {
    var label = n.label || shortId(n.id);
    return { group: "nodes", data: { id: n.id, label: label, short: clip(label, 28), kind: n.kind || "entity",
      type: n.type || "", sha256: n.sha256 || "", url: n.url || "", count: n.count || 0,
      fold: n.fold ? JSON.stringify(n.fold) : "", root: n.id === root ? "yes" : "" } };
  }
  function edgeId(e) { return "e|" + e.source + "|" + e.relation + "|" + e.target; }
  function edgeElement(e) {
    return { group: "edges", data: { id: edgeId(e), source: e.source, target: e.target, relation: e.relation } };
  }

  var elements = view.nodes.map(nodeElement).concat(view.edges.map(edgeElement));
  var cy = window.cytoscape({
    container: box, elements: elements, minZoom: 0.05, maxZoom: 3,
    textureOnViewport: view.nodes.length > 400, hideEdgesOnViewport: view.nodes.length > 400,
    style: [
      { selector: "node", style: {
        shape: function (n) { return SHAPES[n.data("kind")] || "ellipse"; },
        "background-color": function (n) { return COLORS[n.data("kind")] || "#eeeeee"; },
        "border-color": function (n) { return BORDERS[n.data("kind")] || "#555"; },
        "border-width": 1, label: "data(short)", color: "#1f2933", "font-size": 11,
        "text-valign": "center", "text-halign": "center", "text-wrap": "ellipsis", "text-max-width": 150,
        width: 160, height: 36 } },
      { selector: "node[kind = 'agent']", style: { width: 110, height: 46 } },
      { selector: "node[fold != '']", style: { "border-style": "dashed", "border-width": 3, "font-weight": "bold" } },
      { selector: "node[root = 'yes']", style: { "border-width": 4, "border-color": "#1f2933" } },
      { selector: "node:selected", style: { "overlay-color": "#0b5cad", "overlay-opacity": 0.18, "border-width": 4, "border-color": "#0b5cad" } },
      { selector: "edge", style: { width: 1.4, "line-color": "#7b8794", "target-arrow-color": "#7b8794",
        "target-arrow-shape": "triangle", "curve-style": "bezier", "arrow-scale": 0.9 } },
      { selector: ".hidden", style: { display: "none" } }
    ]
  });
  if (cy.edges().length < 80) cy.style().selector("edge").style({ label: "data(relation)", "font-size": 9,
    color: "#4b5563", "text-rotation": "autorotate", "text-background-color": "#fff", "text-background-opacity": 1 }).update();

  function layout(done) {
    var big = shown().nodes().length > 1500 || !window.cytoscapeDagre;
    var l = shown().layout(big
      ? { name: "breadthfirst", directed: true, padding: 20, animate: false, spacingFactor: 0.9 }
      : { name: "dagre", rankDir: "RL", nodeSep: 18, rankSep: 70, padding: 20, animate: false });
    l.one("layoutstop", function () { if (done) done(); });
    l.run();
  }

  function shown() {
    return cy.elements().filter(function (e) {
      return !e.hasClass("hidden") && (e.isNode() || (!e.source().hasClass("hidden") && !e.target().hasClass("hidden")));
    });
  }

  // --- the tables: always what the graph shows ------------------------------------
  function selectButton(id) {
    var b = P.el("button", { type: "button", class: "btn secondary", "data-select": id, text: "select" });
    b.addEventListener("click", function () { select(cy.getElementById(id)); box.scrollIntoView({ block: "nearest" }); });
    return b;
  }
  function renderTables() {
    // by class, not ":visible": the style of a class just set may not be computed yet
    var nodes = shown().nodes(), edges = shown().edges();
    var nb = document.querySelector("#nodes tbody"), eb = document.querySelector("#edges tbody");
    nb.textContent = ""; eb.textContent = "";
    nodes.forEach(function (n) {
      var d = n.data();
      var label = d.url ? P.el("a", { href: P.root + d.url, text: d.label }) : document.createTextNode(d.label);
      var first = P.el("td", {}, [label]);
      if (d.root) first.appendChild(P.el("strong", { text: " (root)" }));
      var open = P.el("td", {}, [selectButton(d.id)]);
      if (!d.fold) {
        open.appendChild(document.createTextNode(" "));
        open.appendChild(P.el("a", { href: P.root + "/lineage?node=" + encodeURIComponent(d.id) +
          "&direction=" + direction + "&depth=" + start.depth, text: "lineage" }));
      } else {
        open.appendChild(document.createTextNode(" " + d.count + " folded"));
      }
      var tr = P.el("tr", { "data-id": d.id }, [first, P.el("td", { text: d.kind }), P.el("td", { text: d.type }),
        P.el("td", {}, d.sha256 ? [P.el("code", { title: d.sha256, text: d.sha256.slice(0, 12) })] : []), open]);
      if (d.fold) tr.setAttribute("data-fold", "true");
      nb.appendChild(tr);
    });
    edges.forEach(function (e) {
      var d = e.data();
      eb.appendChild(P.el("tr", { "data-source": d.source, "data-target": d.target }, [
        P.el("td", { text: e.source().data("label") }), P.el("td", { text: d.relation }),
        P.el("td", { text: e.target().data("label") })]));
    });
    document.getElementById("node-count").textContent = "(" + nodes.length + ")";
    document.getElementById("edge-count").textContent = "(" + edges.length + ")";
  }

  // --- details, expansion, folds ----------------------------------------------------
  var details = document.getElementById("details-body");
  var statusLine = document.getElementById("status");
  function say(text) { statusLine.textContent = text; }

  function fact(dl, name, value) {
    if (!value && value !== 0) return;
    dl.appendChild(P.el("dt", { text: name }));
    dl.appendChild(P.el("dd", { class: name === "id" || name === "sha256" ? "mono" : "" }, [value]));
  }
  function button(text, onClick, id) {
    var b = P.el("button", { type: "button", class: "btn", text: text });
    if (id) b.id = id;
    b.addEventListener("click", onClick);
    return b;
  }
  function showDetails(node) {
    details.textContent = "";
    document.getElementById("details-empty").hidden = !!node;
    if (!node) return;
    var d = node.data();
    details.appendChild(P.el("h3", { text: d.label }));
    var dl = P.el("dl", { class: "facts" });
    fact(dl, "kind", d.kind); fact(dl, "type", d.type); fact(dl, "sha256", d.sha256);
    if (!d.fold) fact(dl, "id", d.id);
    if (d.fold) fact(dl, "folded", String(d.count) + " nodes");
    details.appendChild(dl);
    var actions = P.el("div", { class: "actions" });
    if (d.fold) {
      var page = foldPages[d.id];
      actions.appendChild(button(page ? "Next page" : "Open", function () { openFold(node); }, "fold-open"));
    } else {
      actions.appendChild(button(expanded[d.id] ? "Expanded" : "Expand", function () { expand(node); }, "expand"));
      if (d.url) actions.appendChild(P.el("a", { href: P.root + d.url, text: "record" }));
      actions.appendChild(P.el("a", { href: P.root + "/lineage?node=" + encodeURIComponent(d.id) +
        "&direction=" + direction + "&depth=" + start.depth, text: "as root" }));
    }
    details.appendChild(actions);
    if (expanded[d.id] && !d.fold) actions.querySelector("#expand").disabled = true;
  }

  var selected = null;
  function select(node) {
    if (!node || node.empty()) return;
    cy.$(":selected").unselect();
    node.select();
    selected = node;
    showDetails(node);
    applyPathOnly();
  }

  function merge(found) {
    var added = cy.collection();
    (found.nodes || []).forEach(function (n) {
      if (cy.getElementById(n.id).empty()) added = added.union(cy.add(nodeElement(n)));
    });
    (found.edges || []).forEach(function (e) {
      if (cy.getElementById(edgeId(e)).empty() && !cy.getElementById(e.source).empty() &&
          !cy.getElementById(e.target).empty()) added = added.union(cy.add(edgeElement(e)));
    });
    return added;
  }

  function get(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.message || r.statusText);
        return body;
      });
    });
  }

  function relayout() {
    box.setAttribute("data-ready", "false");
    layout(function () { renderTables(); box.setAttribute("data-ready", "true"); if (selected) showDetails(selected); });
  }

  function expand(node) {
    var id = node.id();
    say("Expanding " + node.data("label") + "…");
    get(P.api("/api/v1/lineage") + "?node=" + encodeURIComponent(id) + "&direction=" + direction +
        "&depth=1&fold=" + fold).then(function (found) {
      expanded[id] = true;
      var added = merge(found);
      say("Expanded " + node.data("label") + ": " + added.nodes().length + " new nodes, " + added.edges().length + " new edges.");
      relayout();
    }).catch(function (err) { say("Could not expand: " + err.message); });
  }

  function openFold(node) {
    var spec = JSON.parse(node.data("fold"));
    var page = foldPages[node.id()] || { offset: 0, members: [] };
    var limit = Math.max(fold, 10);
    var url = P.api("/api/v1/lineage/fold") + "?node=" + encodeURIComponent(spec.node) + "&relation=" +
      encodeURIComponent(spec.relation) + "&type=" + encodeURIComponent(spec.type) + "&direction=" +
      encodeURIComponent(spec.direction) + "&offset=" + page.offset + "&limit=" + limit;
    say("Opening " + node.data("label") + "…");
    get(url).then(function (found) {
      // the page shown before goes (its members that nothing else brought in)
      page.members.forEach(function (id) { cy.getElementById(id).remove(); });
      var added = merge(found);
      var from = page.offset + 1, to = page.offset + (found.nodes || []).length;
      page = { offset: found.more ? page.offset + limit : 0, more: !!found.more,
               members: added.nodes().map(function (n) { return n.id(); }) };
      foldPages[node.id()] = page;
      node.data("short", clip(node.data("label"), 20) + " · " + from + "–" + to);
      say("Showing " + from + "–" + to + " of " + node.data("count") + (found.more ? "; open again for the next page." : "."));
      relayout();
    }).catch(function (err) { say("Could not open: " + err.message); });
  }

  // --- selected path only: the nodes on a directed path between the root and it ----
  var pathOnly = document.getElementById("path-only");
  function applyPathOnly() {
    cy.elements().removeClass("hidden");
    if (pathOnly.checked && selected && !selected.removed()) {
      var r = cy.getElementById(root), s = selected;
      var keep = r.union(s)
        .union(r.successors().nodes().intersection(s.predecessors().nodes()))
        .union(r.predecessors().nodes().intersection(s.successors().nodes()));
      var edges = keep.edgesWith(keep).filter(function (e) {
        return keep.contains(e.source()) && keep.contains(e.target());
      });
      cy.elements().difference(keep.union(edges)).addClass("hidden");
    }
    renderTables();
  }
  pathOnly.addEventListener("change", applyPathOnly);

  cy.on("tap", "node", function (ev) { select(ev.target); });
  cy.on("dbltap", "node", function (ev) {
    if (ev.target.data("fold")) openFold(ev.target); else expand(ev.target);
  });
  document.getElementById("fit").addEventListener("click", function () { cy.fit(shown(), 20); });

  // --- export ------------------------------------------------------------------------
  function download(name, blob) {
    var a = P.el("a", { href: URL.createObjectURL(blob), download: name });
    document.body.appendChild(a); a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 0);
  }
  function esc(text) {
    return String(text).replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; });
  }
  function svg() {
    var visible = shown(), bb = visible.boundingBox(), pad = 20;
    var out = ['<svg xmlns="http://www.w3.org/2000/svg" viewBox="' + (bb.x1 - pad) + " " + (bb.y1 - pad) + " " +
      (bb.w + 2 * pad) + " " + (bb.h + 2 * pad) + '" font-family="sans-serif" font-size="11">',
      '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">' +
      '<path d="M0,0 L10,5 L0,10 z" fill="#7b8794"/></marker></defs>'];
    visible.edges().forEach(function (e) {
      var s = e.sourceEndpoint(), t = e.targetEndpoint();
      out.push('<line x1="' + s.x + '" y1="' + s.y + '" x2="' + t.x + '" y2="' + t.y +
        '" stroke="#7b8794" stroke-width="1.4" marker-end="url(#arrow)"><title>' + esc(e.data("relation")) + "</title></line>");
    });
    visible.nodes().forEach(function (n) {
      var p = n.position(), w = n.width(), h = n.height(), k = n.data("kind");
      var fill = COLORS[k] || "#eee", stroke = BORDERS[k] || "#555";
      var dash = n.data("fold") ? ' stroke-dasharray="5,3" stroke-width="3"' : "";
      var shape;
      if (k === "activity") shape = '<rect x="' + (p.x - w / 2) + '" y="' + (p.y - h / 2) + '" width="' + w + '" height="' + h + '"';
      else if (k === "agent") shape = '<polygon points="' + [[0, -h / 2], [w / 2, -h / 8], [w / 2, h / 2], [-w / 2, h / 2], [-w / 2, -h / 8]]
        .map(function (q) { return (p.x + q[0]) + "," + (p.y + q[1]); }).join(" ") + '"';
      else shape = '<ellipse cx="' + p.x + '" cy="' + p.y + '" rx="' + w / 2 + '" ry="' + h / 2 + '"';
      out.push("<g>" + shape + ' fill="' + fill + '" stroke="' + stroke + '"' + dash + "/>" +
        '<text x="' + p.x + '" y="' + (p.y + 4) + '" text-anchor="middle" fill="#1f2933">' + esc(n.data("short")) +
        "</text><title>" + esc(n.data("label")) + "</title></g>");
    });
    out.push("</svg>");
    return out.join("\n");
  }
  window.provmlLineageSvg = svg;
  document.getElementById("export-svg").addEventListener("click", function () {
    download("lineage.svg", new Blob([svg()], { type: "image/svg+xml" }));
  });
  document.getElementById("export-png").addEventListener("click", function () {
    download("lineage.png", cy.png({ full: true, bg: "#ffffff", scale: 2, output: "blob" }));
  });

  // the table's rows select their node (keyboard users reach the graph's nodes this way)
  layout(function () {
    renderTables();
    cy.fit(cy.elements(), 20);
    box.setAttribute("data-ready", "true");
    window.provmlLayoutDone = performance.now();
    window.provmlCy = cy;
    var r = cy.getElementById(root);
    if (!r.empty()) { r.select(); selected = r; showDetails(r); }
  });
})();
