// Point editor: place a character's face points by hand (drawings, mascots, animals, a face the
// detector misread). The photo is shown with the points to drag, pre-placed from the server's
// first guess; every move refits the face mesh (drawn over the photo) and, once the points rest,
// a short test animation (open, close, blink) plays beside it. Save sends the points to
// PUT /v1/characters/{id}/rig (the same format as `talkie rig --points`). Errors name the points
// at fault, which turn red.
//
// Keyboard: Tab to the list, pick a point, arrow keys move it (Shift: 10 pixels); Delete removes
// an optional point. Optional points not placed yet (the opening of a mouth drawn open, say)
// are added next to the mouth when picked in the list.
//
// For tests: window.talkie.rigEditor exposes the state (points, lastMesh, frames, error).

const MESH_DELAY_MS = 60; // refit the mesh at most this often while dragging
const FRAMES_DELAY_MS = 700; // the test animation waits for the points to rest
const FRAME_MS = 450;
const HIT_RADIUS = 14; // pixels on screen

export class RigEditor {
  constructor({ root, api, onSaved, onClose }) {
    this.root = root;
    this.api = api; // (path, {method, json}) -> parsed JSON; throws Error with .status, .body
    this.onSaved = onSaved;
    this.onClose = onClose;
    this.canvas = root.querySelector("canvas.rig-photo");
    this.ctx = this.canvas.getContext("2d");
    this.list = root.querySelector(".rig-points");
    this.hint = root.querySelector(".rig-hint");
    this.status = root.querySelector(".rig-status");
    this.anim = root.querySelector("img.rig-anim");
    this.animLabel = root.querySelector(".rig-anim-label");
    this.saveButton = root.querySelector(".rig-save");
    this.showMesh = root.querySelector(".rig-show-mesh");
    this.state = { characterId: null, points: {}, info: null, lastMesh: null, frames: [], error: null, bad: [], busy: false, saved: false };
    this.selected = null;
    this.dragging = null;
    this.image = null;
    this.meshTimer = null;
    this.framesTimer = null;
    this.animTimer = null;
    this.seq = 0;
    this._bind();
  }

  async open(character) {
    this.close(false);
    this.state = { characterId: character.id, points: {}, info: null, lastMesh: null, frames: [], error: null, bad: [], busy: false, saved: false };
    this.root.hidden = false;
    this.root.querySelector(".rig-title").textContent = `Place ${character.name}'s face points`;
    this.setStatus(character.rig_problem ? `${character.rig_problem}.` : "Loading the photo…");
    const info = await this.api(`/v1/characters/${encodeURIComponent(character.id)}/rig`);
    this.state.info = info;
    for (const [name, p] of Object.entries(info.points)) this.state.points[name] = { x: p.x, y: p.y };
    this.image = await this._loadImage(info.image_url);
    this._layout();
    this._renderList();
    this.select(info.point_info[0].name);
    const how = info.source === "guess"
      ? (info.guess === "proportions" ? "No face features were found: the points are a rough start." : "The points are a first guess.")
      : "These are the character's current points.";
    this.setStatus(`${how} Drag each point onto its place, then save.`);
    this.draw();
    this.refit({ frames: true });
    this.root.querySelector(".rig-photo").focus();
  }

  close(notify = true) {
    clearTimeout(this.meshTimer);
    clearTimeout(this.framesTimer);
    clearInterval(this.animTimer);
    this.seq += 1;
    this.root.hidden = true;
    if (notify && this.onClose) this.onClose();
  }

