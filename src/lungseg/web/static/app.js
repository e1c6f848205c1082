// Page flow: upload (drag-and-drop, progress) -> wait for the job -> viewer + results.
// The job id lives in the URL (#job=...) so a colleague can open the same result until it expires.
import { deleteJob, getBytes, getJSON, uploadScan, waitForJob } from "./api.js";
import { renderDownloads, renderLegend, renderLungTable, renderNodules, renderWarnings } from "./results.js";
import { Viewer } from "./viewer.js";

const $ = (id) => document.getElementById(id);
let health = { max_upload_mb: null, result_ttl_minutes: null };
let viewer = null;
let currentJob = null;

// ---- messages and progress -------------------------------------------------------------------
function showMessage(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = `message ${kind}`;
  box.hidden = !text;
}

function showProgress(name, stage, fraction) {
  $("progress").hidden = false;
  $("progress-name").textContent = name;
  $("progress-stage").textContent = stage;
  const fill = $("progress-fill");
  fill.classList.toggle("busy", fraction === null);
  fill.style.width = fraction === null ? "" : `${Math.round(fraction * 100)}%`;
}

function statusText(status) {
  if (status.status === "queued") {
    return status.queue_position ? `Queued — ${status.queue_position} scan(s) ahead` : "Queued — starting soon";
  }
  if (status.status === "running") return `Segmenting… ${Math.round(status.elapsed_s)} s`;
  return status.status;
}

function resetToUpload(message = "", kind = "error") {
  currentJob = null;
  history.replaceState(null, "", location.pathname);
  $("viewer-view").hidden = true;
  $("upload-view").hidden = false;
  $("study").hidden = true;
  $("new-scan").hidden = true;
  $("progress").hidden = true;
  $("dropzone").classList.remove("disabled");
  showMessage(message, kind);
}

// ---- upload ----------------------------------------------------------------------------------
async function handleFile(file) {
  if (!$("progress").hidden) return;  // one scan at a time
  showMessage("");
  if (file.size === 0) return showMessage(`${file.name} is empty.`);
  if (health.max_upload_mb && file.size > health.max_upload_mb * 1024 * 1024) {
    return showMessage(`${file.name} is ${(file.size / 1048576).toFixed(0)} MB; the upload limit is ${health.max_upload_mb} MB.`);
  }
  $("dropzone").classList.add("disabled");
  try {
    showProgress(file.name, "Uploading 0%", 0);
    const created = await uploadScan(file, (f) => showProgress(file.name, `Uploading ${Math.round(f * 100)}%`, f));
    history.replaceState(null, "", `#job=${created.job_id}`);
    await openJob(created.job_id, file.name);
  } catch (err) {
    $("progress").hidden = true;
    $("dropzone").classList.remove("disabled");
    history.replaceState(null, "", location.pathname);
    showMessage(err.message.includes(file.name) ? err.message : `${file.name}: ${err.message}`);
  }
}

async function openJob(jobId, name) {
  const status = await waitForJob(jobId, (s) => showProgress(name || s.filename, statusText(s), null));
  showProgress(status.filename, "Loading viewer…", null);
  const [report, info] = await Promise.all([getJSON(status.downloads.report), getJSON(`/api/jobs/${jobId}/volume`)]);
  const [ct, labels] = await Promise.all([getBytes(info.ct_url), getBytes(info.labels_url)]);
  currentJob = jobId;
  showViewer(status, report, info, ct, labels);
}

// ---- viewer ----------------------------------------------------------------------------------
function showViewer(status, report, info, ct, labels) {
  $("upload-view").hidden = true;
  $("progress").hidden = true;
  $("viewer-view").hidden = false;
  $("new-scan").hidden = false;
  $("study").hidden = false;
  $("study-name").textContent = status.filename;
  const [z, y, x] = info.full_shape_zyx;
  const sp = report.input.spacing_xyz_mm.map((s) => Number(s).toFixed(2)).join(" × ");
  $("study-meta").textContent = `${x}×${y}×${z} · ${sp} mm · model ${report.model}${info.is_hu ? "" : " · not HU"}`;
  $("panes").classList.toggle("single", info.is_2d);
  for (const plane of ["coronal", "sagittal"]) {
    document.querySelector(`.pane[data-plane=${plane}]`).hidden = info.is_2d;
  }
  $("window").value = info.is_hu ? "lung" : "full";
  $("window").disabled = !info.is_hu;
  viewer.load(info, ct, labels);
  renderLegend($("legend"), info, (key, on) => viewer.set("visible", { [key]: on }));
  renderLungTable($("lung-table"), report);
  renderNodules($("nodule-table"), $("no-nodules"), report, (n) => viewer.jumpToFullIndex(n.centroid_index_zyx),
                $("malignancy-caveat"));
  renderWarnings($("warnings"), $("warnings-panel"), report);
  renderDownloads($("downloads"), status);
  document.body.dataset.state = "viewer";  // lets tests and styles know the viewer is ready
}

