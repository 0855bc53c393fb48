// mnist-serve's page: draw (or drop a picture), then show what the model sees, says, and why.
// One request per stroke; a response that arrives after a newer request was made is dropped.
"use strict";

const $ = (id) => document.getElementById(id);
const SIDE = 28; // MNIST images are SIDE × SIDE
const CELL = 8; // a pixel drawn large: 7 × 7 and a 1 px gap
const LINE = 22; // stroke width on the 280 × 280 pad

const state = {
  model: null, // GET /api/model
  strokes: [], // each a list of {x, y} on the pad
  drawing: false,
  picture: null, // a dropped or chosen image, drawn on the pad
  chosen: null, // the class whose "why" to show; null: the top one
  result: null, // the last POST /api/explain answer shown
  showTemplate: false,
  sent: 0, // requests made; only the newest one's answer is shown
};

// ---- the API ----

async function call(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

async function explain(picture, label) {
  const ticket = ++state.sent;
  document.body.dataset.state = "loading";
  try {
    const body = { ...picture };
    if (state.chosen !== null) body.class = state.chosen;
    const result = await call("/api/explain", body);
    if (ticket !== state.sent) return;
    state.result = result;
    status(label || "");
    show();
  } catch (error) {
    if (ticket !== state.sent) return;
    state.result = null;
    status(error.message, true);
    show();
  }
}

function status(text, error = false) {
  const line = $("status");
  line.textContent = text || "Draw a digit with a mouse, a finger or a pen, or drop a picture on the pad.";
  line.classList.toggle("error", error);
}

// ---- the pad: pointer events cover mouse, touch and pen ----

const pad = $("pad");
const pen = pad.getContext("2d", { willReadFrequently: true });

function point(event) {
  const box = pad.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) * pad.width) / box.width,
    y: ((event.clientY - box.top) * pad.height) / box.height,
  };
}

function segment(from, to) {
  pen.strokeStyle = "#000";
  pen.lineWidth = LINE;
  pen.lineCap = "round";
  pen.lineJoin = "round";
  pen.beginPath();
  pen.moveTo(from.x, from.y);
  pen.lineTo(to.x + 0.01, to.y);
  pen.stroke();
}

function repaintPad() {
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, pad.width, pad.height);
  if (state.picture) {
    const { width, height } = state.picture;
    const scale = Math.min(pad.width / width, pad.height / height);
    const w = width * scale, h = height * scale;
    pen.drawImage(state.picture, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
  }
  for (const stroke of state.strokes) {
    stroke.forEach((p, i) => segment(stroke[Math.max(i - 1, 0)], p));
  }
}

pad.addEventListener("pointerdown", (event) => {
  if (event.pointerType === "mouse" && event.button !== 0) return;
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  if (state.picture) {
    state.picture = null; // drawing starts a new digit
    repaintPad();
  }
  const p = point(event);
  state.strokes.push([p]);
  state.drawing = true;
  segment(p, p);
});

pad.addEventListener("pointermove", (event) => {
  if (!state.drawing) return;
  const stroke = state.strokes[state.strokes.length - 1];
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of events.length ? events : [event]) {
    const p = point(e);
    segment(stroke[stroke.length - 1], p);
    stroke.push(p);
  }
});

function endStroke() {
  if (!state.drawing) return;
  state.drawing = false;
  explainPad();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function base64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function explainPad() {
  if (!state.strokes.length && !state.picture) return clearResult();
  const rgba = pen.getImageData(0, 0, pad.width, pad.height).data;
  const grey = new Uint8Array(pad.width * pad.height);
  for (let i = 0; i < grey.length; i++) grey[i] = rgba[4 * i]; // black ink on white: red = grey
  explain({ drawing: { width: pad.width, height: pad.height, grey: base64(grey) } });
}

function clearResult() {
  state.sent++; // an answer still on its way is not shown
  state.result = null;
  status("");
  show();
}

$("undo").addEventListener("click", () => {
  if (state.strokes.length) state.strokes.pop();
  else state.picture = null;
  repaintPad();
  explainPad();
});

$("clear").addEventListener("click", () => {
  state.strokes = [];
  state.picture = null;
  state.chosen = null;
  repaintPad();
  clearResult();
});

// ---- a picture file, chosen or dropped: read by the server as mnist-predict reads it ----

async function openFile(file) {
  if (!file) return;
  const bytes = new Uint8Array(await file.arrayBuffer());
  state.strokes = [];
  try {
    state.picture = await createImageBitmap(file);
  } catch {
    state.picture = null; // not a picture the browser shows; the server says why
  }
  repaintPad();
  explain({ image: base64(bytes), name: file.name }, file.name);
}

$("file").addEventListener("change", (event) => {
  openFile(event.target.files[0]);
  event.target.value = "";
});
const drop = $("draw-panel");
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("dropping");
});
drop.addEventListener("dragleave", () => drop.classList.remove("dropping"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("dropping");
  openFile(event.dataTransfer.files[0]);
});

// ---- drawing 28 × 28 images large ----

