// Three-plane slice viewer: renders CT + label overlay from uint8 volumes on canvases.
// Volumes are (z, y, x) in canonical LPS order: x runs to the patient's left, y to posterior,
// z to superior. Drawn as-is, axial and coronal put the patient's right on the screen's left
// (radiological convention); coronal/sagittal are flipped so superior is at the top.

export const LABEL_COLOURS = {
  1: { name: "Right lung", rgb: [0x2f, 0x8c, 0xff] },
  2: { name: "Left lung", rgb: [0x2e, 0xcc, 0x40] },
  3: { name: "Nodule", rgb: [0xff, 0x41, 0x36] },
};
export const LOW_CONFIDENCE = { name: "Low confidence", rgb: [0xff, 0xdc, 0x00] };

export const WINDOWS = {
  lung: { name: "Lung (L −600 / W 1500)", level: -600, width: 1500 },
  mediastinum: { name: "Mediastinum (L 40 / W 400)", level: 40, width: 400 },
  full: { name: "Full range", level: null, width: null },
};

const ORIENT = {  // screen edge letters: left, right, top, bottom
  axial: ["R", "L", "A", "P"],
  coronal: ["R", "L", "S", "I"],
  sagittal: ["A", "P", "S", "I"],
};

export class Viewer {
  constructor(container, panes, onChange) {
    this.panes = panes;  // {axial|coronal|sagittal: {canvas, slider, label, readout}}
    this.onChange = onChange || (() => {});
    this.display = { overlay: true, opacity: 0.45, crosshair: true, window: "lung",
                     visible: { 1: true, 2: true, 3: true, low: true } };
    this.vol = null;
    for (const [plane, pane] of Object.entries(panes)) this._wire(plane, pane);
    new ResizeObserver(() => this.render()).observe(container);
  }

  load(info, ct, labels) {
    const [nz, ny, nx] = info.shape_zyx;
    if (ct.length !== nz * ny * nx || labels.length !== ct.length) {
      throw new Error("viewer data is incomplete; reload the page");
    }
    this.vol = { info, ct, labels, nz, ny, nx, sz: info.spacing_zyx_mm[0], sy: info.spacing_zyx_mm[1],
                 sx: info.spacing_zyx_mm[2], lowBit: info.low_confidence_bit };
    this.pos = { z: info.start_zyx[0], y: info.start_zyx[1], x: info.start_zyx[2] };
    this.buffers = {};
    const max = { axial: nz - 1, coronal: ny - 1, sagittal: nx - 1 };
    for (const [plane, pane] of Object.entries(this.panes)) {
      pane.slider.max = String(max[plane]);
      pane.slider.hidden = max[plane] === 0;  // a single 2D slice has nothing to scroll
    }
    if (!info.is_hu) this.display.window = "full";
    this._buildLut();
    this.render();
  }

  set(option, value) {
    if (option === "visible") Object.assign(this.display.visible, value);
    else this.display[option] = value;
    if (option === "window") this._buildLut();
    this.render();
  }

  // Jump all panes to a voxel of the full-resolution grid (e.g. a nodule centroid).
  jumpToFullIndex(zyx) {
    const [tz, ty, tx] = this.vol.info.step_zyx;
    this.setPosition({ z: Math.round(zyx[0] / tz), y: Math.round(zyx[1] / ty), x: Math.round(zyx[2] / tx) });
  }

  setPosition(p) {
    const v = this.vol;
    const clamp = (a, n) => Math.max(0, Math.min(n - 1, a));
    this.pos = { z: clamp(p.z ?? this.pos.z, v.nz), y: clamp(p.y ?? this.pos.y, v.ny), x: clamp(p.x ?? this.pos.x, v.nx) };
    this.render();
    this.onChange(this.pos);
  }

  _buildLut() {
    const [lo, hi] = this.vol.info.value_range;
    const w = WINDOWS[this.display.window];
    const wlo = w.level === null ? lo : w.level - w.width / 2;
    const whi = w.level === null ? hi : w.level + w.width / 2;
    this.lut = new Uint8Array(256);
    for (let v = 0; v < 256; v++) {
      const value = lo + (v * (hi - lo)) / 255;
      this.lut[v] = Math.max(0, Math.min(255, Math.round(((value - wlo) / (whi - wlo)) * 255)));
    }
  }

