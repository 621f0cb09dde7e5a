// chainrule playground: plain JavaScript, no build step. Every number shown comes from
// the server's JSON API (docs/web.md), which reads the engine; nothing is computed here
// but where to draw it.
"use strict";

const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";
const MATHNS = "http://www.w3.org/1998/Math/MathML";
const fmt = (x) => (x === null || x === undefined ? "nan" : Number(x).toFixed(4));
const short = (x) => (x === null || x === undefined ? "nan" : Number(x).toPrecision(3));

const app = {
  session: null, state: null, selected: null, running: false,
  ledgerColumns: null, walk: null, walked: 0, busy: false,
  trail: [], second: null, sloped: null, contour: null,
};

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) {
    const error = new Error(data.error || `HTTP ${response.status}`);
    error.line = data.line;
    throw error;
  }
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(message) { $("error").textContent = message || ""; }

// ---------------------------------------------------------------------------------
// Sessions and state
// ---------------------------------------------------------------------------------

async function openSession(body) {
  pause();
  const data = await api("POST", "/api/sessions", body);
  app.session = data.session;
  app.selected = data.selected;  // the first trained parameter with a slope
  app.sloped = data.second;  // the next one: the contour's second parameter
  app.second = null;
  app.contour = null;
  app.walk = null;
  setState(data);
  $("toml").value = data.scenario.toml;
  $("toml-error").textContent = "";
  resetLedger(data.run);
  $("download-toml").href = `/api/sessions/${app.session}/scenario.toml`;
  $("download-model").href = `/api/sessions/${app.session}/model.safetensors`;
}

const terms = () => $("show-terms").checked;  // the fit's terms, only while shown

async function refresh() {
  const data = await api("GET", `/api/sessions/${app.session}?brief=1${terms() ? "&terms=1" : ""}`);
  setState(data);
}

function setState(data) {
  app.state = data;
  const params = data.parameters;
  if (!app.selected || !params.some((p) => p.name === app.selected)) {
    const trained = params.find((p) => p.trained);
    app.selected = (trained || params[0] || {}).name || null;
  }
  $("title").textContent = data.scenario.title;
  $("learning-rate").value = data.settings.learning_rate;
  const opt = $("optimizer");
  if (opt.options.length !== data.settings.optimizers.length) {
    opt.replaceChildren(...data.settings.optimizers.map((o) => el("option", { value: o, text: o })));
  }
  opt.value = data.settings.optimizer;
  $("max-steps").value = data.settings.stop.max_steps;
  drawParameters();
  drawNetwork();
  drawFit();
  drawSelected();
}

// ---------------------------------------------------------------------------------
// Stepping and the ledger
// ---------------------------------------------------------------------------------

function resetLedger(run) {
  app.ledgerColumns = null;
  app.trail = [];
  $("ledger").tHead.replaceChildren();
  $("ledger").tBodies[0].replaceChildren();
  $("stop-message").textContent = "";
  $("diagnosis").textContent = "";
  if (run && run.steps && run.steps.length) addRows(run.steps, run.loss_label);
  if (run && run.done) showStop(run);
  setRunning(false);
}

function addRows(steps, loss) {
  const table = $("ledger");
  if (!app.ledgerColumns) {
    const names = Object.keys(steps[0].values).slice(0, 3);
    app.ledgerColumns = names;
    const L = loss || "loss";
    const heads = ["step", ...names, L];
    for (const p of names) heads.push(`d${L}/d${p}`);
    for (const p of names) heads.push(names.length > 1 ? `step size (${p})` : "step size");
    for (const p of names) heads.push(`new ${p}`);
    table.tHead.replaceChildren(el("tr", {}, ...heads.map((h) => el("th", { scope: "col", text: h }))));
  }
  const names = app.ledgerColumns;
  const body = table.tBodies[0];
  for (const s of steps) {  // the descent path: the values before the first step, then after each
    if (!app.trail.length) app.trail.push(s.values);
    app.trail.push(s.new_values);
  }
  if (app.trail.length > 2000) app.trail.splice(1, app.trail.length - 2000);
  for (const s of steps) {
    const cells = [String(s.step), ...names.map((p) => fmt(s.values[p])), fmt(s.loss)];
    for (const part of ["gradients", "step_sizes", "new_values"]) {
      for (const p of names) cells.push(fmt(s[part][p]));
    }
    body.append(el("tr", {}, ...cells.map((c) => el("td", { text: c }))));
  }
  while (body.rows.length > 300) body.deleteRow(0);
  const panel = $("ledger-panel");
  panel.scrollTop = panel.scrollHeight;
}

function showStop(result) {
  $("stop-message").textContent = result.message ? `Stopped: ${result.message}` : "";
  $("diagnosis").textContent = result.diagnosis ? result.diagnosis.message : "";
}

// One request per step (or per frame of a run): the answer holds the new ledger rows,
// the parameters and the fit, all that is redrawn. The loss curve and the chain rule
// are asked for separately (redraw), and while running at most every CURVE_MS.
async function step(count = 1, redraw = true) {
  const result = await api("POST", `/api/sessions/${app.session}/step`, { steps: count, fit: true, terms: terms() });
  if (result.steps.length) addRows(result.steps, result.loss_label);
  if (result.done) {
    showStop(result);
    pause();
  }
  app.walk = null;
  app.state.parameters = result.parameters;
  app.state.fit = result.fit;
  drawParameters();
  drawNetwork();
  drawFit();
  if (redraw) drawSelected();
  else if (app.contour) paintContour();  // the descent path grows frame by frame
  return result;
}

function setRunning(on) {
  app.running = on;
  $("run").textContent = on ? "Pause" : "Run";
  $("run").setAttribute("aria-pressed", on ? "true" : "false");
}

function pause() { setRunning(false); }

