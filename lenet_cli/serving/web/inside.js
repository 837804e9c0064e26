// The page's "Inside the network" view: as a digit is drawn, POST /explain answers with every layer's maps,
// FC1/FC2, the scores and the attribution; they are drawn here as small images and bars. Hovering a map shows
// the kernel that made it; clicking a score shows why that class. Served as /inside.js; it adds its own card.
"use strict";
(() => {
  const pad = document.getElementById("pad");
  const MAPS = ["Conv1", "Pool1", "Conv2", "Pool2"];
  const SIZE = { Conv1: 56, Pool1: 56, Conv2: 40, Pool2: 40 };  // CSS pixels a map is shown at
  const NOTE = { Conv1: "after ReLU", Pool1: "2×2 max", Conv2: "after ReLU", Pool2: "2×2 max" };
  const view = { open: false, timer: null, busy: false, again: false, changed: 0, target: null, last: null, kernels: null, kernelsFor: null };
  window.insideTimes = [];  // ms from a drawing's change to its maps on screen, newest last (for bench and tests)
  window.insidePhases = [];  // each update's ms: [waiting for the one in flight, encoding, the server, parsing, painting]

  const style = document.createElement("style");
  style.textContent = `
    #inside { flex: 1 1 100%; }
    body.number #inside { display: none; }
    #inside summary { cursor: pointer; font-weight: 600; }
    #inside canvas { image-rendering: pixelated; background: black; border-radius: 2px; display: block; }
    .inside-top { display: flex; flex-wrap: wrap; gap: 18px; margin-top: 10px; align-items: flex-start; }
    .inside-top figure { margin: 0; }
    .why-wrap { position: relative; width: 140px; height: 140px; }
    .why-wrap canvas { position: absolute; inset: 0; width: 140px; height: 140px; }
    #inside-why { background: transparent !important; }
    #inside-scores { min-width: 220px; flex: 1 1 220px; }
    #inside-scores button { display: grid; grid-template-columns: 1.6em 1fr 3.6em; gap: 6px; width: 100%; padding: 1px 4px; margin: 1px 0; border-color: transparent; font-size: 13px; align-items: center; }
    #inside-scores button.why { border-color: var(--accent); }
    #inside-scores .track { background: #eef0f3; height: 10px; border-radius: 3px; overflow: hidden; }
    #inside-scores .fill { display: block; background: #9aa5b5; height: 100%; }
    #inside-scores button.answer .fill { background: var(--accent); }
    #inside-kernel { min-width: 200px; flex: 1 1 200px; }
    #kernel-cells { display: flex; flex-wrap: wrap; gap: 4px; margin-top: 4px; }
    #kernel-cells canvas { width: 40px; height: 40px; background: white; }
    .inside-layer { margin-top: 10px; }
    .inside-maps { display: flex; flex-wrap: wrap; gap: 4px; margin-top: 2px; }
    .inside-maps canvas { cursor: help; outline: 2px solid transparent; }
    .inside-maps canvas:hover { outline-color: var(--accent); }
    .inside-bars { width: 100%; max-width: 720px; height: 48px; background: #fafafa !important; }`;
  document.head.append(style);

  const card = document.createElement("section");
  card.id = "inside"; card.className = "card";
  card.innerHTML = `<details id="inside-open"><summary>Inside the network <span class="caption" id="inside-status">open it, then draw: each layer updates as you go</span></summary>
    <div class="inside-top">
      <figure><div class="why-wrap"><canvas id="inside-input" width="28" height="28"></canvas><canvas id="inside-why" width="28" height="28"></canvas></div>
        <figcaption class="caption" id="why-caption">red pushed the score up, blue down</figcaption></figure>
      <div id="inside-scores"></div>
      <div id="inside-kernel"><div class="caption" id="kernel-caption">hover a map to see its kernel</div><div id="kernel-cells"></div></div>
    </div>
    <div id="inside-layers"></div></details>`;
  document.querySelector(".panels").append(card);
  const layers = card.querySelector("#inside-layers");
  for (const [name, count, side] of [["Conv1", 6, 28], ["Pool1", 6, 14], ["Conv2", 16, 10], ["Pool2", 16, 5]]) {
    const row = document.createElement("div"); row.className = "inside-layer";
    row.innerHTML = `<div class="caption"><b>${name}</b> ${count}×${side}×${side} · ${NOTE[name]}</div><div class="inside-maps"></div>`;
    for (let index = 0; index < count; index += 1) {
      const canvas = document.createElement("canvas");
      canvas.width = side; canvas.height = side; canvas.dataset.layer = name; canvas.dataset.index = index;
      canvas.style.width = canvas.style.height = SIZE[name] + "px";
      canvas.addEventListener("mouseenter", () => showKernel(name, index));
      row.lastElementChild.append(canvas);
    }
    layers.append(row);
  }
  for (const [name, count] of [["FC1", 120], ["FC2", 84]]) {
    const row = document.createElement("div"); row.className = "inside-layer";
    row.innerHTML = `<div class="caption"><b>${name}</b> ${count} · after ReLU</div><canvas class="inside-bars" data-layer="${name}" width="720" height="48"></canvas>`;
    layers.append(row);
  }

  card.querySelector("#inside-open").addEventListener("toggle", (event) => {
    view.open = event.target.open;
    if (view.open) schedule(0);
  });
  pad.addEventListener("pointermove", (event) => { if (event.buttons) schedule(0); });  // one request in flight: no debounce
  pad.addEventListener("pointerup", () => schedule(0));
  document.getElementById("file").addEventListener("change", () => schedule(300));
  document.getElementById("clear").addEventListener("click", reset);
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") reset(); });

  function schedule(delay) {  // one request at a time; the newest drawing is encoded and sent when it can go
    if (!view.open || document.body.classList.contains("number")) return;  // hidden while reading numbers
    view.changed = performance.now();
    if (view.busy) { view.again = true; return; }  // encoding now would only slow the answer in flight
    clearTimeout(view.timer);
    view.timer = setTimeout(send, delay);
  }
  function send() {
    const changed = view.changed, started = performance.now();
    view.timer = null; view.busy = true; view.again = false;
    ask(encoded(), changed, started);
  }
  function encoded() {  // the drawing as a PNG, at once: toBlob waits for the page to be idle, which a pen never lets it be
    const bytes = atob(pad.toDataURL("image/png").split(",")[1]), data = new Uint8Array(bytes.length);
    for (let i = 0; i < bytes.length; i += 1) data[i] = bytes.charCodeAt(i);
    return new Blob([data], { type: "image/png" });
  }
  async function ask(blob, changed, started) {
    const sent = performance.now();
    try {
      // gradient x input: next to occlusion (the CLI's default) in faithfulness, and fast enough to follow a pen
      const query = view.target === null ? "" : `&target=${view.target}`;
      const response = await fetch("explain?method=gradient" + query, { method: "POST", body: blob, headers: { "Content-Type": "image/png" } });
      const answered = performance.now();
      const answer = await response.json();
      const parsed = performance.now();
      if (!response.ok) throw new Error(answer.error || response.statusText);
      show(answer.explanations[0], answer.checkpoint);
      const painted = performance.now();
      window.insideTimes.push(painted - changed);
      window.insidePhases.push([started - changed, sent - started, answered - sent, parsed - answered, painted - parsed]);
      status(`updated in ${Math.round(painted - changed)} ms after your last stroke`);
    } catch (error) {
      status(error.message);
    } finally {
      view.busy = false;
      if (view.again) send();
    }
  }
  function status(text) { document.getElementById("inside-status").textContent = text; }
  function reset() {
    view.last = null; view.target = null;
    for (const canvas of card.querySelectorAll("canvas")) canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    document.getElementById("inside-scores").textContent = "";
    status("draw a digit");
  }

  function show(explanation, checkpoint) {
    view.last = explanation;
    if (view.kernelsFor !== checkpoint) { view.kernels = null; view.kernelsFor = checkpoint; }
    const layer = Object.fromEntries(explanation.layers.map((entry) => [entry.name, entry.values]));
    for (const name of MAPS) {
      const maps = layer[name], top = Math.max(1e-6, ...maps.flat(2));
      card.querySelectorAll(`canvas[data-layer="${name}"]`).forEach((canvas, index) => paint(canvas, maps[index], (v) => heat(v / top)));
    }
    for (const name of ["FC1", "FC2"]) bars(card.querySelector(`canvas[data-layer="${name}"]`), layer[name]);
    paint(document.getElementById("inside-input"), layer.Input[0], (v) => [255 * v, 255 * v, 255 * v, 255]);
    scores(explanation);
    why(explanation);
  }
  function paint(canvas, rows, color) {
    const pen = canvas.getContext("2d"), image = pen.createImageData(canvas.width, canvas.height);
    rows.forEach((row, y) => row.forEach((value, x) => image.data.set(color(value), 4 * (y * canvas.width + x))));
    pen.putImageData(image, 0, 0);
  }
  function heat(t) {  // black, purple, orange, pale yellow: magma-like, as the pictures of lenet explain
    const stops = [[0, 0, 4], [120, 28, 109], [241, 96, 93], [252, 253, 191]];
    const at = Math.min(0.999, Math.max(0, t)) * 3, low = Math.floor(at), mix = at - low;
    return [...stops[low].map((value, i) => value + mix * (stops[low + 1][i] - value)), 255];
  }
  function signed(t) {  // blue (down) through transparent to red (up)
    const a = Math.min(1, Math.abs(t));
    return t >= 0 ? [230, 30, 30, 230 * a] : [40, 80, 240, 230 * a];
  }
  function bars(canvas, values) {
    const pen = canvas.getContext("2d"), top = Math.max(1e-6, ...values), width = canvas.width / values.length;
    pen.clearRect(0, 0, canvas.width, canvas.height); pen.fillStyle = "#7c3aed";
    values.forEach((value, i) => { const h = (canvas.height - 2) * value / top; pen.fillRect(i * width, canvas.height - h, Math.max(1, width - 1), h); });
  }
  function scores(explanation) {
    const box = document.getElementById("inside-scores"); box.textContent = "";
    const shown = view.target === null ? explanation.label : view.target;
    explanation.probabilities.forEach((probability, label) => {
      const button = document.createElement("button");
      button.type = "button"; button.dataset.label = label; button.title = `why ${label}?`;
      button.className = (label === explanation.label ? "answer " : "") + (label === shown ? "why" : "");
      button.innerHTML = `<span>${label}</span><span class="track"><span class="fill" style="width:${(100 * probability).toFixed(1)}%"></span></span><span class="num">${(100 * probability).toFixed(1)}%</span>`;
      button.addEventListener("click", () => choose(label));
      box.append(button);
    });
  }
  function choose(label) {  // why this class: shown at once if the answer holds it, else asked for
    view.target = label === view.last?.label ? null : label;
    if (view.last && String(label) in view.last.attribution.classes) { scores(view.last); why(view.last); } else schedule(0);
  }
  function why(explanation) {
    const label = view.target === null ? explanation.label : view.target;
    const map = explanation.attribution.classes[String(label)];
    if (!map) return;
    const strength = Math.max(1e-9, ...map.flat().map(Math.abs));
    paint(document.getElementById("inside-why"), map, (v) => signed(v / strength));
    const kind = label === explanation.label ? "the answer" : label === explanation.runner_up.label ? "the runner-up" : "clicked";
    document.getElementById("why-caption").textContent = `why ${label} (${kind}): red pushed it up, blue down`;
  }

  async function showKernel(name, index) {  // a pool map has no kernel of its own: it shows its conv map's
    if (!view.kernels) view.kernels = await (await fetch("explain/kernels")).json();
    const conv = name.replace("Pool", "Conv"), weights = view.kernels[conv].values[index];
    const cells = document.getElementById("kernel-cells"); cells.textContent = "";
    const strength = Math.max(1e-9, ...weights.flat(2).map(Math.abs));
    for (const slice of weights) {
      const canvas = document.createElement("canvas"); canvas.width = canvas.height = 5;
      paint(canvas, slice, (v) => { const [r, g, b, a] = signed(v / strength); return [r, g, b, a]; });
      cells.append(canvas);
    }
    const from = conv === "Conv1" ? "the input" : "each of Pool1's 6 maps";
    const pooled = name === conv ? "" : ` (${name} map ${index} is the 2×2 max of it)`;
    document.getElementById("kernel-caption").textContent = `${conv} map ${index}'s kernel: 5×5 over ${from}, red adds, blue subtracts${pooled}`;
  }
})();