  // ---- geometry of each plane --------------------------------------------------------------
  _plane(plane) {
    const v = this.vol, p = this.pos, row = v.nx, sl = v.ny * v.nx;
    if (plane === "axial") {
      return { w: v.nx, h: v.ny, wmm: v.nx * v.sx, hmm: v.ny * v.sy, index: p.z, count: v.nz,
               at: (i, j) => p.z * sl + j * row + i, cross: [p.x, p.y] };
    }
    if (plane === "coronal") {
      return { w: v.nx, h: v.nz, wmm: v.nx * v.sx, hmm: v.nz * v.sz, index: p.y, count: v.ny,
               at: (i, j) => (v.nz - 1 - j) * sl + p.y * row + i, cross: [p.x, v.nz - 1 - p.z] };
    }
    return { w: v.ny, h: v.nz, wmm: v.ny * v.sy, hmm: v.nz * v.sz, index: p.x, count: v.nx,
             at: (i, j) => (v.nz - 1 - j) * sl + i * row + p.x, cross: [p.y, v.nz - 1 - p.z] };
  }

  // Screen pixel -> voxel of this plane (null outside the image).
  _voxelAt(plane, ev) {
    const geo = this._plane(plane), fit = this.panes[plane].fit;
    if (!fit) return null;
    const r = this.panes[plane].canvas.getBoundingClientRect();
    const i = Math.floor(((ev.clientX - r.left - fit.ox) / fit.dw) * geo.w);
    const j = Math.floor(((ev.clientY - r.top - fit.oy) / fit.dh) * geo.h);
    if (i < 0 || j < 0 || i >= geo.w || j >= geo.h) return null;
    const z = this.vol.nz - 1 - j;
    if (plane === "axial") return { z: this.pos.z, y: j, x: i };
    if (plane === "coronal") return { z, y: this.pos.y, x: i };
    return { z, y: i, x: this.pos.x };
  }

  // ---- drawing ---------------------------------------------------------------------------------
  render() {
    if (!this.vol) return;
    for (const plane of Object.keys(this.panes)) {
      if (!this.panes[plane].canvas.closest("[hidden]")) this._draw(plane);
    }
  }

  _images(plane, geo) {
    let b = this.buffers[plane];
    if (!b || b.w !== geo.w || b.h !== geo.h) {
      const mk = () => { const c = document.createElement("canvas"); c.width = geo.w; c.height = geo.h; return c; };
      b = this.buffers[plane] = { w: geo.w, h: geo.h, base: mk(), over: mk() };
      b.baseData = b.base.getContext("2d").createImageData(geo.w, geo.h);
      b.overData = b.over.getContext("2d").createImageData(geo.w, geo.h);
    }
    const { ct, labels, lowBit } = this.vol, lut = this.lut, vis = this.display.visible;
    const base = b.baseData.data, over = b.overData.data;
    const colours = [null, LABEL_COLOURS[1].rgb, LABEL_COLOURS[2].rgb, LABEL_COLOURS[3].rgb];
    const showLow = vis.low && this.vol.info.has_low_confidence;
    for (let j = 0, k = 0; j < geo.h; j++) {
      for (let i = 0; i < geo.w; i++, k += 4) {
        const n = geo.at(i, j), g = lut[ct[n]], lab = labels[n];
        base[k] = base[k + 1] = base[k + 2] = g; base[k + 3] = 255;
        let rgb = null;
        if (showLow && (lab & lowBit)) rgb = LOW_CONFIDENCE.rgb;
        else if ((lab & 3) && vis[lab & 3]) rgb = colours[lab & 3];
        if (rgb) { over[k] = rgb[0]; over[k + 1] = rgb[1]; over[k + 2] = rgb[2]; over[k + 3] = 255; }
        else over[k + 3] = 0;
      }
    }
    b.base.getContext("2d").putImageData(b.baseData, 0, 0);
    b.over.getContext("2d").putImageData(b.overData, 0, 0);
    return b;
  }