function paintGrid(canvas, colour, gap) {
  const g = canvas.getContext("2d");
  g.fillStyle = gap;
  g.fillRect(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < SIDE * SIDE; i++) {
    g.fillStyle = colour(i);
    g.fillRect((i % SIDE) * CELL + 1, Math.floor(i / SIDE) * CELL + 1, CELL - 1, CELL - 1);
  }
}

const grey = (v) => `rgb(${v},${v},${v})`;

function diverging(t) {
  // t in [-1, 1]: blue (-1), white (0), red (+1)
  const [end, white] = [t < 0 ? [33, 102, 172] : [178, 24, 43], [247, 247, 247]];
  const a = Math.min(Math.abs(t), 1);
  const c = white.map((w, j) => Math.round(w + (end[j] - w) * a));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function thumbnail(pixels) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = SIDE;
  const g = canvas.getContext("2d");
  const image = g.createImageData(SIDE, SIDE);
  pixels.forEach((v, i) => image.data.set([v, v, v, 255], 4 * i));
  g.putImageData(image, 0, 0);
  return canvas;
}

// ---- showing an answer ----

const fmt = (v, digits = 3) => (v < 0 ? "−" : "") + Math.abs(v).toFixed(digits);
const name = (k) => state.model.class_names[k];
const sub = (k) => String(k).replace(/\d/g, (d) => "₀₁₂₃₄₅₆₇₈₉"[d]);

function show() {
  if (!state.model) return;
  const r = state.result;
  document.body.dataset.state = r ? "shown" : "empty";
  showSees(r);
  showSays(r);
  showWhy(r);
}

function showSees(r) {
  paintGrid($("sees"), r ? (i) => grey(r.pixels[i]) : () => "#000", "#3a3f45");
}

function showSays(r) {
  $("top-class").textContent = r ? name(r.top) : "";
  $("top-value").textContent = r
    ? `${state.model.value_name} ${fmt(r.output[r.top], 4)}`
    : "no digit yet";
  const bars = $("bars");
  bars.replaceChildren();
  if (!state.model) return;
  state.model.class_names.forEach((label, k) => {
    const value = r ? r.output[k] : 0;
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.k = k;
    button.disabled = !r;
    button.setAttribute("aria-pressed", String(!!r && r.class === k));
    button.className = r && r.top === k ? "top" : "";
    button.innerHTML = '<span class="label"></span><span class="track"><span class="fill"></span></span><span class="value"></span>';
    button.querySelector(".label").textContent = label;
    button.querySelector(".fill").style.width = `${100 * Math.min(Math.max(value, 0), 1)}%`;
    button.querySelector(".value").textContent = r ? fmt(value, 3) : "";
    button.addEventListener("click", () => choose(k));
    const item = document.createElement("li");
    item.append(button);
    bars.append(item);
  });
}

function choose(k) {
  if (!state.result) return;
  state.chosen = state.chosen === k ? null : k; // a second click goes back to the top class
  explain({ pixels: state.result.pixels }, $("status").textContent);
}

function showWhy(r) {
  const heat = $("heat");
  const exact = state.model && state.model.exact;
  const k = r ? r.class : null;
  const kk = r ? sub(k) : "ₖ";
  $("template-label").textContent = exact
    ? `show the class template W${kk} itself`
    : `show the local template ∂z${kk}/∂x`;
  if (!r) {
    paintGrid(heat, () => "#f7f7f7", "#e3e6ea");
    heat.dataset.values = "";
    $("why-class").textContent = "";
    $("scale-low").textContent = $("scale-high").textContent = "";
    $("legend").textContent = "";
    return;
  }
  const values = state.showTemplate ? r.gradient : r.contributions;
  let m = 1e-12;
  for (const v of values) m = Math.max(m, Math.abs(v));
  paintGrid(heat, (i) => diverging(values[i] / m), "#e3e6ea");
  heat.dataset.values = JSON.stringify(values);
  heat.dataset.what = state.showTemplate ? "gradient" : "contributions";
  $("why-class").textContent = `is it ${name(k)}?`;
  $("scale-low").textContent = fmt(-m, 3);
  $("scale-high").textContent = fmt(m, 3);
  legend(r, k, values);
}

function legend(r, k, values) {
  const total = r.contributions.reduce((a, b) => a + b, 0);
  const z = r.logits[k];
  const n = (v, id) => `<span class="num" id="${id}" data-value="${v}">${fmt(v)}</span>`;
  let text;
  if (state.showTemplate) {
    text = r.exact
      ? `W${sub(k)}, the weights of class ${name(k)}: an inked pixel adds its weight to z${sub(k)} (red raises it, blue lowers it).`
      : `∂z${sub(k)}/∂x, by the model's own backward pass: how z${sub(k)} would move if a pixel got more ink.`;
  } else if (r.exact) {
    text = `Exact: z${sub(k)} = Σ W${sub(k)}ⱼ xⱼ + b${sub(k)}, so each pixel's share is W${sub(k)}ⱼ xⱼ. ` +
      `Red pixels push towards ${name(k)}, blue away. The map sums to ${n(total, "map-sum")}; ` +
      `with b${sub(k)} = ${n(r.rest, "rest")} that is the logit z${sub(k)} = ${n(z, "logit")}.`;
  } else {
    text = `Gradient × input: each pixel is ∂z${sub(k)}/∂xⱼ · xⱼ, computed by the model's own ` +
      `hand-written backward pass. Red pushes towards ${name(k)}, blue away. The map sums to ` +
      `${n(total, "map-sum")}; the logit z${sub(k)} is ${n(z, "logit")}; the rest, ` +
      `${n(r.rest, "rest")}, is what the biases and the non-linearities add.`;
  }
  $("legend").innerHTML = text;
  $("legend").dataset.k = k;
}