  select(name) {
    if (!this.state.points[name]) this._add(name);
    this.selected = name;
    const info = this.state.info.point_info.find((p) => p.name === name);
    this.hint.textContent = info ? `${label(name)}: ${info.where}${info.required ? "" : " (optional)"}` : "";
    this.list.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.point === name)));
    this.draw();
  }

  _add(name) {
    // A new optional point starts near where it belongs: by the mouth, the eyes or the face.
    const p = this.state.points;
    const mid = (a, b) => ({ x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 });
    const mouth = mid(p.mouth_right, p.mouth_left);
    const eyes = mid(mid(p.right_eye_outer, p.right_eye_inner), mid(p.left_eye_inner, p.left_eye_outer));
    const d = Math.hypot(p.left_eye_outer.x - p.right_eye_outer.x, p.left_eye_outer.y - p.right_eye_outer.y) / 2;
    const places = {
      mouth_open_top: { x: mouth.x, y: mouth.y + 0.02 * d },
      mouth_open_bottom: { x: mouth.x, y: mouth.y + 0.12 * d },
      upper_lip: { x: mouth.x, y: mouth.y - 0.1 * d },
      lower_lip: { x: mouth.x, y: mouth.y + 0.2 * d },
      forehead: { x: eyes.x, y: eyes.y - 0.9 * d },
      face_right: { x: eyes.x - 1.1 * d, y: eyes.y + 0.2 * d },
      face_left: { x: eyes.x + 1.1 * d, y: eyes.y + 0.2 * d },
    };
    for (const side of ["right", "left"]) {
      const c = mid(p[`${side}_eye_outer`], p[`${side}_eye_inner`]);
      places[`${side}_eye_top`] = { x: c.x, y: c.y - 0.12 * d };
      places[`${side}_eye_bottom`] = { x: c.x, y: c.y + 0.12 * d };
    }
    this._moveTo(name, places[name] || mouth);
    this._renderList();
  }

  _remove(name) {
    const info = this.state.info.point_info.find((q) => q.name === name);
    if (!info || info.required || !this.state.points[name]) return;
    delete this.state.points[name];
    this.selected = null;
    this._renderList();
    this.draw();
    this.refit({ frames: true });
  }

  setStatus(text, kind = "") {
    this.status.textContent = text;
    this.status.className = `rig-status status ${kind}`;
  }

  // ------------------------------------------------------------------ drawing

  _layout() {
    const maxW = Math.min(720, this.root.querySelector(".rig-stage").clientWidth || 720);
    const scale = Math.min(1, maxW / this.image.width, 560 / this.image.height);
    this.scale = scale;
    this.canvas.width = Math.round(this.image.width * scale);
    this.canvas.height = Math.round(this.image.height * scale);
  }

  toScreen(p) { return { x: p.x * this.scale, y: p.y * this.scale }; }

  draw() {
    if (!this.image) return;
    const { ctx } = this;
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.drawImage(this.image, 0, 0, this.canvas.width, this.canvas.height);
    const mesh = this.state.lastMesh;
    if (mesh && this.showMesh.checked) {
      const pts = mesh.map(([x, y]) => [x * this.scale, y * this.scale]);
      ctx.lineWidth = 0.6;
      ctx.strokeStyle = "rgba(120, 200, 255, 0.55)";
      ctx.beginPath();
      for (const [a, b, c] of this.state.info.triangles) {
        ctx.moveTo(pts[a][0], pts[a][1]);
        ctx.lineTo(pts[b][0], pts[b][1]);
        ctx.lineTo(pts[c][0], pts[c][1]);
        ctx.closePath();
      }
      ctx.stroke();
      ctx.lineWidth = 1.6;
      ctx.strokeStyle = "rgba(255, 214, 64, 0.95)";
      for (const outline of Object.values(this.state.info.outlines)) {
        ctx.beginPath();
        outline.forEach((i, k) => (k ? ctx.lineTo(pts[i][0], pts[i][1]) : ctx.moveTo(pts[i][0], pts[i][1])));
        ctx.stroke();
      }
    }
    for (const [name, p] of Object.entries(this.state.points)) {
      const s = this.toScreen(p);
      const bad = this.state.bad.includes(name);
      const info = this.state.info.point_info.find((q) => q.name === name);
      ctx.beginPath();
      ctx.arc(s.x, s.y, name === this.selected ? 7 : 5, 0, Math.PI * 2);
      ctx.fillStyle = bad ? "#e0303c" : info?.required ? "#6b4de6" : "#1f9d61";
      ctx.fill();
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#ffffff";
      ctx.stroke();
    }
  }

  _renderList() {
    this.list.replaceChildren();
    for (const info of this.state.info.point_info) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.point = info.name;
      const placed = Boolean(this.state.points[info.name]);
      b.textContent = label(info.name) + (info.required ? "" : placed ? " (optional)" : " (add)");
      b.title = info.where;
      b.addEventListener("click", () => this.select(info.name));
      li.append(b);
      this.list.append(li);
    }
  }

  // ------------------------------------------------------------------ interaction

  _bind() {
    const c = this.canvas;
    c.addEventListener("pointerdown", (e) => {
      const hit = this._hit(e);
      if (!hit) return;
      this.dragging = hit;
      this.select(hit);
      c.setPointerCapture(e.pointerId);
      e.preventDefault();
    });
    c.addEventListener("pointermove", (e) => {
      if (!this.dragging) {
        c.style.cursor = this._hit(e) ? "grab" : "default";
        return;
      }
      this._moveTo(this.dragging, this._imagePoint(e));
    });
    const end = () => {
      if (!this.dragging) return;
      this.dragging = null;
      this.refit({ frames: true });
    };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    c.addEventListener("keydown", (e) => this._key(e));
    this.root.querySelector(".rig-points").addEventListener("keydown", (e) => this._key(e));
    this.saveButton.addEventListener("click", () => this.save());
    this.root.querySelector(".rig-cancel").addEventListener("click", () => this.close());
    this.showMesh.addEventListener("change", () => this.draw());
    window.addEventListener("resize", () => { if (!this.root.hidden && this.image) { this._layout(); this.draw(); } });
  }

  _key(e) {
    if ((e.key === "Delete" || e.key === "Backspace") && this.selected) {
      e.preventDefault();
      this._remove(this.selected);
      return;
    }
    const step = e.shiftKey ? 10 : 1;
    const d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[e.key];
    if (!d || !this.selected) return;
    e.preventDefault();
    const p = this.state.points[this.selected];
    this._moveTo(this.selected, { x: p.x + d[0], y: p.y + d[1] });
    clearTimeout(this.keyTimer);
    this.keyTimer = setTimeout(() => this.refit({ frames: true }), 250);
  }

  _imagePoint(e) {
    const r = this.canvas.getBoundingClientRect();
    return { x: (e.clientX - r.left) * (this.canvas.width / r.width) / this.scale, y: (e.clientY - r.top) * (this.canvas.height / r.height) / this.scale };
  }

  _hit(e) {
    const p = this._imagePoint(e);
    let best = null;
    let bestD = HIT_RADIUS / this.scale;
    for (const [name, q] of Object.entries(this.state.points)) {
      const d = Math.hypot(q.x - p.x, q.y - p.y);
      if (d < bestD) { best = name; bestD = d; }
    }
    return best;
  }

  _moveTo(name, p) {
    const w = this.state.info.image_width;
    const h = this.state.info.image_height;
    this.state.points[name] = { x: Math.min(Math.max(p.x, 0), w), y: Math.min(Math.max(p.y, 0), h) };
    this.state.saved = false;
    this.draw();
    if (!this.meshTimer) {
      this.meshTimer = setTimeout(() => { this.meshTimer = null; this.refit({ frames: false }); }, MESH_DELAY_MS);
    }
  }

  // ------------------------------------------------------------------ server

  _body() {
    const points = {};
    for (const [name, p] of Object.entries(this.state.points)) points[name] = { x: round(p.x), y: round(p.y) };
    return { points };
  }

  async refit({ frames }) {
    const seq = ++this.seq;
    const path = `/v1/characters/${encodeURIComponent(this.state.characterId)}/rig/preview?frames=false`;
    try {
      const out = await this.api(path, { method: "POST", json: this._body() });
      if (seq !== this.seq) return;
      this.state.lastMesh = out.landmarks;
      this._clearError();
    } catch (err) {
      if (seq === this.seq) this._error(err);
      return;
    }
    this.draw();
    if (frames) {
      clearTimeout(this.framesTimer);
      this.framesTimer = setTimeout(() => this._animate(), FRAMES_DELAY_MS);
    }
  }

  async _animate() {
    const seq = this.seq;
    this.animLabel.textContent = "Making the test animation…";
    this.state.busy = true;
    try {
      const path = `/v1/characters/${encodeURIComponent(this.state.characterId)}/rig/preview`;
      const out = await this.api(path, { method: "POST", json: this._body() });
      if (seq !== this.seq) return;
      this.state.frames = out.frame_names;
      this._play(out.frames, out.frame_names);
    } catch (err) {
      if (seq === this.seq) this._error(err);
    } finally {
      this.state.busy = false;
    }
  }

  _play(frames, names) {
    clearInterval(this.animTimer);
    let k = 0;
    const show = () => {
      this.anim.src = frames[k];
      this.anim.alt = `Test animation: ${names[k]}`;
      this.animLabel.textContent = names[k];
      k = (k + 1) % frames.length;
    };
    show();
    this.animTimer = setInterval(show, FRAME_MS);
  }

  async save() {
    this.saveButton.disabled = true;
    this.setStatus("Saving and building the character…");
    try {
      const path = `/v1/characters/${encodeURIComponent(this.state.characterId)}/rig`;
      const character = await this.api(path, { method: "PUT", json: this._body() });
      this.state.saved = true;
      this.setStatus(`${character.name} is ready.`, "ok");
      this.close(false);
      if (this.onSaved) this.onSaved(character);
    } catch (err) {
      this._error(err);
    } finally {
      this.saveButton.disabled = false;
    }
  }

  _error(err) {
    const body = err.body?.error;
    this.state.error = body?.message || err.message;
    this.state.bad = body?.points || [];
    this.setStatus(`These points cannot be a face: ${this.state.error}`, "error");
    this.saveButton.disabled = false;
    this.draw();
  }

  _clearError() {
    if (!this.state.error) return;
    this.state.error = null;
    this.state.bad = [];
    this.setStatus("Looks like a face. Save when the points are in place.");
  }

  async _loadImage(url) {
    const res = await this.api(url, { raw: true });
    const blob = await res.blob();
    return await createImageBitmap(blob);
  }
}

function label(name) {
  return name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

function round(v) {
  return Math.round(v * 100) / 100;
}
