// The forkline dashboard: plain DOM, no framework, no build step.
// Everything that comes from a job (payload, error, traceback) is set with textContent,
// never parsed as HTML; the page's Content-Security-Policy forbids inline scripts anyway.
"use strict";

const KEY = "forkline.apiKey";
const POINTS = 150; // 5 minutes of 2 s samples
const history = []; // {completed, failed} per second
let last = null;

function el(id) { return document.getElementById(id); }

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  const key = sessionStorage.getItem(KEY);
  if (key) headers["X-API-Key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401 || response.status === 403) {
    el("key-panel").hidden = false;
    throw new Error("an API key is needed");
  }
  const data = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error((data && data.message) || response.statusText);
  return data;
}

function showStatus(text, down) {
  el("status").textContent = text;
  el("status").className = down ? "down" : "";
}

function drawCounts(stats) {
  const box = el("counts");
  box.replaceChildren();
  for (const name of ["waiting", "active", "delayed", "completed", "failed", "dlq"]) {
    const div = document.createElement("div");
    div.className = "count";
    div.id = "count-" + name;
    const value = document.createElement("b");
    value.textContent = String(stats[name]);
    div.append(value, document.createTextNode(name));
    box.appendChild(div);
  }
}

function drawChart() {
  const canvas = el("chart");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const top = Math.max(1, ...history.map((p) => Math.max(p.completed, p.failed)));
  for (const [field, color] of [["completed", "#2a7"], ["failed", "#c33"]]) {
    ctx.strokeStyle = color;
    ctx.beginPath();
    history.forEach((p, i) => {
      const x = (i / (POINTS - 1)) * canvas.width;
      const y = canvas.height - (p[field] / top) * (canvas.height - 10);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
  ctx.fillStyle = "#666";
  ctx.fillText(top.toFixed(1) + "/s", 4, 12);
}

function drawQueues(queues) {
  const body = el("queues").tBodies[0];
  body.replaceChildren();
  for (const [name, q] of Object.entries(queues)) {
    const row = body.insertRow();
    row.dataset.queue = name;
    cell(row, name);
    for (const field of ["waiting", "active", "delayed", "completed", "failed", "dlq"]) cell(row, q[field]);
    cell(row, q.paused ? "paused" : "running", "state");
    const button = document.createElement("button");
    button.textContent = q.paused ? "Resume" : "Pause";
    button.className = q.paused ? "resume" : "pause";
    button.addEventListener("click", guard(async () => {
      await api("POST", "/queues/" + encodeURIComponent(name) + (q.paused ? "/resume" : "/pause"));
      await refreshStats();
    }));
    row.insertCell().appendChild(button);
  }
}

async function refreshStats() {
  const stats = await api("GET", "/queue/stats");
  drawCounts(stats);
  drawQueues(stats.queues || {});
  const now = Date.now() / 1000;
  if (last) {
    const seconds = Math.max(0.001, now - last.at);
    history.push({ completed: Math.max(0, stats.completed - last.completed) / seconds,
                   failed: Math.max(0, stats.failed - last.failed) / seconds });
    if (history.length > POINTS) history.shift();
  }
  last = { at: now, completed: stats.completed, failed: stats.failed };
  drawChart();
}

async function refreshWorkers() {
  const workers = await api("GET", "/workers");
  const body = el("workers").tBodies[0];
  body.replaceChildren();
  const now = Date.now() / 1000;
  for (const w of workers.items) {
    const row = body.insertRow();
    cell(row, w.host); cell(row, w.pid); cell(row, w.queues.join(", ")); cell(row, w.concurrency); cell(row, w.running.length);
    cell(row, w.done); cell(row, (now - w.lastBeat).toFixed(1) + " s ago");
  }
}

function filters() {
  const where = {};
  if (el("f-type").value) where.type = el("f-type").value;
  if (el("f-queue").value) where.queue = el("f-queue").value;
  if (el("f-error").value) where.errorContains = el("f-error").value;
  return where;
}

async function refreshDlq() {
  const page = await api("GET", "/dlq?" + new URLSearchParams({ ...filters(), limit: "100" }));
  const body = el("dlq").tBodies[0];
  body.replaceChildren();
  for (const entry of page.items) {
    const row = body.insertRow();
    row.dataset.job = entry.jobId;
    const link = document.createElement("a");
    link.href = "#";
    link.textContent = entry.jobId;
    link.addEventListener("click", (event) => { event.preventDefault(); showDetail(entry.jobId); });
    row.insertCell().appendChild(link);
    cell(row, entry.queue); cell(row, entry.type); cell(row, entry.attempts); cell(row, entry.replays).className = "replays";
    cell(row, new Date(entry.failedAt * 1000).toISOString()); cell(row, entry.error, "error");
    const actions = row.insertCell();
    for (const [label, act] of [["Replay", replay], ["Delete", remove]]) {
      const button = document.createElement("button");
      button.textContent = label;
      button.className = label.toLowerCase();
      button.addEventListener("click", guard(() => act(entry.jobId)));
      actions.appendChild(button);
    }
  }
  el("dlq-total").textContent = page.total + " dead job(s) matching";
}

async function showDetail(jobId) {
  const entry = await api("GET", "/dlq/" + encodeURIComponent(jobId));
  el("detail").hidden = false;
  el("detail-title").textContent = entry.jobId + ": " + entry.error;
  el("detail-body").textContent = "payload: " + JSON.stringify(entry.payload, null, 2) + "\n\n" + entry.traceback;
}

async function replay(jobId) {
  if (!confirm("Put job " + jobId + " back on the queue?")) return;
  await api("POST", "/dlq/" + encodeURIComponent(jobId) + "/replay");
  await refreshDlq();
}

async function remove(jobId) {
  if (!confirm("Delete job " + jobId + " from the dead-letter queue? This cannot be undone.")) return;
  await api("DELETE", "/dlq/" + encodeURIComponent(jobId));
  await refreshDlq();
}

async function purge() {
  const where = filters();
  if (!confirm("Purge every dead job matching " + JSON.stringify(where) + "? This cannot be undone.")) return;
  await api("POST", "/dlq/purge", { ...where, confirm: true });
  await refreshDlq();
}

async function tick() {
  try {
    await refreshStats();
    await refreshWorkers();
    showStatus("live, every 2 s", false);
  } catch (error) {
    showStatus(error.message, true);
  }
}

function guard(fn) {
  return async (event) => {
    if (event) event.preventDefault();
    try { await fn(); } catch (error) { showStatus(error.message, true); }
  };
}

document.addEventListener("DOMContentLoaded", () => {
  el("key-form").addEventListener("submit", guard(async () => {
    sessionStorage.setItem(KEY, el("key-input").value);
    el("key-panel").hidden = true;
    await tick();
    await refreshDlq();
  }));
  el("job-form").addEventListener("submit", guard(async () => {
    const job = await api("GET", "/jobs/" + encodeURIComponent(el("job-id").value));
    el("job").textContent = JSON.stringify(job, null, 2);
  }));
  el("dlq-form").addEventListener("submit", guard(refreshDlq));
  el("purge").addEventListener("click", guard(purge));
  tick();
  guard(refreshDlq)();
  setInterval(tick, 2000);
  setInterval(() => guard(refreshDlq)(), 10000);
});