$("template").addEventListener("change", (event) => {
  state.showTemplate = event.target.checked;
  showWhy(state.result);
});

$("heat").addEventListener("pointermove", (event) => {
  const r = state.result;
  if (!r) return;
  const box = event.currentTarget.getBoundingClientRect();
  const col = Math.min(SIDE - 1, Math.floor(((event.clientX - box.left) / box.width) * SIDE));
  const row = Math.min(SIDE - 1, Math.floor(((event.clientY - box.top) / box.height) * SIDE));
  const i = row * SIDE + col;
  const x = r.pixels[i] / 255;
  $("pixel").textContent = `row ${row}, column ${col}: ink ${fmt(x, 2)} × ` +
    `${r.exact ? "weight" : "gradient"} ${fmt(r.gradient[i], 4)} = ${fmt(r.contributions[i], 4)}`;
});

// ---- the confusion matrix and its test images ----

function showConfusion() {
  const C = state.model.confusion;
  const table = $("confusion");
  const off = Math.max(1, ...C.flatMap((row, i) => row.filter((_, j) => j !== i)));
  const diagonal = Math.max(1, ...C.map((row, i) => row[i]));
  const head = document.createElement("tr");
  head.innerHTML = '<th title="true \\ predicted">t\\p</th>';
  C.forEach((_, j) => head.insertAdjacentHTML("beforeend", `<th>${j}</th>`));
  table.replaceChildren(head);
  C.forEach((row, i) => {
    const tr = document.createElement("tr");
    tr.innerHTML = `<th>${i}</th>`;
    row.forEach((count, j) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = count;
      button.dataset.true = i;
      button.dataset.pred = j;
      button.title = `true ${name(i)}, predicted ${name(j)}: ${count}`;
      button.className = count ? "" : "zero";
      const a = i === j ? 0.15 + 0.5 * (count / diagonal) : Math.sqrt(count / off);
      button.style.background = count
        ? (i === j ? `rgba(46, 160, 67, ${a})` : `rgba(178, 24, 43, ${0.08 + 0.8 * a})`)
        : "#fafbfc";
      if (i !== j && count / off > 0.5) button.style.color = "#fff";
      button.addEventListener("click", () => openCell(i, j, button));
      const td = document.createElement("td");
      td.append(button);
      tr.append(td);
    });
    table.append(tr);
  });
}

async function openCell(i, j, button) {
  for (const b of $("confusion").querySelectorAll("button")) b.setAttribute("aria-pressed", "false");
  button.setAttribute("aria-pressed", "true");
  try {
    const cell = await call(`/api/cell?true=${i}&pred=${j}`);
    const shown = cell.images.length;
    const order = i === j ? "least confident first" : "most confident first";
    $("cell-title").textContent = `true ${name(i)}, predicted ${name(j)}: ${cell.count} images` +
      (shown < cell.count ? `, the ${shown} ${order}` : shown > 1 ? `, ${order}` : "");
    $("cell").replaceChildren(...cell.images.map((image) => {
      const b = document.createElement("button");
      b.type = "button";
      b.title = `test image ${image.index}: true ${name(image.label)}, predicted ${name(image.predicted)}`;
      b.dataset.index = image.index;
      b.append(thumbnail(image.pixels));
      b.insertAdjacentText("beforeend", `${name(image.label)}→${name(image.predicted)} ${fmt(image.value, 2)}`);
      b.addEventListener("click", () => {
        state.strokes = [];
        state.picture = null;
        repaintPad();
        explain({ pixels: image.pixels }, `test image ${image.index}: true ${name(image.label)}`);
      });
      return b;
    }));
  } catch (error) {
    $("cell-title").textContent = error.message;
  }
}

// ---- start ----

async function start() {
  repaintPad();
  try {
    state.model = await call("/api/model");
  } catch (error) {
    $("model").textContent = `cannot load the model: ${error.message}`;
    return;
  }
  const m = state.model;
  $("model").textContent = `${m.model} on ${m.dataset} · test accuracy ` +
    `${(100 * m.accuracy).toFixed(2)} % (${m.test_images.toLocaleString("en")} images) · ` +
    (m.exact ? "exact contributions" : "gradient × input");
  showConfusion();
  show();
  document.body.dataset.ready = "true";
}

start();