// The Run button's pace (benchmarks/bench_web.py mirrors it): one step request per
// frame, a frame every FRAME_MS at most; 1 step in the first frame, one more in each
// next frame up to MAX_STEPS_PER_FRAME (few steps while they are worth watching one by
// one, more in long runs); the loss curve and the chain rule at most every CURVE_MS,
// and once more when the run stops.
const FRAME_MS = 100, MAX_STEPS_PER_FRAME = 50, CURVE_MS = 500;

async function runLoop() {
  setRunning(true);
  let count = 1, curve = performance.now();
  while (app.running) {
    const started = performance.now();
    try {
      const result = await step(count, false);
      if (result.done || result.taken === 0) break;
    } catch (error) {
      showError(error.message);
      break;
    }
    if (performance.now() - curve >= CURVE_MS) {
      curve = performance.now();
      drawSelected();
    }
    count = Math.min(MAX_STEPS_PER_FRAME, count + 1);
    await new Promise((r) => setTimeout(r, Math.max(0, FRAME_MS - (performance.now() - started))));
  }
  setRunning(false);
  drawSelected();
}

// ---------------------------------------------------------------------------------
// Parameters: list, network, editor
// ---------------------------------------------------------------------------------

function drawParameters() {
  const box = $("parameters");
  const params = app.state.parameters;
  if (params.length > 40) {
    box.replaceChildren(el("p", { class: "hint", text: `${params.length} parameters: click one on the diagram, or pick a trained one.` }));
  }
  const shown = params.length > 40 ? params.filter((p) => p.name === app.selected).concat(params.slice(0, 12).filter((p) => p.name !== app.selected)) : params;
  const items = shown.map((p) => el("span", { class: `p ${p.trained ? "trained" : "frozen"}` },
    el("button", {
      type: "button", class: p.name === app.selected ? "selected" : "",
      "aria-label": `select ${p.name}`, text: `${p.name} = ${short(p.value)}`,
      onclick: () => select(p.name),
    }),
    el("input", {
      type: "checkbox", "aria-label": `train ${p.name}`, ...(p.trained ? { checked: "" } : {}),
      onchange: (e) => setTrained(p.name, e.target.checked),
    })));
  if (params.length <= 40) box.replaceChildren(...items);
  else box.append(...items);
}

function parameter(name) { return app.state.parameters.find((p) => p.name === name); }

function select(name) {
  app.selected = name;
  drawParameters();
  drawNetwork();
  drawSelected();
}

function drawSelected() {
  const p = parameter(app.selected);
  $("editor").hidden = !p;
  if (!p) return;
  $("slider-label").textContent = `value of ${p.name}`;
  const span = Math.max(2, Math.abs(p.value) * 1.5);
  const slider = $("value-slider");
  if (document.activeElement !== slider) {
    slider.min = (p.value - span).toFixed(3);
    slider.max = (p.value + span).toFixed(3);
    slider.value = p.value;
  }
  slider.setAttribute("aria-label", `value of ${p.name}`);
  if (document.activeElement !== $("value-number")) $("value-number").value = Number(p.value.toPrecision(6));
  $("value-trained").checked = p.trained;
  $("value-trained").setAttribute("aria-label", `train ${p.name}`);
  drawLossCurve();
  drawContourChoice();
  drawContour();
  drawChain();
}

async function setValue(name, value) {
  if (!Number.isFinite(value)) return;
  pause();
  try {
    const data = await api("POST", `/api/sessions/${app.session}/values`, { values: { [name]: value } });
    afterChange(data);
  } catch (error) { showError(error.message); }
}

async function setTrained(name, trained) {
  pause();
  try {
    const data = await api("POST", `/api/sessions/${app.session}/values`, trained ? { train: [name] } : { freeze: [name] });
    afterChange(data);
  } catch (error) { showError(error.message); }
}

async function setSettings(settings) {
  pause();
  try {
    const data = await api("POST", `/api/sessions/${app.session}/values`, { set: settings });
    afterChange(data);
  } catch (error) { showError(error.message); }
}

function afterChange(data) {
  showError("");
  app.walk = null;
  resetLedger(null);
  setState(data);
}

// The network: every parameter at its place, a click (or Enter) on it selects it.
// A formula's diagram writes "w1 = 3.34" on each of its few edges, in the learner's own
// names. A layer network's names (hidden.weight[0,1]) are too long for that: as in the
// network figure, an edge shows its weight's value alone (the name in its tooltip), a
// node its bias as "b = ..." below it, the inputs' names stand left of them and the
// outputs' right, and an edge's colour is its weight's sign, its width the weight's
// size. Each value is slid along its edge until it covers no other text. Past 24 edges
// the values would cover the drawing: only the selected parameter keeps its label.
const NET = { W: 420, r: 16, rMany: 7, char: 6.8, maxLabelled: 24 };

