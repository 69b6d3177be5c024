// The backward-pass stepper in the browser: one ES module (anywidget's format) shared by the
// Jupyter widget and the page `BackwardStepper.save_html` writes.
//
// The model holds `payload` (JSON, sent once: the laid-out SVG, every value, every step and
// every step's explanation), `position` (the step shown, synced with Python both ways) and
// `interval_ms` (the time between steps while playing). Stepping only changes classes and
// texts in the SVG, so nodes never move and no step needs the kernel.
//
// The picture sits in a viewport of its own (zoom: buttons, wheel, pinch; pan: drag); the
// controls above it and the explanation below it never scroll away. After every step the
// view follows the pass: the current node and its inputs in sight, at a readable size.

const PT = 4 / 3; // CSS pixels per point: Graphviz lays out in points
const FONT_PT = 11; // the nodes' font size in the layout (draw.py)
const READABLE_PX = 10; // the view never follows a step at a smaller font than this (px)
const MAX_SCALE = 4;
const MARGIN = 24; // px kept free around the followed nodes
const SPEEDS = [0.25, 0.5, 1, 2, 4];

// Button icons as inline SVG (a font may lack the media symbols).
const ICONS = {
  reset: "M3 2h2v12H3zM14 2v12L6 8z",
  previous: "M12 2v12L4 8z",
  play: "M4 2v12l9-6z",
  pause: "M3 2h3.5v12H3zM9.5 2H13v12H9.5z",
  next: "M4 2v12l8-6zM12 2h2v12h-2z",
  end: "M2 2v12l8-6zM11 2h2v12h-2z",
};

function icon(name) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "14");
  svg.setAttribute("height", "14");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICONS[name]);
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// A line of the explanation: text, and numbers as [4 significant digits, full precision].
// Each term of the text (a run without spaces, such as `dL/dv3` or `∂v3/∂x`, taking in whole
// any name with a space in it, such as `weight[3, 0]`: `terms` matches them) is a span that
// does not wrap, so a long line wraps between terms only, never inside a name or after the
// `/` of a derivative.
function renderLine(segments, className, terms) {
  const line = h("div", { class: className });
  for (const seg of segments) {
    if (typeof seg !== "string") {
      line.append(h("span", { class: "crs-num", title: seg[1], text: seg[0] }));
      continue;
    }
    let last = 0;
    for (const m of seg.matchAll(terms)) {
      if (m.index > last) line.append(seg.slice(last, m.index));
      line.append(h("span", { class: "crs-term", text: m[0] }));
      last = m.index + m[0].length;
    }
    if (last < seg.length) line.append(seg.slice(last));
  }
  return line;
}

// The pattern of a term of the explanation: non-space characters and whole names of
// `values` with a space in them (longest first, so a name is matched whole).
function termPattern(values) {
  const names = [...new Set(values.map((v) => v.name))].filter((n) => /\s/.test(n));
  names.sort((a, b) => b.length - a.length);
  const escaped = names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`(?:${[...escaped, "\\S"].join("|")})+`, "gu");
}

// The value a node group of the SVG belongs to: v3, op3, c3_1, link3_0 -> 3.
function ownerOf(id) {
  const m = /^(?:v|op)(\d+)$|^c(\d+)_\d+$|^link(\d+)_\d+$/.exec(id);
  if (!m) return -1;
  return Number(m[1] ?? m[2] ?? m[3]);
}

