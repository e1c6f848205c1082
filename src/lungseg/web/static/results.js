// The numbers beside the viewer: lung table, nodule table, warnings, downloads, legend.
import { LABEL_COLOURS, LOW_CONFIDENCE } from "./viewer.js";

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "style") node.style.cssText = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
};
const fmt = (x, digits) => (x === null || x === undefined ? "—" : Number(x).toLocaleString("en-US", {
  minimumFractionDigits: digits, maximumFractionDigits: digits }));
const hex = (rgb) => `rgb(${rgb.join(",")})`;

export function renderLungTable(table, report) {
  const body = table.tBodies[0];
  body.replaceChildren();
  const rows = [["Right", "right", LABEL_COLOURS[1].rgb], ["Left", "left", LABEL_COLOURS[2].rgb], ["Total", "total", null]];
  for (const [name, key, rgb] of rows) {
    const s = report.lungs[key] || {};
    const swatch = rgb ? el("span", { class: "swatch", style: `background:${hex(rgb)}` }) : "";
    body.append(el("tr", { class: key === "total" ? "total" : "" },
      el("th", {}, swatch, name),
      el("td", {}, fmt(s.volume_ml, 0)),
      el("td", {}, fmt(s.mean_hu, 0)),
      el("td", {}, fmt(s.emphysema_index_pct, 1))));
  }
}

// The malignancy column: score (2 decimals) and class, titled with the report's meaning; shown
// only when the report has a malignancy block (the default model with its classifier).
const malignancyCell = (n, meaning) => {
  if (n.malignancy_score === undefined || n.malignancy_score === null) return el("td", { class: "malignancy", title: meaning }, "—");
  const cls = n.malignancy_class || "";
  return el("td", { class: `malignancy ${cls === "suspicious" ? "suspicious" : ""}`, title: meaning },
    fmt(n.malignancy_score, 2), el("span", { class: "class" }, cls));
};

export function renderNodules(table, empty, report, onPick, caveat) {
  const body = table.tBodies[0];
  body.replaceChildren();
  const nodules = report.nodules || [];
  table.hidden = nodules.length === 0;
  empty.hidden = nodules.length !== 0;
  const malignancy = report.malignancy || null;
  const meaning = malignancy ? malignancy.meaning || "" : "";
  const head = table.querySelector("#malignancy-head");
  if (head) {
    head.hidden = !malignancy;
    if (malignancy) head.title = meaning;
  }
  if (caveat) {
    caveat.hidden = !malignancy || nodules.length === 0;
    caveat.textContent = malignancy ? `Malignancy: ${malignancy.caveat || "the LIDC readers' suspicion scale, not a diagnosis"}.` : "";
  }
  for (const n of nodules) {
    const cells = [el("td", {}, n.id), el("td", {}, n.side),
      el("td", {}, fmt(n.diameter_mm, 1)), el("td", {}, fmt(n.volume_ml * 1000, 0)),
      el("td", {}, `${n.slice_range[0] + 1}–${n.slice_range[1] + 1}`),
      el("td", { title: report.detection_score || "" }, fmt(n.detection_score, 2))];
    if (malignancy) cells.push(malignancyCell(n, meaning));
    const row = el("tr", { class: "clickable", tabindex: "0", title: "show this nodule in all panes" }, ...cells);
    const pick = () => {
      for (const r of body.rows) r.classList.remove("selected");
      row.classList.add("selected");
      onPick(n);
    };
    row.addEventListener("click", pick);
    row.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); pick(); } });
    body.append(row);
  }
}

export function renderWarnings(list, panel, report) {
  const warnings = report.warnings || [];
  list.replaceChildren(...warnings.map((w) => el("li", {}, w)));
  panel.hidden = warnings.length === 0;
}

const DOWNLOADS = [
  ["mask", "Mask", (s) => (s.is_2d ? "PNG" : "NIfTI")],
  ["report", "Report", () => "JSON"],
  ["preview", "Preview", () => "PNG"],
  ["probabilities", "Probability map", () => "NIfTI"],
  ["low_confidence", "Low-confidence map", () => "NIfTI"],
  ["dicom_seg", "Mask as DICOM-SEG", () => "DICOM"],  // DICOM uploads only
];

export function renderDownloads(container, status) {
  container.replaceChildren();
  for (const [key, label, kind] of DOWNLOADS) {
    if (!status.downloads[key]) continue;
    container.append(el("a", { class: "button download", href: status.downloads[key], download: "",
                               "data-download": key }, label, el("span", { class: "kind" }, kind(status))));
  }
}

// Legend rows double as layer toggles.
export function renderLegend(container, info, onToggle) {
  container.replaceChildren();
  const rows = Object.entries(LABEL_COLOURS).map(([value, c]) => [value, c]);
  rows.push(["low", LOW_CONFIDENCE]);
  for (const [key, c] of rows) {
    const available = key !== "low" || info.has_low_confidence;
    const box = el("input", { type: "checkbox", "data-layer": key });
    box.checked = available;
    box.disabled = !available;
    box.addEventListener("change", () => onToggle(key, box.checked));
    const note = available ? "" : el("span", { class: "muted" }, " (not given by this model)");
    container.append(el("label", { class: available ? "legend-row" : "legend-row unavailable" },
      box, el("span", { class: "swatch", style: `background:${hex(c.rgb)}` }), c.name, note));
  }
}