function drawNetwork() {
  const box = $("network");
  const { nodes, edges, layers } = app.state.network;
  box.replaceChildren();
  if (!nodes.length) return;
  const values = Object.fromEntries(app.state.parameters.map((p) => [p.name, p]));
  const many = edges.length > NET.maxLabelled;
  const r = many ? NET.rMany : NET.r;
  const xs = nodes.map((n) => n.x), ys = nodes.map((n) => n.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const W = NET.W, H = Math.max(220, 70 * (y1 - y0 + 1.2));
  const width = (kind) => Math.max(0, ...nodes.filter((n) => n.kind === kind).map((n) => textWidth(n.title || n.key)));
  const left = layers ? Math.max(40, 14 + r + width("input")) : 40;
  const right = layers ? Math.max(60, 12 + r + width("output")) : 60;
  const top = layers ? 30 : 45, bottom = layers ? 62 : 40;  // (a formula's biases go above)
  box.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const px = (x) => left + ((x - x0) / ((x1 - x0) || 1)) * (W - left - right);
  const py = (y) => top + ((y1 - y) / ((y1 - y0) || 1)) * (H - top - bottom);
  const at = Object.fromEntries(nodes.map((n) => [n.key, [px(n.x), py(n.y)]]));
  // The nodes the backward pass has reached: a formula's by name (y1, or x1 in the
  // caption "x1 → y1"), a layer network's by layer (hidden.z and hidden.a: every
  // hidden[k] circle).
  const active = app.walk ? new Set(app.walk.nodes.slice(0, app.walked).map((n) => n.name)) : new Set();
  const activeLayers = new Set([...active].map((name) => name.split(".")[0]));
  const reached = (n) => layers
    ? n.kind !== "input" && activeLayers.has(n.key.split("[")[0])
    : active.has(n.key) || n.caption.split(" → ").some((c) => active.has(c));
  // Text already placed (and the nodes), which a value must not cover.
  const taken = nodes.map((n) => { const [x, y] = at[n.key]; return [x - r - 2, y - r - 2, x + r + 2, y + r + 2]; });
  const biggest = Math.max(1e-12, ...edges.map((e) => Math.abs(values[e.parameter]?.value ?? 0)));
  const labels = [];
  for (const e of edges) {
    const [ax, ay] = at[e.source], [bx, by] = at[e.target];
    const p = values[e.parameter];
    const style = edgeStyle(p, e.parameter, layers, many, biggest);
    box.append(svg("line", { x1: ax, y1: ay, x2: bx, y2: by, class: "edge", "data-parameter": e.parameter || "", ...style }));
    if (!p) continue;
    if (layers) box.append(hitLine(e.parameter, p, ax, ay, bx, by));
    if (!many || e.parameter === app.selected) labels.push([e, p, ax, ay, bx, by]);
  }
  for (const n of nodes) {
    const [x, y] = at[n.key];
    const g = svg("g", { class: reached(n) ? "active" : "" });
    const fill = n.kind === "input" ? "#eee" : n.kind === "output" ? "#d9f0d3" : "#dbe9f6";
    g.append(svg("circle", { cx: x, cy: y, r, fill, stroke: "#666" }));
    const name = n.title || n.key;
    if (!layers) {
      if (!many || n.kind === "input") g.append(svg("text", { x, y: y + 4, "text-anchor": "middle" }, name));
      if (!many) g.append(svg("text", { x, y: y + 30, "text-anchor": "middle", fill: "#666" }, n.caption));
    } else if (n.kind === "input") {
      g.append(svg("text", { x: x - r - 4, y: y + 4, "text-anchor": "end" }, name));
    } else if (n.kind === "output") {
      g.append(svg("text", { x: x + r + 4, y: y + 4, "text-anchor": "start" }, n.key));
    } else if (!many) {  // the activation in its circle: leaky_relu is written "leaky"
      const fits = (textWidth(name) * 10) / 11 <= 2 * r + 8;
      const unit = svg("text", { x, y: y + 4, "text-anchor": "middle", class: "unit" }, fits ? name : name.split("_")[0]);
      if (!fits) unit.append(svg("title", {}, name));
      g.append(unit);
    }
    box.append(g);
    n.bias.forEach((b, i) => {
      if (layers && many && b !== app.selected) return;
      const [bx, by] = layers ? [x, y + r + 12 + 12 * i] : [x, y - 22 - 12 * i];
      const t = addParam(box, b, values[b], bx, by, layers ? "b" : b);
      if (t) taken.push(covers(t));
    });
  }
  const out = count(edges.map((e) => e.source)), into = count(edges.map((e) => e.target));
  for (const [e, p, ax, ay, bx, by] of labels) {
    const name = e.parameter;
    if (!layers) addParam(box, name, p, ax + (bx - ax) * 0.55, ay + (by - ay) * 0.55 - 4);
    else {
      const lean = 0.2 * Math.sign(out[e.source] - into[e.target]);
      taken.push(placeAlong(addParam(box, name, p, ax, ay, null), ax, ay, bx, by, lean, taken));
    }
  }
  if (layers) {
    const frozen = edges.some((e) => values[e.parameter] && !values[e.parameter].trained);
    box.append(svg("text", { x: 4, y: H - 6, class: "legend" },
      `blue: weight > 0, orange: weight < 0${frozen ? ", dashed grey: frozen" : ""}; thicker: larger`));
  }
}

// How many times each key comes: {key: count}.
const count = (keys) => keys.reduce((c, k) => ({ ...c, [k]: (c[k] || 0) + 1 }), {});

// The width of a text at the diagram's 11 px, about 6.8 px a character in bold (for
// the margins, before any text is drawn).
const textWidth = (text) => NET.char * String(text).length;
// The box that a centred text written at (x, y) covers, [left, top, right, bottom], in
// the drawing's units, from the width the browser gives it.
function textBox(t, x, y) {
  const w = (t.getBBox().width || textWidth(t.firstChild.textContent)) + 6;  // (not the tooltip)
  return [x - w / 2, y - 11, x + w / 2, y + 4];
}
const covers = (t) => textBox(t, Number(t.getAttribute("x")), Number(t.getAttribute("y")));
const COLOUR = { positive: "#1f77b4", negative: "#ff7f0e", frozen: "#bbb", selected: "#d62728" };

// A line's stroke: a formula's trained parameter is blue, a frozen one grey; a layer
// network's weight blue when positive and orange when negative, as wide as its size
// against the largest; the selected one red.
function edgeStyle(p, name, layers, many, biggest) {
  if (!p) return { stroke: COLOUR.frozen, "stroke-width": many ? 0.6 : 1.4 };
  if (name === app.selected) return { stroke: COLOUR.selected, "stroke-width": many ? 2 : 2.6 };
  if (!layers) return { stroke: p.trained ? COLOUR.positive : COLOUR.frozen, "stroke-width": many ? 0.6 : 1.4 };
  const width = (many ? 0.4 : 0.8) + (many ? 1.8 : 2.6) * Math.min(1, Math.abs(p.value ?? 0) / biggest);
  const stroke = !p.trained ? COLOUR.frozen : (p.value ?? 0) >= 0 ? COLOUR.positive : COLOUR.negative;
  return { stroke, "stroke-width": width, ...(p.trained ? {} : { "stroke-dasharray": "4 3" }) };
}

// A wide invisible line over a layer network's edge: its tooltip names the weight, a
// click selects it (the keyboard reaches each weight by its value or its button below).
function hitLine(name, p, ax, ay, bx, by) {
  const line = svg("line", { x1: ax, y1: ay, x2: bx, y2: by, class: "hit", "data-parameter": name });
  line.append(svg("title", {}, `${name} = ${short(p.value)}${p.trained ? "" : " (frozen)"}`));
  line.addEventListener("click", () => select(name));
  return line;
}

// Moves a weight's value along its edge to the first point where it covers neither a
// node nor a text placed before it: on the edge, or else just beside it (where every
// point covers something, to the one that covers the least); it returns the box the
// text covers. The search starts at 0.5 + lean of the way, leaning away from the end
// where more edges meet (a layer of four fed by two inputs: near the four), and moves
// outwards from there.
const ALONG = [0, -0.1, 0.1, -0.2, 0.2, -0.3, 0.3, -0.15, 0.15, -0.25, 0.25, -0.05, 0.05];
const BESIDE = [0, -9, 9];  // px across the edge

function placeAlong(text, ax, ay, bx, by, lean, taken) {
  const covered = (b) => taken.reduce((sum, o) =>
    sum + Math.max(0, Math.min(b[2], o[2]) - Math.max(b[0], o[0])) * Math.max(0, Math.min(b[3], o[3]) - Math.max(b[1], o[1])), 0);
  const length = Math.hypot(bx - ax, by - ay) || 1;
  const [nx, ny] = [-(by - ay) / length, (bx - ax) / length];  // across the edge
  let best = null;
  for (const d of BESIDE) {
    for (const offset of ALONG) {
      const f = Math.min(0.85, Math.max(0.15, 0.5 + lean + offset));
      const x = ax + (bx - ax) * f + nx * d, y = ay + (by - ay) * f + ny * d + 4;
      const area = covered(textBox(text, x, y));
      if (!best || area < best[0]) best = [area, x, y];
      if (area === 0) break;
    }
    if (best[0] === 0) break;
  }
  const [, x, y] = best;
  text.setAttribute("x", x);
  text.setAttribute("y", y);
  return textBox(text, x, y);
}

// A parameter's text: "name = value" (or "label = value"; a null label writes the value
// alone), clickable and focusable, with the whole name in its tooltip.
function addParam(box, name, p, x, y, label = name) {
  if (!p) return null;
  const cls = `param ${p.trained ? "trained" : "frozen"}${name === app.selected ? " selected" : ""}`;
  const text = label === null ? short(p.value) : `${label} = ${short(p.value)}`;
  const t = svg("text", { x, y, "text-anchor": "middle", class: cls, tabindex: 0, role: "button", "aria-label": `select ${name}`, "data-parameter": name });
  t.textContent = text;
  if (label !== name) t.append(svg("title", {}, `${name} = ${short(p.value)}`));
  t.addEventListener("click", () => select(name));
  t.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(name); } });
  box.append(t);
  return t;
}