function buildViewer() {
  const panes = {};
  for (const fig of document.querySelectorAll(".pane")) {
    const role = (r) => fig.querySelector(`[data-role=${r}]`);
    panes[fig.dataset.plane] = { canvas: fig.querySelector("canvas"), slider: role("slider"),
                                 label: role("label"), readout: role("readout") };
  }
  viewer = new Viewer($("panes"), panes);
  for (const fig of document.querySelectorAll(".pane")) {  // double-click a small pane to enlarge it
    fig.querySelector("figcaption").title = "double-click the pane to enlarge it";
    fig.addEventListener("dblclick", () => {  // swap places with the large pane
      const box = $("panes"), large = box.firstElementChild;
      if (fig === large) return;
      const after = fig.nextElementSibling;
      box.insertBefore(fig, large);
      box.insertBefore(large, after);
      viewer.render();
    });
  }
  $("overlay").addEventListener("change", (e) => viewer.set("overlay", e.target.checked));
  $("crosshair").addEventListener("change", (e) => viewer.set("crosshair", e.target.checked));
  $("opacity").addEventListener("input", (e) => {
    viewer.set("opacity", Number(e.target.value) / 100);
    $("opacity-value").textContent = `${e.target.value}%`;
  });
  $("window").addEventListener("change", (e) => viewer.set("window", e.target.value));
}

// ---- wiring ----------------------------------------------------------------------------------
function wireUpload() {
  const zone = $("dropzone"), input = $("file-input");
  zone.addEventListener("click", () => input.click());
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  input.addEventListener("change", () => { if (input.files[0]) handleFile(input.files[0]); input.value = ""; });
  // stop the browser from opening a file dropped anywhere on the page
  for (const ev of ["dragover", "drop"]) window.addEventListener(ev, (e) => e.preventDefault());
  zone.addEventListener("dragenter", () => zone.classList.add("over"));
  zone.addEventListener("dragover", (e) => { e.dataTransfer.dropEffect = "copy"; zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    zone.classList.remove("over");
    const item = e.dataTransfer.items && e.dataTransfer.items[0];
    const entry = item && item.webkitGetAsEntry && item.webkitGetAsEntry();
    if (entry && entry.isDirectory) return showMessage("Folders cannot be uploaded: zip the DICOM series folder and drop the .zip.");
    const files = e.dataTransfer.files;
    if (!files.length) return;
    if (files.length > 1) showMessage("One scan at a time: using the first file.", "info");
    handleFile(files[0]);
  });
  $("new-scan").addEventListener("click", () => resetToUpload());
  $("delete-job").addEventListener("click", async () => {
    if (!currentJob) return;
    try {
      await deleteJob(currentJob);
      resetToUpload("The scan and its results were deleted from the server.", "info");
    } catch (err) {
      showMessage(err.message);
    }
  });
}

async function start() {
  buildViewer();
  wireUpload();
  try {
    health = await getJSON("/api/health");
    $("limit").textContent = `Up to ${health.max_upload_mb} MB · model: ${health.model}`;
    $("privacy").textContent = `Scans stay on this server and are deleted ${health.result_ttl_minutes} minutes after segmentation.`;
  } catch (err) {
    showMessage(`The server is not answering: ${err.message}`);
  }
  const match = location.hash.match(/job=([0-9a-f]{32})/);
  if (match) {
    $("dropzone").classList.add("disabled");
    openJob(match[1]).catch((err) => resetToUpload(err.message));
  }
}

start();