function render({ model, el }) {
  const data = JSON.parse(model.get("payload"));
  const values = data.values;
  const steps = data.steps;
  const total = data.total;
  const terms = termPattern(values);
  // stepOf[i]: the step (0-based) at which value i hands on its gradient.
  const stepOf = new Array(values.length);
  steps.forEach((s, k) => {
    stepOf[s.node] = k;
  });

  // -- the page's elements --------------------------------------------------------------
  const button = (label, symbol, tip) =>
    h("button", { type: "button", class: "crs-button", "aria-label": label, title: tip }, symbol);
  const reset = button("Reset", icon("reset"), "Reset: back to step 0 (Home)");
  const previous = button("Previous step", icon("previous"), "Previous step (left arrow)");
  const play = button("Play", icon("play"), "Play the pass step by step (space)");
  const next = button("Next step", icon("next"), "Next step (right arrow)");
  const end = button("Last step", icon("end"), "Go to the last step (End)");
  const slider = h("input", {
    type: "range",
    min: "0",
    max: String(total),
    value: "0",
    "aria-label": "Step",
    title: "Drag to any step",
    class: "crs-slider",
  });
  const counter = h("span", { class: "crs-counter", "aria-live": "polite" });
  const speed = h("select", { "aria-label": "Speed", title: "Steps per second while playing" });
  for (const factor of SPEEDS) {
    const perSecond = (factor * 1000) / Math.max(1, model.get("interval_ms"));
    const rate = +perSecond.toFixed(2);
    const option = h("option", { value: String(factor), text: `${rate} step${rate === 1 ? "" : "s"}/s` });
    if (factor === 1) option.selected = true;
    speed.append(option);
  }
  const zoomOut = button("Zoom out", "−", "Zoom out (or the mouse wheel; pinch on a touch screen)");
  const zoomFit = button("Fit", "⤢", "Fit the whole graph to the width");
  const zoomIn = button("Zoom in", "+", "Zoom in (or the mouse wheel)");
  const follow = h("input", { type: "checkbox", "aria-label": "Follow the pass" });
  follow.checked = true;
  const followLabel = h(
    "label",
    { class: "crs-check", title: "Keep the current node and its inputs in view" },
    follow,
    " follow",
  );
  const viewToggle = button(
    "Neighbourhood view",
    "◎",
    "Show only the current node, its inputs and its consumers",
  );
  const controls = h(
    "div",
    { class: "crs-controls", role: "toolbar", "aria-label": "Stepper controls" },
    h("span", { class: "crs-group" }, reset, previous, play, next, end),
    slider,
    counter,
    h("label", { class: "crs-speed" }, "speed ", speed),
    h("span", { class: "crs-group" }, zoomOut, zoomFit, zoomIn),
    followLabel,
    viewToggle,
  );
  const canvas = h("div", { class: "crs-canvas" });
  const viewport = h("div", { class: "crs-viewport", "aria-label": "Computation graph" }, canvas);
  const hood = h("div", { class: "crs-hood", hidden: "" });
  const explanation = h("div", { class: "crs-explain", "aria-live": "polite" });
  const legend = h("div", { class: "crs-legend", "aria-label": "Legend" });
  const chip = (cls, text) => h("span", { class: "crs-chip" }, h("i", { class: cls }), text);
  legend.append(
    chip("crs-key-current", "current step"),
    chip("crs-key-receiving", "its inputs, receiving"),
    chip("crs-key-done", "done: grad final"),
    chip("crs-key-pending", "pending: grad so far"),
    chip("crs-key-leaf", "input"),
    chip("crs-key-parameter", "parameter"),
    chip("crs-key-constant", "constant"),
    chip("crs-key-edge", "edges being updated"),
    h("span", { class: "crs-chip", text: "1st / 2nd: operand order" }),
  );
  const root = h(
    "div",
    {
      class: "chainrule-stepper",
      tabindex: "0",
      role: "group",
      "aria-label": "Backward pass, step by step",
      // JupyterLab: its keyboard shortcuts stop at this element, so the keys are ours.
      "data-lm-suppress-shortcuts": "true",
    },
    controls,
    viewport,
    hood,
    explanation,
    legend,
  );
  el.append(root);

  // -- the picture, laid out once -------------------------------------------------------
  let svg = null;
  const groupsOf = []; // value index -> its node groups (box, op, constants, links)
  const gradText = new Map(); // value index -> the <text> of its grad field
  const tips = new Map(); // value index -> the <title> of its box
  const edgesInto = new Map(); // value index -> its edge elements (inputs and op -> value)
  let natW = 0;
  let natH = 0;
  if (data.svg) {
    canvas.innerHTML = data.svg;
    svg = canvas.querySelector("svg");
    const box = svg.viewBox.baseVal;
    natW = box.width * PT;
    natH = box.height * PT;
    svg.setAttribute("width", String(natW));
    svg.setAttribute("height", String(natH));
    const graphTitle = svg.querySelector("g.graph > title");
    if (graphTitle) graphTitle.remove();
    for (const g of svg.querySelectorAll("g.node")) {
      const owner = ownerOf(g.id);
      if (owner < 0) continue;
      (groupsOf[owner] = groupsOf[owner] || []).push(g);
      if (g.id === `v${owner}`) {
        for (const t of g.querySelectorAll("text")) {
          if (t.textContent.startsWith("grad ")) gradText.set(owner, t);
        }
        let tip = g.querySelector("title");
        if (!tip) {
          tip = document.createElementNS("http://www.w3.org/2000/svg", "title");
          g.prepend(tip);
        }
        tips.set(owner, tip);
      } else {
        const tip = g.querySelector("title");
        if (tip) tip.textContent = values[owner].name;
      }
    }
    for (const g of svg.querySelectorAll("g.edge")) {
      const m = /^e(\d+)_\d+$|^o(\d+)$/.exec(g.id);
      if (!m) continue;
      const owner = Number(m[1] ?? m[2]);
      if (!edgesInto.has(owner)) edgesInto.set(owner, []);
      edgesInto.get(owner).push(g);
      const tip = g.querySelector("title");
      if (tip) tip.remove();
    }
  } else {
    hood.before(
      h("p", {
        class: "crs-note",
        text:
          `This graph has ${values.length} values, more than the ${data.picture_limit} ` +
          "drawn whole, so each step shows its neighbourhood: the current node, its inputs " +
          "and its consumers.",
      }),
    );
  }

  // -- the gradients at any step: replayed from the record, exactly the engine's numbers --
  const start = values.map((v) => v.grad0);
  let grads = start.slice();
  let gradsAt = 0;
  function gradsFor(position) {
    if (position < gradsAt) {
      grads = start.slice();
      gradsAt = 0;
    }
    for (; gradsAt < position; gradsAt++) {
      const s = steps[gradsAt];
      for (const [i, g] of s.sets) grads[i] = g;
      for (const [i, , g] of s.edges) grads[i] = g;
    }
    return grads;
  }

  function stateOf(i, position) {
    const k = stepOf[i];
    if (k === position - 1) return "current";
    return k < position - 1 ? "done" : "pending";
  }

  // -- showing a step ---------------------------------------------------------------------
  let position = -1;
  let marked = [];
  const shownClass = new Array(values.length);
  const shownGrad = new Array(values.length);
  let neighbourhood = !data.svg;
  if (!data.svg) {
    // No picture: nothing to zoom, follow or switch to.
    for (const control of [viewToggle, zoomIn, zoomOut, zoomFit, followLabel]) control.hidden = true;
  }

  function show(p) {
    p = Math.max(0, Math.min(total, p | 0));
    const changed = p !== position;
    position = p;
    const g = gradsFor(p);
    const current = p > 0 ? steps[p - 1].node : -1;
    const receiving = new Set(p > 0 ? steps[p - 1].edges.map((e) => e[0]) : []);
    // Only what changed is touched: on a big graph a step changes a handful of nodes.
    for (let i = 0; i < values.length; i++) {
      const cls = `${stateOf(i, p)}${receiving.has(i) ? " receiving" : ""}`;
      const grad = g[i];
      if (cls === shownClass[i] && grad === shownGrad[i]) continue;
      shownClass[i] = cls;
      shownGrad[i] = grad;
      for (const group of groupsOf[i] || []) {
        const own = group.id === `v${i}`;
        group.setAttribute("class", `node ${own ? cls : stateOf(i, p)}`);
      }
      const text = gradText.get(i);
      if (text) text.textContent = `grad ${grad[0]}`;
      const tip = tips.get(i);
      if (tip) {
        const v = values[i];
        tip.textContent = `${v.name}: data ${v.data[1]}, grad ${grad[1]} (${stateOf(i, p)})`;
      }
    }
    for (const edge of marked) edge.classList.remove("active");
    marked = current >= 0 ? edgesInto.get(current) || [] : [];
    for (const edge of marked) edge.classList.add("active");

    explanation.replaceChildren(
      ...data.lines[p].map((line, k) =>
        renderLine(line, k === 0 ? "crs-head" : "crs-rule", terms),
      ),
    );
    counter.textContent = `step ${p} of ${total}`;
    slider.value = String(p);
    reset.disabled = previous.disabled = p === 0;
    next.disabled = end.disabled = p === total;
    if (p === total) stopPlaying();
    play.disabled = p === total;
    if (neighbourhood) drawNeighbourhood(p, g);
    if (changed && follow.checked && !neighbourhood) followStep(p);
  }

  // The neighbourhood view: the current node, its inputs and its consumers, as boxes.
  function drawNeighbourhood(p, g) {
    const i = p > 0 ? steps[p - 1].node : data.root;
    const v = values[i];
    const box = (j, role, extra = "") => {
      const w = values[j];
      const state = stateOf(j, p);
      return h(
        "div",
        { class: `crs-box ${state} crs-${w.kind}${extra}`, title: `grad ${g[j][1]}` },
        h("b", { text: w.name }),
        h("span", { text: `data ${w.data[0]}` }),
        h("span", { text: `grad ${g[j][0]}` }),
        h("small", { text: role }),
      );
    };
    const column = (title, items) =>
      h("div", { class: "crs-col" }, h("div", { class: "crs-col-title", text: title }), ...items);
    const locals = p > 0 ? steps[p - 1].edges : [];
    const inputs = v.inputs.map((j, k) =>
      locals[k]
        ? box(j, `∂${v.name}/∂${values[j].name} = ${locals[k][3][0]}`, " receiving")
        : box(j, "input"),
    );
    const consumers = v.consumers.map((j) => box(j, `uses ${v.name}`));
    hood.replaceChildren(
      column("inputs", inputs.length ? inputs : [h("small", { text: "none: a leaf" })]),
      column(
        p > 0 ? "current" : "next",
        [box(i, v.op ? `op ${v.op}` : "leaf")],
      ),
      column("consumers", consumers.length ? consumers : [h("small", { text: "none: the output" })]),
    );
  }

  // -- zoom and pan -------------------------------------------------------------------------
  let scale = 1;
  let tx = 0;
  let ty = 0;
  const readable = READABLE_PX / (FONT_PT * PT);

  function apply(animate) {
    canvas.classList.toggle("crs-animate", !!animate);
    canvas.style.transform = `translate(${tx}px, ${ty}px) scale(${scale})`;
  }

  function fitScale() {
    return natW ? Math.min(1.25, viewport.clientWidth / natW) : 1;
  }

  function sizeViewport() {
    if (!svg) return;
    const fit = fitScale();
    const tall = Math.min(560, Math.max(300, window.innerHeight * 0.62));
    const wanted = natH * Math.max(fit, readable) + 16;
    viewport.style.height = `${Math.round(Math.max(240, Math.min(tall, wanted)))}px`;
  }

  function fit(animate) {
    scale = fitScale();
    tx = (viewport.clientWidth - natW * scale) / 2;
    ty = Math.max(0, (viewport.clientHeight - natH * scale) / 2);
    apply(animate);
  }

  function zoomAt(factor, cx, cy, animate) {
    const s = Math.max(0.02, Math.min(MAX_SCALE, scale * factor));
    tx = cx - ((cx - tx) * s) / scale;
    ty = cy - ((cy - ty) * s) / scale;
    scale = s;
    apply(animate);
  }

  // A node's box in the picture's CSS pixels (before zoom and pan).
  function boxOf(id) {
    const node = svg.querySelector(`[id="${id}"]`);
    if (!node) return null;
    const b = node.getBBox();
    const m = node.getCTM();
    const corners = [
      [b.x, b.y],
      [b.x + b.width, b.y],
      [b.x, b.y + b.height],
      [b.x + b.width, b.y + b.height],
    ];
    const xs = corners.map(([x, y]) => m.a * x + m.c * y + m.e);
    const ys = corners.map(([x, y]) => m.b * x + m.d * y + m.f);
    return { x0: Math.min(...xs), x1: Math.max(...xs), y0: Math.min(...ys), y1: Math.max(...ys) };
  }

  function union(boxes) {
    const real = boxes.filter(Boolean);
    if (!real.length) return null;
    return {
      x0: Math.min(...real.map((b) => b.x0)),
      x1: Math.max(...real.map((b) => b.x1)),
      y0: Math.min(...real.map((b) => b.y0)),
      y1: Math.max(...real.map((b) => b.y1)),
    };
  }

  function isVisible(id) {
    const b = boxOf(id);
    if (!b) return false;
    const vw = viewport.clientWidth;
    const vh = viewport.clientHeight;
    return tx + b.x0 * scale >= 0 && tx + b.x1 * scale <= vw && ty + b.y0 * scale >= 0 &&
      ty + b.y1 * scale <= vh;
  }

  // Keep the current node and its inputs in view, at a readable size: the bounding box of
  // the current node (its box, its op, its constants) and its inputs, zoomed out as far as
  // needed but never below a text size of READABLE_PX. Where they cannot all fit at that
  // size, the current node and as many of its nearest inputs as fit, centred. At step 0 the
  // node is the root (the first step's), so the view opens on the output.
  function followStep(p) {
    if (!svg) return;
    const vw = viewport.clientWidth;
    const vh = viewport.clientHeight;
    const i = p > 0 ? steps[p - 1].node : data.root;
    // A graph readable whole: show it whole, and never pan.
    if (fitScale() >= readable && natH * fitScale() <= vh) {
      if (scale < fitScale() - 1e-9 || p === 0) {
        fit(true);
        return;
      }
      if (isVisible(`v${i}`)) return;
    }
    const current = boxOf(`v${i}`);
    if (!current) return;
    const own = union([current, ...(groupsOf[i] || []).map((g) => boxOf(g.id))]);
    const roomW = vw - 2 * MARGIN;
    const roomH = vh - 2 * MARGIN;
    const fitting = (b) => Math.min(roomW / (b.x1 - b.x0), roomH / (b.y1 - b.y0));
    const centre = (b) => [(b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2];
    const [ox, oy] = centre(own);
    const distance = (b) => {
      const [x, y] = centre(b);
      return Math.hypot(x - ox, y - oy);
    };
    // The inputs nearest the current node first; each joins the focus if all still fit.
    const inputs = values[i].inputs
      .map((j) => boxOf(`v${j}`))
      .filter(Boolean)
      .sort((a, b) => distance(a) - distance(b));
    let focus = own;
    for (const b of inputs) {
      const wider = union([focus, b]);
      if (fitting(wider) >= readable) focus = wider;
    }
    // The user's zoom is kept where the focus fits at it; else zoomed out to fit, or in to
    // a readable size.
    const s = Math.min(MAX_SCALE, Math.max(readable, Math.min(scale, fitting(focus))));
    if (s !== scale) {
      // Zoom about the current node, so the eye does not lose it.
      const cx = tx + ((current.x0 + current.x1) / 2) * scale;
      const cy = ty + ((current.y0 + current.y1) / 2) * scale;
      tx = cx - ((cx - tx) * s) / scale;
      ty = cy - ((cy - ty) * s) / scale;
      scale = s;
    }
    const m = 4;
    const inside =
      tx + focus.x0 * s >= m &&
      tx + focus.x1 * s <= vw - m &&
      ty + focus.y0 * s >= m &&
      ty + focus.y1 * s <= vh - m;
    if (!inside) {
      // Centre the focus; one too big even at the smallest size (a node alone) is centred
      // on the current node.
      const [cx, cy] = fitting(focus) >= s - 1e-9 ? centre(focus) : centre(current);
      tx = settle(vw / 2 - cx * s, vw, natW * s, focus.x0 * s, focus.x1 * s);
      ty = settle(vh / 2 - cy * s, vh, natH * s, focus.y0 * s, focus.y1 * s);
    }
    apply(true);
  }

  // A pan `t` along one axis, moved (if the focus, from a0 to a1 in the zoomed picture,
  // stays MARGIN inside the view) so that a picture wider than the view fills it: the
  // focus at the picture's edge is not centred beside an empty strip.
  function settle(t, view, size, a0, a1) {
    if (size < view) return t;
    const filled = Math.max(view - size, Math.min(0, t));
    const lo = MARGIN - a0;
    const hi = view - MARGIN - a1;
    return lo <= hi ? Math.max(lo, Math.min(hi, filled)) : t;
  }

  zoomIn.addEventListener("click", () =>
    zoomAt(1.25, viewport.clientWidth / 2, viewport.clientHeight / 2, true),
  );
  zoomOut.addEventListener("click", () =>
    zoomAt(0.8, viewport.clientWidth / 2, viewport.clientHeight / 2, true),
  );
  zoomFit.addEventListener("click", () => fit(true));
  viewport.addEventListener(
    "wheel",
    (event) => {
      if (!svg) return;
      event.preventDefault();
      const r = viewport.getBoundingClientRect();
      // deltaY in lines or pages on some mice: count those as 40 px.
      const dy = event.deltaMode ? event.deltaY * 40 : event.deltaY;
      zoomAt(Math.exp(-dy * 0.002), event.clientX - r.left, event.clientY - r.top, false);
    },
    { passive: false },
  );
  // Drag to pan; two fingers pinch to zoom.
  const pointers = new Map();
  let pinch = 0;
  viewport.addEventListener("pointerdown", (event) => {
    if (!svg) return;
    viewport.setPointerCapture(event.pointerId);
    pointers.set(event.pointerId, [event.clientX, event.clientY]);
    viewport.classList.add("crs-dragging");
  });
  viewport.addEventListener("pointermove", (event) => {
    const last = pointers.get(event.pointerId);
    if (!last) return;
    if (pointers.size === 1) {
      tx += event.clientX - last[0];
      ty += event.clientY - last[1];
      apply(false);
    }
    pointers.set(event.pointerId, [event.clientX, event.clientY]);
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      const distance = Math.hypot(a[0] - b[0], a[1] - b[1]);
      const r = viewport.getBoundingClientRect();
      if (pinch) zoomAt(distance / pinch, (a[0] + b[0]) / 2 - r.left, (a[1] + b[1]) / 2 - r.top);
      pinch = distance;
    }
  });
  const release = (event) => {
    pointers.delete(event.pointerId);
    pinch = 0;
    if (!pointers.size) viewport.classList.remove("crs-dragging");
  };
  viewport.addEventListener("pointerup", release);
  viewport.addEventListener("pointercancel", release);

  // -- moving -------------------------------------------------------------------------------
  function go(p) {
    p = Math.max(0, Math.min(total, p));
    if (p === position) return;
    show(p);
    model.set("position", p);
    model.save_changes();
  }

  let timer = null;
  function stopPlaying() {
    if (timer !== null) clearInterval(timer);
    timer = null;
    play.replaceChildren(icon("play"));
    play.setAttribute("aria-label", "Play");
    play.title = "Play the pass step by step (space)";
  }
  function startPlaying() {
    if (position >= total) return;
    const interval = Math.max(1, model.get("interval_ms")) / Number(speed.value);
    timer = setInterval(() => {
      go(position + 1);
      if (position >= total) stopPlaying();
    }, interval);
    play.replaceChildren(icon("pause"));
    play.setAttribute("aria-label", "Pause");
    play.title = "Pause (space)";
  }
  function togglePlay() {
    if (timer !== null) stopPlaying();
    else startPlaying();
  }
  speed.addEventListener("change", () => {
    if (timer !== null) {
      stopPlaying();
      startPlaying();
    }
  });

  reset.addEventListener("click", () => {
    stopPlaying();
    go(0);
  });
  previous.addEventListener("click", () => go(position - 1));
  next.addEventListener("click", () => go(position + 1));
  end.addEventListener("click", () => go(total));
  play.addEventListener("click", togglePlay);
  slider.addEventListener("input", () => go(Number(slider.value)));
  follow.addEventListener("change", () => {
    if (follow.checked) followStep(position);
  });
  viewToggle.addEventListener("click", () => {
    neighbourhood = !neighbourhood;
    viewport.hidden = neighbourhood;
    hood.hidden = !neighbourhood;
    viewToggle.setAttribute("aria-pressed", String(neighbourhood));
    viewToggle.title = neighbourhood
      ? "Show the whole graph"
      : "Show only the current node, its inputs and its consumers";
    if (neighbourhood) drawNeighbourhood(position, gradsFor(position));
    else {
      sizeViewport();
      followStep(position);
    }
  });

  // The keys work whenever the stepper has focus; a click anywhere on it gives focus.
  root.addEventListener("pointerdown", (event) => {
    if (!event.target.closest("button, input, select, label")) root.focus({ preventScroll: true });
  });
  root.addEventListener("keydown", (event) => {
    if (event.target.closest("select") || event.altKey || event.ctrlKey || event.metaKey) return;
    const keys = {
      ArrowRight: () => go(position + 1),
      ArrowLeft: () => go(position - 1),
      " ": togglePlay,
      Home: () => go(0),
      End: () => go(total),
      "+": () => zoomIn.click(),
      "=": () => zoomIn.click(),
      "-": () => zoomOut.click(),
    };
    const action = keys[event.key];
    if (!action) return;
    event.preventDefault();
    event.stopPropagation();
    action();
  });

  const onModel = () => show(model.get("position"));
  model.on("change:position", onModel);

  // In Jupyter, the static picture shown for viewers without widgets is hidden by the CSS
  // while the widget runs; see stepper.css.

  let observer = null;
  let lastWidth = 0;
  if (typeof ResizeObserver !== "undefined") {
    observer = new ResizeObserver(() => {
      if (!svg || viewport.hidden || viewport.clientWidth === lastWidth) return;
      const first = lastWidth === 0;
      lastWidth = viewport.clientWidth;
      sizeViewport();
      if (first) fit(false);
      followStep(position);
    });
    observer.observe(viewport);
  }
  if (neighbourhood) {
    viewport.hidden = true;
    hood.hidden = false;
  }
  show(model.get("position"));
  if (svg && viewport.clientWidth) {
    lastWidth = viewport.clientWidth;
    sizeViewport();
    fit(false);
    followStep(position);
  }

  return () => {
    stopPlaying();
    if (observer) observer.disconnect();
    model.off("change:position", onModel);
  };
}

export default { render };