// ---------------------------------------------------------------------------------
// The data and the fit
// ---------------------------------------------------------------------------------

function drawFit() {
  const fit = app.state.fit;
  const box = $("fit");
  $("terms-toggle").hidden = !(fit.kind === "curve" && fit.terms);
  $("units").replaceChildren();
  if (fit.kind === "curve") drawCurve(box, fit);
  else if (fit.kind === "regions") drawRegions(box, fit);
  else box.replaceChildren(el("p", { class: "hint", text: "This data has more than two inputs: see the ledger and the loss." }));
}

// A plot's margins leave room for every label inside the drawing: the y ticks left of
// the axis, the x ticks below it (the first and last kept inside the edges), the x
// label centred under them and the y label above the axis.
// The left margin grows with the longer y tick (about 6.5 px a character at the ticks'
// 10 px), so that a long one such as -4.13e+4 keeps its sign.
const FRAME = { left: 48, right: 14, top: 28, bottom: 38 };

function plotFrame(W, H, xr, yr) {
  const { right, top, bottom } = FRAME;
  const longest = Math.max(short(yr[0]).length, short(yr[1]).length);
  const left = Math.max(FRAME.left, Math.ceil(10 + 6.5 * longest));
  const sx = (x) => left + ((x - xr[0]) / (xr[1] - xr[0] || 1)) * (W - left - right);
  const sy = (y) => H - bottom - ((y - yr[0]) / (yr[1] - yr[0] || 1)) * (H - top - bottom);
  return { sx, sy, left };
}

function axes(s, W, H, xr, yr, xlabel, ylabel) {
  const { sx, sy, left } = plotFrame(W, H, xr, yr);
  const { right, top, bottom } = FRAME;
  const base = H - bottom;
  s.append(svg("line", { x1: left, y1: base, x2: W - right, y2: base, stroke: "#999", class: "axis" }));
  s.append(svg("line", { x1: left, y1: top, x2: left, y2: base, stroke: "#999", class: "axis" }));
  s.append(svg("text", { x: (left + W - right) / 2, y: H - 4, "text-anchor": "middle", "font-size": 11, class: "axis-label" }, xlabel));
  s.append(svg("text", { x: 4, y: 12, "font-size": 11, class: "axis-label" }, ylabel));
  s.append(svg("text", { x: sx(xr[0]), y: base + 13, "font-size": 10, "text-anchor": "start", class: "tick" }, short(xr[0])));
  s.append(svg("text", { x: sx(xr[1]), y: base + 13, "font-size": 10, "text-anchor": "end", class: "tick" }, short(xr[1])));
  for (const v of [yr[0], yr[1]]) s.append(svg("text", { x: left - 4, y: sy(v) + 3, "font-size": 10, "text-anchor": "end", class: "tick" }, short(v)));
  return { sx, sy };
}

