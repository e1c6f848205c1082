// REST calls. Every server error is JSON {"detail": "..."}; turn it into an Error with that text.

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && typeof body.detail === "string") return body.detail;
  } catch (_) { /* not JSON */ }
  return `the server answered ${response.status} ${response.statusText}`;
}

export async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(await errorText(response));
  return response.json();
}

export async function getBytes(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(await errorText(response));
  return new Uint8Array(await response.arrayBuffer());
}

export async function deleteJob(jobId) {
  const response = await fetch(`/api/jobs/${jobId}`, { method: "DELETE" });
  if (!response.ok && response.status !== 404) throw new Error(await errorText(response));
}

// Upload with progress (fetch cannot report upload progress; XMLHttpRequest can).
export function uploadScan(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/jobs");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (ev) => {
      if (ev.lengthComputable) onProgress(ev.loaded / ev.total);
    });
    xhr.addEventListener("load", () => {
      const body = xhr.response;
      if (xhr.status === 202 || xhr.status === 200) resolve(body);
      else reject(new Error((body && body.detail) || `upload failed (${xhr.status})`));
    });
    xhr.addEventListener("error", () => reject(new Error(
      "the upload was interrupted (the connection closed; the file may be over the size limit)")));
    xhr.addEventListener("abort", () => reject(new Error("the upload was cancelled")));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

// Poll a job until it is done or failed; onStatus sees every intermediate status.
export async function waitForJob(jobId, onStatus) {
  for (;;) {
    const status = await getJSON(`/api/jobs/${jobId}`);
    onStatus(status);
    if (status.status === "done") return status;
    if (status.status === "error") throw new Error(status.error || "segmentation failed");
    await new Promise((r) => setTimeout(r, status.status === "queued" ? 1000 : 400));
  }
}