  _draw(plane) {
    const pane = this.panes[plane], canvas = pane.canvas, geo = this._plane(plane);
    const dpr = window.devicePixelRatio || 1;
    const cw = canvas.clientWidth, ch = canvas.clientHeight;
    if (!cw || !ch) return;
    if (canvas.width !== Math.round(cw * dpr) || canvas.height !== Math.round(ch * dpr)) {
      canvas.width = Math.round(cw * dpr); canvas.height = Math.round(ch * dpr);
    }
    const scale = Math.min(cw / geo.wmm, ch / geo.hmm);
    const dw = geo.wmm * scale, dh = geo.hmm * scale;
    const fit = pane.fit = { ox: (cw - dw) / 2, oy: (ch - dh) / 2, dw, dh };
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, cw, ch);
    const img = this._images(plane, geo);
    ctx.imageSmoothingEnabled = true;  // smooth CT when magnified
    ctx.drawImage(img.base, fit.ox, fit.oy, dw, dh);
    if (this.display.overlay) {
      ctx.imageSmoothingEnabled = false;  // crisp label edges
      ctx.globalAlpha = this.display.opacity;
      ctx.drawImage(img.over, fit.ox, fit.oy, dw, dh);
      ctx.globalAlpha = 1;
    }
    if (this.display.crosshair && this.vol.nz > 1) this._crosshair(ctx, geo, fit);
    this._letters(ctx, plane, fit, cw, ch);
    pane.slider.value = String(geo.index);
    pane.label.textContent = `${geo.index + 1} / ${geo.count}`;
  }

  _crosshair(ctx, geo, fit) {
    const x = fit.ox + ((geo.cross[0] + 0.5) / geo.w) * fit.dw;
    const y = fit.oy + ((geo.cross[1] + 0.5) / geo.h) * fit.dh;
    ctx.save();
    ctx.strokeStyle = "rgba(255, 220, 120, 0.55)"; ctx.lineWidth = 1; ctx.setLineDash([4, 4]);
    ctx.beginPath();
    ctx.moveTo(x, fit.oy); ctx.lineTo(x, y - 8); ctx.moveTo(x, y + 8); ctx.lineTo(x, fit.oy + fit.dh);
    ctx.moveTo(fit.ox, y); ctx.lineTo(x - 8, y); ctx.moveTo(x + 8, y); ctx.lineTo(fit.ox + fit.dw, y);
    ctx.stroke();
    ctx.restore();
  }

  _letters(ctx, plane, fit, cw, ch) {
    const [l, r, t, b] = ORIENT[plane];
    ctx.save();
    ctx.font = "600 13px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    ctx.lineWidth = 3; ctx.lineJoin = "round";
    ctx.strokeStyle = "rgba(0, 0, 0, 0.8)"; ctx.fillStyle = "#f2f5fa";  // legible on bright bone too
    const text = (s, x, y, align) => { ctx.textAlign = align; ctx.strokeText(s, x, y); ctx.fillText(s, x, y); };
    text(l, Math.max(6, fit.ox + 6), ch / 2, "left");
    text(r, Math.min(cw - 6, fit.ox + fit.dw - 6), ch / 2, "right");
    text(t, cw / 2, Math.max(10, fit.oy + 10), "center");
    text(b, cw / 2, Math.min(ch - 10, fit.oy + fit.dh - 10), "center");
    ctx.restore();
  }

  // ---- interaction -----------------------------------------------------------------------------
  _wire(plane, pane) {
    const axis = { axial: "z", coronal: "y", sagittal: "x" }[plane];
    pane.slider.addEventListener("input", () => this.setPosition({ [axis]: Number(pane.slider.value) }));
    pane.canvas.addEventListener("wheel", (ev) => {
      if (!this.vol) return;
      ev.preventDefault();
      this.setPosition({ [axis]: this.pos[axis] + Math.sign(ev.deltaY) });
    }, { passive: false });
    let dragging = false;
    const pick = (ev) => {
      const vox = this.vol && this._voxelAt(plane, ev);
      if (vox) this.setPosition(vox);
    };
    pane.canvas.addEventListener("mousedown", (ev) => { dragging = true; pick(ev); });
    window.addEventListener("mouseup", () => { dragging = false; });
    pane.canvas.addEventListener("mousemove", (ev) => {
      if (dragging) pick(ev);
      this._readout(plane, ev);
    });
    pane.canvas.addEventListener("mouseleave", () => { pane.readout.textContent = ""; });
  }

  _readout(plane, ev) {
    const pane = this.panes[plane], vox = this.vol && this._voxelAt(plane, ev);
    if (!vox) { pane.readout.textContent = ""; return; }
    const v = this.vol, n = vox.z * v.ny * v.nx + vox.y * v.nx + vox.x;
    const [lo, hi] = v.info.value_range, value = lo + (v.ct[n] * (hi - lo)) / 255;
    const lab = v.labels[n] & 3, low = v.info.has_low_confidence && (v.labels[n] & v.lowBit);
    const text = v.info.is_hu ? `≈ ${Math.round(value)} HU` : `value ${value.toFixed(1)}`;
    pane.readout.textContent = text + (lab ? ` · ${LABEL_COLOURS[lab].name}` : "") + (low ? " · low confidence" : "");
  }
}