// The values' range with a margin of pad of it each side; values that are all at or
// above floor keep the low end there (a loss never below 0 gets no negative ticks).
function range(values, pad = 0.08, floor = -Infinity) {
  const finite = values.filter((v) => v !== null && Number.isFinite(v));
  let lo = Math.min(...finite), hi = Math.max(...finite);
  if (!finite.length) { lo = 0; hi = 1; }
  const p = (hi - lo) * pad || 1;
  return [lo >= floor ? Math.max(floor, lo - p) : lo - p, hi + p];
}

function path(xs, ys, sx, sy) {
  let d = "";
  xs.forEach((x, i) => { if (ys[i] !== null) d += `${d ? "L" : "M"}${sx(x).toFixed(1)},${sy(ys[i]).toFixed(1)}`; });
  return d;
}

function drawCurve(box, fit) {
  const W = 420, H = 260;
  const terms = $("show-terms").checked && fit.terms ? fit.terms : [];
  const yr = range([...fit.y, ...fit.curve, ...terms.flatMap((t) => t.values)]);
  const xr = [fit.grid[0], fit.grid[fit.grid.length - 1]];
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "the data and the fitted curve" });
  const { sx, sy } = axes(s, W, H, xr, yr, app.state.inputs[0], app.state.target);
  const colours = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"];
  terms.forEach((t, i) => {
    s.append(svg("path", { d: path(fit.grid, t.values, sx, sy), fill: "none", stroke: colours[i % 5], "stroke-dasharray": "4 3" }));
    const last = t.values[t.values.length - 1];
    s.append(svg("text", { x: W - 12, y: sy(last) - 3, "text-anchor": "end", "font-size": 10, fill: colours[i % 5] }, t.label));
  });
  s.append(svg("path", { d: path(fit.grid, fit.curve, sx, sy), fill: "none", stroke: "#2ca02c", "stroke-width": 2.5 }));
  fit.x.forEach((x, i) => s.append(svg("circle", { cx: sx(x), cy: sy(fit.y[i]), r: 4.5, fill: "#333" })));
  box.replaceChildren(s);
}

function colour(p) {  // P(class 1): blue (0) .. white (0.5) .. orange (1)
  const a = [31, 119, 180], b = [255, 127, 14], w = [247, 247, 247];
  const t = Math.abs(p - 0.5) * 2, c = p < 0.5 ? a : b;
  return w.map((v, i) => Math.round(v + (c[i] - v) * t));
}

function heat(canvas, grid, lo, hi, toColour) {
  const n = grid.length, m = grid[0].length;
  canvas.width = m; canvas.height = n;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(m, n);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < m; c++) {
      const v = grid[n - 1 - r][c];
      const rgb = toColour(v === null ? 0.5 : (v - lo) / (hi - lo || 1));
      const k = 4 * (r * m + c);
      img.data.set([...rgb, 255], k);
    }
  }
  ctx.putImageData(img, 0, 0);
}

function drawRegions(box, fit) {
  const size = 300;
  const wrap = el("div", { style: "position:relative" });
  const canvas = el("canvas", { role: "img", "aria-label": "decision regions: the shade is the predicted class" });
  const classColours = [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189]];
  if (fit.classes === 2) heat(canvas, fit.p, 0, 1, colour);
  else heat(canvas, fit.p, 0, fit.classes - 1, (t) => classColours[Math.round(t * (fit.classes - 1)) % 5].map((v) => Math.round(v * 0.45 + 140)));
  const s = svg("svg", { viewBox: `0 0 ${size} ${size}`, style: "position:absolute;inset:0;background:none;border:none" });
  const gx = fit.gx, gy = fit.gy;
  const sx = (x) => ((x - gx[0]) / (gx[gx.length - 1] - gx[0])) * size;
  const sy = (y) => size - ((y - gy[0]) / (gy[gy.length - 1] - gy[0])) * size;
  fit.x.forEach((x, i) => {
    const k = Math.round(fit.y[i]);
    s.append(svg("circle", { cx: sx(x), cy: sy(fit.x2[i]), r: 2.6, fill: `rgb(${classColours[k % 5].join(",")})`, stroke: "#fff", "stroke-width": 0.6 }));
  });
  wrap.append(canvas, s);
  box.replaceChildren(wrap, el("p", { class: "hint", text: `${app.state.inputs.join(" × ")}: shade = predicted class, dots = the data` }));
  const units = $("units");
  for (const u of fit.units) {
    const flat = u.values.flat().filter((v) => v !== null);
    const lo = Math.min(...flat), hi = Math.max(...flat);
    const c = el("canvas", { role: "img", "aria-label": `what unit ${u.name} computes over the plane` });
    heat(c, u.values, lo, hi, (t) => colour(t));
    units.append(el("figure", {}, c, el("figcaption", { text: u.name })));
  }
}

// ---------------------------------------------------------------------------------
// The loss curve of the selected parameter, and the chain rule
// ---------------------------------------------------------------------------------

// The loss curve: 41 points (an odd number: the middle one is the value now), enough for a
// smooth curve 420 px wide, and each point is one forward pass on the server.
const CURVE_POINTS = 41;
// A drawing that asks the server sends one request at a time: asked again while its
// answer is out, it draws once more when the answer is in (at the values then), so a
// busy server gets no requests whose answers would be drawn over at once.
function oneAtATime(draw) {
  let busy = false, again = false;
  const run = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try { await draw(); } finally {
      busy = false;
      if (again) { again = false; run(); }
    }
  };
  return run;
}

