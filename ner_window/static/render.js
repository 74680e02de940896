/* ner-window's renderer: the API's JSON in, DOM nodes out (no requests, no page state).

   Every piece of text enters the page as a text node (el() below), never as markup, so user
   text such as <img src=x onerror=alert(1)> is shown as text.  The renderer shows what the API
   returned and computes one thing only: the marks at another threshold, by the rule of
   ner_window/tagger.py (a binary model tags LOC where p >= threshold; a span is a run of
   consecutive tokens with the same label).  It reads the explain JSON by key and skips what is
   missing, so a model that adds keys (tag scores, transitions, a Viterbi path) still renders,
   and the whole JSON is always one click away. */
"use strict";

const NerWindowRender = (() => {
  const SVG_NS = "http://www.w3.org/2000/svg";

  // ------------------------------------------------------------------ building blocks

  function build(node, attrs, children) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null && v !== false) node.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  /** An HTML element; string children become text nodes (escaped by construction). */
  const el = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
  /** An SVG element, the same way. */
  const svg = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);

  /** The value at a dotted path ("backward.delta.norm", "window.2.casing"), or undefined. */
  function at(obj, path) {
    return path.split(".").reduce((o, k) => (o === undefined || o === null ? undefined : o[k]), obj);
  }

  /** A number to `digits` significant figures with an ASCII minus, parseable by float(); "–" if absent. */
  function fmt(x, digits = 4) {
    if (typeof x !== "number" || !Number.isFinite(x)) return x === undefined || x === null ? "–" : String(x);
    if (x === 0) return "0";
    const a = Math.abs(x);
    if (a >= 1e-4 && a < 1e6) return String(Number(x.toPrecision(digits)));
    const [m, e] = x.toExponential(digits - 1).split("e");
    return `${Number(m)}e${e}`;
  }
  const fmtP = (x) => fmt(x, 6); // a probability: a confident 0.99999 must not show as 1

  /** A scalar, or a list of them (multiclass s, p, δs). */
  const fmtAny = (v, digits = 4) => (Array.isArray(v) ? `[${v.map((a) => fmt(a, digits)).join(", ")}]` : fmt(v, digits));

  // ------------------------------------------------------------------ marks in the text

  /** Each token's label at `threshold`: binary models re-mark from p, multiclass keep the argmax label. */
  function labelsAt(tokens, threshold, binary) {
    return tokens.map((t) => (binary ? (t.p >= threshold ? "LOC" : "O") : t.label));
  }

  /** Runs of consecutive tokens with the same label other than O: {label, first, last, start, end}. */
  function spansOf(tokens, labels) {
    const spans = [];
    for (let i = 0; i < tokens.length; i++) {
      if (labels[i] === "O") continue;
      let j = i;
      while (j + 1 < tokens.length && labels[j + 1] === labels[i]) j++;
      spans.push({ label: labels[i], first: i, last: j, start: tokens[i].start, end: tokens[j].end });
      i = j;
    }
    return spans;
  }

  function tokenNode(tok, i) {
    const node = el("span", {
      class: "tok", "data-i": i, tabindex: 0, role: "button",
      title: `${tok.text}: P(location) = ${fmtP(tok.p)}`,
    }, tok.text);
    node.style.setProperty("--p", String(tok.p)); // the shade; CSSOM, which the page's CSP allows
    return node;
  }

  /** The text with every span in a <mark> (its label as a badge) and every token clickable. */
  function markedText(tagged, labels) {
    const { text, tokens } = tagged;
    const root = el("div", { class: "text" });
    const starts = new Map(spansOf(tokens, labels).map((s) => [s.first, s]));
    let pos = 0, mark = null, span = null;
    tokens.forEach((tok, i) => {
      const gap = text.slice(pos, tok.start);
      if (!span && starts.has(i)) {
        span = starts.get(i);
        if (gap) root.append(gap);
        mark = el("mark", { class: `ent ent-${span.label}`, "data-label": span.label,
                            "data-text": text.slice(span.start, span.end) });
        root.append(mark);
      } else if (gap) {
        (mark || root).append(gap);
      }
      (mark || root).append(tokenNode(tok, i));
      pos = tok.end;
      if (span && i === span.last) {
        mark.append(el("span", { class: "badge", "aria-hidden": "true" }, span.label));
        mark = null;
        span = null;
      }
    });
    if (pos < text.length) root.append(text.slice(pos));
    return root;
  }

  /** One line per span: its text, label, characters and its tokens' P(location). */
  function spanList(tagged, labels) {
    const spans = spansOf(tagged.tokens, labels);
    if (!spans.length) return [el("li", { class: "none" }, "no entity at this threshold")];
    return spans.map((s) => {
      const ps = tagged.tokens.slice(s.first, s.last + 1).map((t) => fmtP(t.p)).join(", ");
      return el("li", {}, el("b", {}, tagged.text.slice(s.start, s.end)), ` ${s.label}`,
                el("span", { class: "dim" }, `  characters ${s.start}–${s.end}, P(location) ${ps}`));
    });
  }

  // ------------------------------------------------------------------ one window: forward

  function windowTable(ex) {
    const rows = ex.window || [];
    const dc = (at(ex, "model.d_c") || 0) > 0;
    const head = ["slot", "token", "vocabulary word", "id", "casing", "‖e‖", dc && "‖c‖", "‖∂J/∂e‖", dc && "‖∂J/∂c‖"];
    return el("table", { class: "win" },
      el("thead", {}, el("tr", {}, head.filter(Boolean).map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.map((r, j) => el("tr", { class: r.offset === 0 ? "centre" : (r.in_sentence ? "" : "pad") },
        el("td", {}, r.slot), el("td", { class: "word" }, r.token), el("td", {}, r.vocab_word),
        el("td", { class: "num" }, r.id), el("td", { "data-key": `window.${j}.casing` }, r.casing),
        el("td", { class: "num" }, fmt(r.e_norm)), dc && el("td", { class: "num" }, fmt(r.c_norm)),
        el("td", { class: "num" }, fmt(r.dJ_de_norm)), dc && el("td", { class: "num" }, fmt(r.dJ_dc_norm))))));
  }

  function summaryCells(v, digits = 4) {
    if (!v || typeof v !== "object" || Array.isArray(v)) {
      return [el("td", { colspan: 3 }), el("td", { class: "vec" }, Array.isArray(v) ? fmtAny(v, digits) : fmt(v, digits))];
    }
    const first = (v.first || []).map((a) => fmt(a)).join(", ") + ((v.shape || [0])[0] > (v.first || []).length ? ", …" : "");
    return [el("td", {}, `(${(v.shape || []).join(", ")})`), el("td", { class: "num" }, fmt(v.norm)),
            el("td", { class: "num" }, `${fmt(v.min)} … ${fmt(v.max)}`), el("td", { class: "vec" }, `[${first}]`)];
  }

  const ACTIVATION = { sigmoid: "σ(z)", tanh: "tanh(z)", relu: "max(z, 0)" };
  const DERIVATIVE = { sigmoid: "h(1 − h)", tanh: "1 − h²", relu: "[h > 0]" };

  function forwardTable(ex) {
    const fw = ex.forward || {};
    const act = at(ex, "model.activation");
    const multi = at(ex, "model.task") === "multiclass" || at(ex, "model.output") === "sentence";
    const sentence = at(ex, "model.output") === "sentence";
    const rows = [
      ["x", "[e(w−m); c(w−m); …; e(w+m); c(w+m)]", fw.x],
      ["z", "W x + b", fw.z],
      ["h", `f(z) = ${ACTIVATION[act] || "f(z)"}`, fw.h],
      ["s", multi ? "U h + c" : "uᵀh + c", fw.s],
      ["p", sentence ? "P(y_i = t | sentence)" : multi ? "softmax(s)" : "σ(s)  = P(location)", fw.p],
    ];
    const threshold = at(ex, "model.threshold");
    return el("table", { class: "fwd" },
      el("thead", {}, el("tr", {}, ["", "", "shape", "‖·‖", "min … max", "values"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.map(([name, formula, v]) => el("tr", {},
        el("th", {}, name), el("td", { class: "formula" }, `${name} = ${formula}`), summaryCells(v, name === "p" ? 6 : 4))),
      el("tr", {}, el("th", {}, ""), el("td", { colspan: 5 },
        `prediction: ${fw.prediction === undefined ? "–" : fw.prediction}`,
        sentence ? " (the Viterbi path's tag)" : multi ? " (argmax p)" : ` (p ≥ threshold ${fmt(threshold)})`))));
  }

  // ------------------------------------------------------------------ one window: the computation graph

  const LOSS_NODE = { bce: ["J = CE(σ(s), y)", "p − y"], squared: ["J = (σ(s) − y)²", "2(p − y)·p(1 − p)"],
                      ce: ["J = CE(softmax(s), y)", "p − y  (y one-hot)"],
                      sll: ["J = −log p(y | sentence)", "P(y_i = t | sentence) − [t = y_i]"] };

  /** The graph as data: one node per lecture equation, each with its forward value and the
      backward chain upstream × local = downstream (and the parameter gradients it hands out). */
  function graphNodes(ex) {
    const multi = at(ex, "model.task") === "multiclass" || at(ex, "model.output") === "sentence";
    const act = at(ex, "model.activation");
    const [lossTitle, lossLocal] = LOSS_NODE[at(ex, "model.loss")] || ["J = loss(s, y)", "∂J/∂s"];
    const vec = (key) => ({ key: `${key}.norm`, norm: true, tip: at(ex, key) });
    const val = (key, digits = 4) => ({ key, digits });
    return [
      { title: "x  (the window)", value: ["x", vec("forward.x")], grads: [], perWord: true },
      { title: "z = W x + b", value: ["z", vec("forward.z")], grads: [
        ["upstream", "δ = ∂J/∂z", vec("backward.delta")],
        ["local", "∂z/∂x = W", vec("backward.W")],
        ["downstream", "∂J/∂x = Wᵀδ", vec("backward.dJ_dx")],
        ["and", "∂J/∂W = δ xᵀ", vec("backward.dW")],
        ["and", "∂J/∂b = δ", vec("backward.db")]] },
      { title: `h = f(z) = ${ACTIVATION[act] || "f(z)"}`, value: ["h", vec("forward.h")], grads: [
        ["upstream", "∂J/∂h", vec("backward.dJ_dh")],
        ["local", `f′(z) = ${DERIVATIVE[act] || "f′(z)"}`, vec("backward.f_prime")],
        ["downstream", "δ = ∂J/∂h ∘ f′(z)", vec("backward.delta")]] },
      { title: multi ? "s = U h + c" : "s = uᵀh + c", value: ["s", val("forward.s")], grads: [
        ["upstream", "δs = ∂J/∂s", val("backward.delta_s")],
        ["local", multi ? "∂s/∂h = U" : "∂s/∂h = u", vec("backward.u")],
        ["downstream", multi ? "∂J/∂h = Uᵀδs" : "∂J/∂h = u δs", vec("backward.dJ_dh")],
        ["and", multi ? "∂J/∂U = δs hᵀ" : "∂J/∂u = δs h", vec("backward.du")],
        ["and", "∂J/∂c = δs", val("backward.dc")]] },
      { title: lossTitle, value: ["p", val("forward.p", 6)], extra: [["y", val("backward.y")], ["J", val("backward.J")]],
        grads: [
          ["upstream", "∂J/∂J", { constant: 1 }],
          ["local", `∂J/∂s = ${lossLocal}`, val("backward.delta_s")],
          ["downstream", "δs", val("backward.delta_s")]] },
    ];
  }

  /** "‖·‖ 0.1234" or "0.1234", the number in its own <tspan data-key> so it can be read back. */
  function valueSpans(ex, v) {
    if (v.constant !== undefined) return [svg("tspan", { class: "num" }, fmt(v.constant))];
    const x = at(ex, v.key);
    const out = [];
    if (v.norm) out.push(svg("tspan", { class: "dim" }, "‖·‖ "));
    out.push(svg("tspan", { class: "num", "data-key": v.key }, fmtAny(x, v.digits || 4)));
    if (v.tip && v.tip.shape) out.push(svg("tspan", { class: "dim" }, ` (${v.tip.shape.join(", ")})`));
    return out;
  }

  function tooltip(ex, v) {
    const s = v && v.tip;
    if (!s || typeof s !== "object") return null;
    return svg("title", {}, `shape (${(s.shape || []).join(", ")}), ‖·‖ ${fmt(s.norm)}, min ${fmt(s.min)}, ` +
                            `max ${fmt(s.max)}${(s.first || []).length ? ", first " + s.first.map((a) => fmt(a)).join(", ") : ""}`);
  }

  /** The backward chain drawn as the lecture draws it: nodes left to right, forward values in
      each node, gradients flowing back underneath (upstream × local = downstream). */
  function graph(ex) {
    const nodes = graphNodes(ex);
    const W = 218, GAP = 26, BOX_H = 78, TOP = 8, LINE = 15;
    const rowsBelow = Math.max(...nodes.map((n) => (n.perWord ? (ex.window || []).length + 1 : n.grads.length * 2)));
    const height = TOP + BOX_H + 40 + rowsBelow * LINE + 10;
    const width = nodes.length * (W + GAP) - GAP + 16;
    const root = svg("svg", { class: "graph", viewBox: `0 0 ${width} ${height}`, role: "img",
                              "aria-label": "computation graph of the window, forward and backward" },
      svg("defs", {},
        svg("marker", { id: "fwd-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
          svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-fwd" })),
        svg("marker", { id: "bwd-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
          svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-bwd" }))));
    nodes.forEach((n, k) => {
      const x = 8 + k * (W + GAP);
      const g = svg("g", { class: "node", "data-node": k });
      g.append(svg("rect", { x, y: TOP, width: W, height: BOX_H, rx: 8 }));
      g.append(svg("text", { x: x + 10, y: TOP + 20, class: "title" }, n.title));
      const shown = [n.value, ...(n.extra || [])];
      shown.forEach(([name, v], r) => {
        g.append(svg("text", { x: x + 10, y: TOP + 40 + r * LINE, class: "fwd" }, `${name} = `, valueSpans(ex, v), tooltip(ex, v)));
      });
      if (k + 1 < nodes.length) { // forward arrow right, backward arrow left
        g.append(svg("line", { x1: x + W, y1: TOP + 26, x2: x + W + GAP, y2: TOP + 26, class: "edge-fwd", "marker-end": "url(#fwd-arrow)" }));
        g.append(svg("line", { x1: x + W + GAP, y1: TOP + BOX_H - 18, x2: x + W, y2: TOP + BOX_H - 18, class: "edge-bwd", "marker-end": "url(#bwd-arrow)" }));
      }
      let y = TOP + BOX_H + 22;
      if (n.perWord) {
        g.append(svg("text", { x: x + 4, y, class: "role" }, "∂J/∂x per window word → rows of E"));
        (ex.window || []).forEach((r, j) => {
          y += LINE;
          g.append(svg("text", { x: x + 4, y, class: "grad" }, `${r.slot} ${String(r.token).slice(0, 14)}: `,
            svg("tspan", { class: "num", "data-key": `window.${j}.dJ_dx_norm` }, fmt(r.dJ_dx_norm))));
        });
      }
      for (const [role, formula, v] of n.grads) {
        g.append(svg("text", { x: x + 4, y, class: `role role-${role}` }, `${role} `, svg("tspan", { class: "formula" }, formula)));
        y += LINE;
        g.append(svg("text", { x: x + 14, y, class: "grad", "data-role": role }, valueSpans(ex, v), tooltip(ex, v)));
        y += LINE;
      }
      root.append(g);
    });
    return root;
  }

  // ------------------------------------------------------------------ one window: saliency

  function saliency(ex) {
    const rows = ex.window || [];
    const sal = ex.saliency || {};
    const maxGrad = Math.max(1e-30, ...rows.map((r) => r.ds_dx_norm || 0));
    const bar = (frac, cls) => {
      const b = el("span", { class: `bar ${cls}` });
      b.style.width = `${Math.min(100, Math.abs(frac) * 100)}%`;
      return b;
    };
    return el("table", { class: "sal" },
      el("thead", {}, el("tr", {}, ["slot", "token", `‖∂${sal.of || "s"}/∂x_i‖`, "",
                                     `Δ${sal.p_of || "p"} with <unk> (casing kept)`, ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.map((r, j) => {
        const change = r.p_change;
        const signed = el("span", { class: "signed" },
          el("span", { class: "half left" }, change < 0 ? bar(change, "neg") : null),
          el("span", { class: "half right" }, change > 0 ? bar(change, "pos") : null));
        return el("tr", { class: r.offset === 0 ? "centre" : (r.in_sentence ? "" : "pad") },
          el("td", {}, r.slot), el("td", { class: "word" }, r.token),
          el("td", { class: "track" }, bar((r.ds_dx_norm || 0) / maxGrad, "grad")),
          el("td", { class: "num", "data-key": `window.${j}.ds_dx_norm` }, fmt(r.ds_dx_norm)),
          el("td", { class: "track" }, r.in_sentence ? signed : el("span", { class: "dim" }, "(padding)")),
          el("td", { class: "num" }, r.in_sentence ? (change > 0 ? "+" : "") + fmt(change) : ""));
      })));
  }

  // ------------------------------------------------------------------ the whole explanation

  function explanation(ex) {
    const bw = ex.backward || {};
    const notes = (ex.notes || []).map((n) => el("li", {}, n));
    return el("div", { class: "explanation" },
      notes.length ? el("ul", { class: "notes" }, notes) : null,
      el("h3", {}, "The window: words and casing classes"), windowTable(ex),
      el("h3", {}, "Forward pass"), forwardTable(ex),
      el("h3", {}, `Backward pass, label y = ${fmtAny(bw.y)} (${bw.label_name === undefined ? "–" : bw.label_name}): ` +
                   `J = ${fmt(bw.J)}, this window's data loss`),
      el("p", { class: "how" }, "Each node passes back upstream × local = downstream; green arrows carry values forward, " +
                                "red ones gradients back. Hover a value for its shape, min, max and first entries."),
      graph(ex),
      el("h3", {}, "Saliency: which window word moves the score"), saliency(ex),
      el("details", { class: "raw" }, el("summary", {}, "the explain JSON (as ner-window explain --format json)"),
         el("pre", {}, JSON.stringify(ex, null, 1))));
  }

  return { el, at, fmt, fmtP, labelsAt, spansOf, markedText, spanList, explanation, graph, saliency };
})();