const drawLossCurve = oneAtATime(drawLossCurveNow);
let lossToken = 0;
async function drawLossCurveNow() {
  const p = parameter(app.selected);
  const box = $("loss-curve");
  if (!p) { box.replaceChildren(); return; }
  const token = ++lossToken;
  const span = Math.max(2, Math.abs(p.value));
  const from = p.value - span, to = p.value + span;
  try {
    const [curve, rule] = await Promise.all([
      api("GET", `/api/sessions/${app.session}/scan?parameter=${encodeURIComponent(p.name)}&from=${from}&to=${to}&num=${CURVE_POINTS}`),
      api("GET", `/api/sessions/${app.session}/explain?parameter=${encodeURIComponent(p.name)}`),
    ]);
    if (token !== lossToken) return;
    app.rule = rule;
    const W = 420, H = 260;
    const loss = curve.losses;
    const current = loss[(CURVE_POINTS - 1) / 2];  // the middle point: the value now
    const yr = range(loss, 0.08, 0);
    box.setAttribute("viewBox", `0 0 ${W} ${H}`);
    box.replaceChildren();
    const { sx, sy } = axes(box, W, H, [from, to], yr, p.name, curve.loss_label);
    box.append(svg("path", { d: path(curve.values, loss, sx, sy), fill: "none", stroke: "#e377c2", "stroke-width": 2 }));
    const slope = rule.gradient, h = span * 0.4;
    const clip = (y) => Math.max(yr[0], Math.min(yr[1], y));
    box.append(svg("line", { x1: sx(p.value - h), y1: sy(clip(current - slope * h)), x2: sx(p.value + h), y2: sy(clip(current + slope * h)), stroke: "#333", "stroke-dasharray": "5 3" }));
    box.append(svg("circle", { cx: sx(p.value), cy: sy(current), r: 5, fill: "#d62728" }));
    box.append(svg("text", { x: W - FRAME.right, y: 13, "text-anchor": "end", "font-size": 12 }, `${p.name} = ${fmt(p.value)}, slope = ${fmt(slope)}`));
    drawChain();
  } catch (error) { showError(error.message); }
}

// ---------------------------------------------------------------------------------
// The loss over two parameters: a contour (filled bands) with the descent path
// ---------------------------------------------------------------------------------

const CONTOUR_POINTS = 31, CONTOUR_BANDS = 12;

// The contour's second parameter: the one chosen, or else another trained one when two
// are (the session's second with a slope, when it is not the one selected now).
function secondParameter() {
  const others = app.state.parameters.filter((p) => p.name !== app.selected);
  if (app.second !== null) return others.some((p) => p.name === app.second) ? app.second : "";
  const trained = app.state.parameters.filter((p) => p.trained);
  if (trained.length < 2) return "";
  if (app.sloped && app.sloped !== app.selected && trained.some((p) => p.name === app.sloped)) return app.sloped;
  return (trained.find((p) => p.name !== app.selected) || {}).name || "";
}

function drawContourChoice() {
  const box = $("contour-with");
  const names = app.state.parameters.filter((p) => p.name !== app.selected).map((p) => p.name);
  const key = names.join(",");
  if (box.dataset.names !== key) {
    box.replaceChildren(el("option", { value: "", text: "none" }), ...names.slice(0, 400).map((n) => el("option", { value: n, text: n })));
    box.dataset.names = key;
  }
  box.value = secondParameter();
}

// A step record holds the trained parameters' values; a frozen one keeps its value now.
function along(t, name) {
  const v = t[name] !== undefined ? t[name] : (parameter(name) || {}).value;
  return v === null || v === undefined ? NaN : v;
}

function contourRange(name, value) {  // around the value now, and the whole path so far
  const path = app.trail.map((t) => along(t, name)).filter((v) => Number.isFinite(v));
  const span = Math.max(1, Math.abs(value) * 0.5);
  const lo = Math.min(value - span, ...path), hi = Math.max(value + span, ...path);
  const pad = (hi - lo) * 0.08;
  return [lo - pad, hi + pad];
}

const drawContour = oneAtATime(drawContourNow);
let contourToken = 0;
async function drawContourNow() {
  const p = parameter(app.selected), q = parameter(secondParameter());
  const box = $("contour");
  if (!p || !q) { app.contour = null; box.replaceChildren(); $("contour-best").textContent = ""; return; }
  const token = ++contourToken;
  const same = app.contour && app.contour.parameter === p.name && app.contour.parameter2 === q.name;
  if (app.running && same) { paintContour(); return; }  // while running only the path moves
  const [a, b] = contourRange(p.name, p.value), [c, d] = contourRange(q.name, q.value);
  const query = `parameter=${encodeURIComponent(p.name)}&from=${a}&to=${b}&num=${CONTOUR_POINTS}` +
    `&parameter2=${encodeURIComponent(q.name)}&from2=${c}&to2=${d}&num2=${CONTOUR_POINTS}`;
  try {
    const scan = await api("GET", `/api/sessions/${app.session}/scan?${query}`);
    if (token !== contourToken) return;
    app.contour = scan;
    paintContour();
  } catch (error) { showError(error.message); }
}

function bandColour(t) {  // low loss dark blue .. high loss pale yellow, in bands
  const band = Math.min(CONTOUR_BANDS - 1, Math.floor(Math.sqrt(Math.max(0, t)) * CONTOUR_BANDS)) / (CONTOUR_BANDS - 1);
  const low = [37, 52, 148], high = [255, 255, 217];
  return low.map((v, i) => Math.round(v + (high[i] - v) * band));
}

function paintContour() {
  const scan = app.contour, box = $("contour");
  const p = scan.parameter, q = scan.parameter2;
  const W = 420, H = 300;
  const xr = [scan.values[0], scan.values[scan.values.length - 1]];
  const yr = [scan.values2[0], scan.values2[scan.values2.length - 1]];
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `the ${scan.loss_label} over ${p} and ${q}: a contour with the descent path` });
  const { sx, sy } = axes(s, W, H, xr, yr, p, q);
  // rows of the picture are q's values (bottom to top), columns p's: loss[i][j] is (p_i, q_j)
  const grid = scan.values2.map((_, j) => scan.losses.map((row) => row[j]));
  const flat = grid.flat().filter((v) => v !== null);
  const canvas = document.createElement("canvas");
  heat(canvas, grid, Math.min(...flat), Math.max(...flat), bandColour);
  s.append(svg("image", { href: canvas.toDataURL(), x: sx(xr[0]), y: sy(yr[1]), width: sx(xr[1]) - sx(xr[0]), height: sy(yr[0]) - sy(yr[1]), preserveAspectRatio: "none", class: "contour-bands" }));
  const points = app.trail.map((t) => [along(t, p), along(t, q)]).filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
  if (points.length > 1) {
    s.append(svg("polyline", { points: points.map(([a, b]) => `${sx(a).toFixed(1)},${sy(b).toFixed(1)}`).join(" "), fill: "none", stroke: "#d62728", "stroke-width": 1.8, class: "descent-path" }));
  }
  const now = [parameter(p), parameter(q)];
  if (now[0] && now[1]) s.append(svg("circle", { cx: sx(now[0].value), cy: sy(now[1].value), r: 5, fill: "#d62728", stroke: "#fff" }));
  box.replaceChildren(s);
  const best = scan.best, steps = Math.max(0, points.length - 1);
  $("contour-best").textContent = best ? `lowest ${scan.loss_label} on this grid: ${fmt(best.loss)} at ${p} = ${fmt(best.value)}, ${q} = ${fmt(best.value2)}; the red line is the descent path (${steps} step${steps === 1 ? "" : "s"})` : "";
}

function mi(text) { const n = document.createElementNS(MATHNS, "mi"); n.textContent = text; return n; }
function mo(text) { const n = document.createElementNS(MATHNS, "mo"); n.textContent = text; return n; }
function mn(text) { const n = document.createElementNS(MATHNS, "mn"); n.textContent = text; return n; }
function m(tag, ...children) { const n = document.createElementNS(MATHNS, tag); n.append(...children); return n; }

function derivative(label) {  // "dSSR/db3" as a fraction
  const [top, bottom] = label.split("/");
  return m("mfrac", m("mrow", mi("d"), mi(top.slice(1))), m("mrow", mi("d"), mi(bottom.slice(1))));
}

function drawChain() {
  const box = $("chain");
  const rule = app.rule;
  if (!rule || rule.parameter !== app.selected) { box.replaceChildren(); return; }
  const math = document.createElementNS(MATHNS, "math");
  math.setAttribute("display", "block");
  const row = m("mrow", derivative(`d${rule.loss_label}/d${rule.parameter}`), mo("="));
  if (rule.points.length > 1 && rule.paths.length) row.append(m("munder", mo("∑"), mi("points")));
  rule.paths.forEach((factors, i) => {
    if (i) row.append(mo("+"));
    const product = m("mrow");
    factors.forEach((f, j) => { if (j) product.append(mo("×")); product.append(derivative(f)); });
    row.append(rule.paths.length > 1 ? m("mrow", mo("("), product, mo(")")) : product);
  });
  if (rule.paths.length) row.append(mo("="));
  row.append(mn(fmt(rule.gradient)));
  math.append(row);
  const formulas = el("ul", { class: "paths" }, ...Object.entries(rule.formulas).slice(0, 8).map(([k, v]) => el("li", { text: `${k} = ${v}` })));
  const points = rule.points.slice(0, 12);
  const head = ["point", ...rule.paths.flatMap((fs) => fs), "product"];
  const table = el("table", {},
    el("caption", { text: `This step's numbers, path by path (${rule.points.length} point${rule.points.length > 1 ? "s" : ""})` }),
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...points.map((pt) => el("tr", {},
      el("td", { text: Object.entries(pt.inputs).map(([k, v]) => `${k}=${short(v)}`).join(", ") }),
      ...pt.paths.flat().map((v) => el("td", { text: fmt(v) })),
      el("td", { text: fmt(pt.products.reduce((a, b) => a + b, 0)) })))));
  // each point's observed, predicted and residual: what dSSR/dpredicted is made of
  const seen = [];
  if (rule.observed) {
    const head = ["point", "observed", "predicted", ...(rule.residuals ? ["residual"] : [])];
    seen.push(el("table", { id: "chain-points" },
      el("caption", { text: "The data points at these values" }),
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...points.map((pt, i) => el("tr", {},
        el("td", { text: Object.entries(pt.inputs).map(([k, v]) => `${k}=${short(v)}`).join(", ") }),
        el("td", { text: rule.residuals ? fmt(rule.observed[i]) : String(rule.observed[i]) }),  // a class: 0, not 0.0000
        el("td", { text: [rule.predictions[i]].flat().map(fmt).join(", ") }),
        ...(rule.residuals ? [el("td", { text: fmt(rule.residuals[i]) })] : []))))));
  }
  // no path carries a slope: why (the parameter does not reach the loss, or a local
  // derivative closes every path, such as a ReLU off for all the data)
  if (rule.why_zero) box.replaceChildren(math, el("p", { id: "why-zero", text: rule.why_zero }), ...seen);
  else box.replaceChildren(math, formulas, ...seen, table, el("p", { text: `sum: ${fmt(rule.sum)}` }));
}

// ---------------------------------------------------------------------------------
// The backward pass, one node per press
// ---------------------------------------------------------------------------------

async function backward() {
  if (!app.walk || app.walked >= app.walk.nodes.length) {
    app.walk = await api("GET", `/api/sessions/${app.session}/backward`);
    app.walked = 0;
  }
  app.walked += 1;
  const list = $("backward-list");
  list.replaceChildren(...app.walk.nodes.map((n, i) => {
    const done = i < app.walked;
    const value = n.values.length > 4 ? `${n.values.length} values` : n.values.map(fmt).join(", ");
    const grad = n.gradients.length > 4 ? `${n.gradients.length} values` : n.gradients.map(fmt).join(", ");
    const label = n.kind === "loss" ? `${n.name} (the loss)` : n.kind === "parameter" ? `${n.name} (parameter${n.trained ? ", trained" : ", frozen"})` : `${n.name} = ${n.op}(…)`;
    return el("li", { class: done ? "done" : "pending" },
      el("span", { text: `${label}: value ${value}; ` }),
      el("span", { class: "grad", text: done ? `d${app.walk.nodes[0].name}/d${n.name} = ${grad}` : "gradient: ?" }));
  }));
  drawNetwork();
}

// ---------------------------------------------------------------------------------
// The quiz
// ---------------------------------------------------------------------------------

async function quiz(kind) {
  const data = await api("GET", `/api/sessions/${app.session}/quiz?kind=${kind}`);
  const box = $("questions");
  const parts = [];
  if (data.points) {  // what the step's slope is worked out from, one row per data point
    const p = data.points;
    parts.push(el("table", { id: "quiz-points" },
      el("caption", { text: "The data points before this step" }),
      el("thead", {}, el("tr", {}, ...p.columns.map((c) => el("th", { scope: "col", text: c })))),
      el("tbody", {}, ...p.rows.map((r) => el("tr", {}, ...r.map((v, j) => el("td", { text: p.whole[j] ? String(v) : fmt(v) })))))));
    if (p.note) parts.push(el("p", { class: "hint", text: p.note }));
  }
  parts.push(...data.questions.map((q) => {
    const input = el("input", { type: "text", inputmode: "decimal", "aria-label": `answer: ${q.prompt}` });
    const feedback = el("p", { "aria-live": "polite" });
    const check = async () => {
      const r = await api("POST", `/api/sessions/${app.session}/quiz`, { index: q.index, answer: input.value, kind });
      feedback.textContent = r.message;
      feedback.className = r.correct ? "ok" : "no";
    };
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") check(); });
    return el("div", { class: "q" }, el("p", { text: q.prompt }), input, el("button", { type: "button", text: "Check", onclick: check }), feedback);
  }));
  box.replaceChildren(...parts);
}

// ---------------------------------------------------------------------------------
// Scenarios: pick, edit, upload
// ---------------------------------------------------------------------------------

async function applyText(text, files) {
  try {
    await openSession(files ? { toml: text, files } : { toml: text });
  } catch (error) {
    $("toml-error").textContent = error.line ? `line ${error.line}: ${error.message}` : error.message;
    if (error.line) {
      const area = $("toml"), lines = area.value.split("\n");
      const start = lines.slice(0, error.line - 1).join("\n").length + (error.line > 1 ? 1 : 0);
      area.focus();
      area.setSelectionRange(start, start + (lines[error.line - 1] || "").length);
    }
  }
}

async function upload(event) {
  const files = [...event.target.files];
  const toml = files.find((f) => f.name.endsWith(".toml"));
  const csvs = {};
  for (const f of files.filter((f) => f.name.toLowerCase().endsWith(".csv"))) csvs[f.name] = await f.text();
  const text = toml ? await toml.text() : $("toml").value;
  if (toml) $("toml").value = text;
  await applyText(text, Object.keys(csvs).length ? csvs : null);
  event.target.value = "";
}

function guard(fn) {
  return async (...args) => {
    try { showError(""); await fn(...args); } catch (error) { showError(error.message); }
  };
}

async function start() {
  const { scenarios, default: first } = await api("GET", "/api/scenarios");
  const select = $("scenario-select");
  select.replaceChildren(...scenarios.map((s) => el("option", { value: s.name, text: `${s.name}: ${s.title}` })));
  const wanted = new URLSearchParams(location.search).get("scenario") || first;
  select.value = wanted;
  await openSession({ scenario: wanted });
  select.addEventListener("change", guard(() => openSession({ scenario: select.value })));
  $("step").addEventListener("click", guard(() => { pause(); return step(1); }));
  $("run").addEventListener("click", () => (app.running ? pause() : runLoop()));
  $("reset").addEventListener("click", guard(async () => {
    pause();
    const data = await api("POST", `/api/sessions/${app.session}/reset`);
    afterChange(data);
  }));
  $("backward").addEventListener("click", guard(backward));
  $("quiz").addEventListener("click", guard(() => quiz("step")));
  $("quiz-forward").addEventListener("click", guard(() => quiz("forward")));
  $("apply").addEventListener("click", () => applyText($("toml").value));
  $("upload").addEventListener("change", upload);
  $("learning-rate").addEventListener("change", (e) => setSettings({ "train.learning_rate": Number(e.target.value) }));
  $("optimizer").addEventListener("change", (e) => setSettings({ "train.optimizer": e.target.value }));
  $("max-steps").addEventListener("change", (e) => setSettings({ "train.stop.max_steps": Number(e.target.value) }));
  $("show-terms").addEventListener("change", guard(refresh));
  $("contour-with").addEventListener("change", (e) => { app.second = e.target.value; app.contour = null; drawContour(); });
  let pending = null, sending = false;
  const live = async () => {  // one request in flight while a slider moves; the last value wins
    if (sending || pending === null) return;
    sending = true;
    const v = pending; pending = null;
    await setValue(app.selected, v);
    sending = false;
    live();
  };
  $("value-slider").addEventListener("input", (e) => { pending = Number(e.target.value); $("value-number").value = e.target.value; live(); });
  $("value-number").addEventListener("change", (e) => setValue(app.selected, Number(e.target.value)));
  $("value-trained").addEventListener("change", (e) => setTrained(app.selected, e.target.checked));
  document.body.dataset.ready = "true";
}

start().catch((error) => showError(error.message));
