// The forkline dashboard: plain DOM, no framework, no build step.
// Everything that comes from a job (payload, error, traceback, progress note) is set with textContent
// or as an attribute's value, never parsed as HTML; the page's Content-Security-Policy forbids inline
// scripts anyway.
"use strict";

const KEY = "forkline.apiKey";
const STATES = ["queued", "scheduled", "active", "retrying", "completed", "dead", "cancelled", "pending"];
const PROMOTABLE = ["scheduled", "retrying"];
const CANCELLABLE = ["pending", "queued", "scheduled", "retrying"];
const PAGE = 20;
const view = { state: "active", pages: [null], page: 0, next: null, hours: 1, job: null, queuesListed: false };

function el(id) { return document.getElementById(id); }

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function clipped(row, text, className) {  // cut with an ellipsis by the style sheet; the whole text on hover
  const td = cell(row, text, className);
  td.title = td.textContent;
  return td;
}

function idCell(row, jobId, anchor, open) {  // the job's id, cut to the column, opening its detail
  const link = document.createElement("a");
  link.href = anchor;
  link.textContent = link.title = jobId;
  link.addEventListener("click", guard(async () => { await open(); el(anchor.slice(1)).scrollIntoView(); }));
  const td = row.insertCell();
  td.className = "clip";
  td.appendChild(link);
}

function time(seconds) { return seconds ? new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) : ""; }

function ago(seconds) {
  const s = Math.max(0, Date.now() / 1000 - seconds);
  return s < 90 ? s.toFixed(0) + " s ago" : s < 5400 ? (s / 60).toFixed(0) + " min ago" : (s / 3600).toFixed(1) + " h ago";
}

function button(label, className, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.className = className;
  b.addEventListener("click", guard(action));
  return b;
}

function progressBar(job) {
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = job.progress;
  bar.title = Math.round(job.progress * 100) + "%" + (job.progressNote ? ": " + job.progressNote : "");
  return bar;
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

// The chart: GET /queue/history when the page opens (the last hour per minute, or 24 h per hour: each
// step's default span), read again every 10 s.
async function refreshHistory() {
  const step = view.hours === 1 ? "minute" : "hour";
  const history = await api("GET", "/queue/history?" + new URLSearchParams({ step }));
  const buckets = history.buckets;
  const canvas = el("chart");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const top = Math.max(1, ...buckets.map((b) => Math.max(b.completed, b.failed)));
  for (const [field, color] of [["completed", "#2a7"], ["failed", "#c33"]]) {
    ctx.strokeStyle = color;
    ctx.beginPath();
    buckets.forEach((b, i) => {
      const x = (i / Math.max(1, buckets.length - 1)) * canvas.width;
      const y = canvas.height - (b[field] / top) * (canvas.height - 14);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
  ctx.fillStyle = "#666";
  ctx.fillText(top + " / " + (step === "minute" ? "min" : "h"), 4, 12);
  el("chart-step").textContent = step;
  // What is drawn, for a reader of the page (and its tests): points, and the jobs they add up to.
  canvas.dataset.points = String(buckets.length);
  canvas.dataset.completed = String(buckets.reduce((sum, b) => sum + b.completed, 0));
  canvas.dataset.failed = String(buckets.reduce((sum, b) => sum + b.failed, 0));
  for (const b of document.querySelectorAll(".range-button")) b.disabled = Number(b.dataset.hours) === view.hours;
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
    row.insertCell().appendChild(button(q.paused ? "Resume" : "Pause", q.paused ? "resume" : "pause", async () => {
      await api("POST", "/queues/" + encodeURIComponent(name) + (q.paused ? "/resume" : "/pause"));
      await refreshStats();
    }));
  }
  if (!view.queuesListed) {
    for (const name of Object.keys(queues)) {
      const option = document.createElement("option");
      option.value = option.textContent = name;
      el("jobs-queue").appendChild(option);
    }
    view.queuesListed = true;
  }
}

async function refreshStats() {
  const stats = await api("GET", "/queue/stats");
  drawCounts(stats);
  drawQueues(stats.queues || {});
}

function drawTabs() {
  const tabs = el("tabs");
  tabs.replaceChildren();
  for (const state of STATES) {
    const tab = button(state, "tab" + (state === view.state ? " current" : ""), async () => {
      view.state = state;
      view.pages = [null];
      view.page = 0;
      drawTabs();
      await refreshJobs();
    });
    tab.dataset.state = state;
    tabs.appendChild(tab);
  }
}

// The current tab's page of GET /jobs, newest first; read again every 2 s (progress moves).
async function refreshJobs() {
  const query = { state: view.state, limit: String(PAGE) };
  if (el("jobs-queue").value) query.queue = el("jobs-queue").value;
  if (el("jobs-type").value) query.type = el("jobs-type").value;
  if (view.pages[view.page]) query.cursor = view.pages[view.page];
  const page = await api("GET", "/jobs?" + new URLSearchParams(query));
  const body = el("jobs").tBodies[0];
  body.replaceChildren();
  for (const job of page.items) {
    const row = body.insertRow();
    row.dataset.job = job.id;
    row.dataset.state = job.state;
    idCell(row, job.id, "#job-panel", () => showJob(job.id));
    clipped(row, job.queue, "clip"); clipped(row, job.type, "clip");
    cell(row, job.attempts + " / " + job.maxAttempts);
    const progress = row.insertCell();
    progress.className = "progress";
    if (job.progress !== null && job.progress !== undefined) progress.appendChild(progressBar(job));
    cell(row, ago(job.updatedAt)).title = time(job.updatedAt);
    clipped(row, job.lastError, "clip error");
    const actions = row.insertCell();
    if (PROMOTABLE.includes(job.state)) actions.appendChild(button("Start now", "promote", () => promote(job.id)));
    if (CANCELLABLE.includes(job.state)) actions.appendChild(button("Cancel", "cancel", () => cancel(job.id)));
  }
  el("jobs-empty").hidden = page.items.length > 0;
  view.next = page.cursor;
  el("jobs-next").disabled = !page.cursor;
  el("jobs-first").disabled = view.page === 0;
}

async function promote(jobId) {
  await api("POST", "/jobs/" + encodeURIComponent(jobId) + "/promote");
  await refreshJobs();
}

async function cancel(jobId) {
  if (!confirm("Cancel job " + jobId + "? It will not run.")) return;
  await api("DELETE", "/jobs/" + encodeURIComponent(jobId));
  await refreshJobs();
}

function field(list, name, value) {
  if (value === null || value === undefined || value === "") return null;
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  if (value instanceof Node) dd.appendChild(value); else dd.textContent = String(value);
  dd.dataset.field = name;
  list.append(dt, dd);
  return dd;
}

// One job's detail: GET /jobs/{id}, read again every 2 s while it is shown.
async function showJob(jobId) {
  const job = await api("GET", "/jobs/" + encodeURIComponent(jobId));
  view.job = jobId;
  el("job-detail").hidden = false;
  const fields = el("job-fields");
  fields.replaceChildren();
  field(fields, "id", job.id);
  field(fields, "state", job.state);
  field(fields, "queue", job.queue);
  field(fields, "type", job.type);
  field(fields, "attempts", job.attempts + " of " + job.maxAttempts);
  if (job.progress !== null && job.progress !== undefined) {
    const box = document.createElement("span");
    box.append(progressBar(job), document.createTextNode(" " + Math.round(job.progress * 100) + "% " +
                                                          (job.progressNote || "")));
    field(fields, "progress", box);
  }
  field(fields, "priority", job.priority);
  field(fields, "created", time(job.createdAt));
  field(fields, "updated", time(job.updatedAt));
  field(fields, "runs at", time(job.runAt));
  field(fields, "next attempt", time(job.nextAttemptAt));
  field(fields, "finished", time(job.finishedAt));
  field(fields, "request id", job.requestId);
  field(fields, "replays", job.replays || null);
  field(fields, "started early", job.promotions || null);
  const errors = el("job-errors");
  errors.replaceChildren();
  for (const e of job.errors || []) {
    const item = document.createElement("li");
    item.textContent = "attempt " + e.attempt + ", " + time(e.at) + ": " + e.error;
    errors.appendChild(item);
  }
  el("job-payload").textContent = JSON.stringify(job.payload, null, 2);
  el("job-result").textContent = job.result === null ? "" : JSON.stringify(job.result, null, 2);
}

async function refreshWorkers() {
  const workers = await api("GET", "/workers");
  const body = el("workers").tBodies[0];
  body.replaceChildren();
  for (const w of workers.items) {
    const row = body.insertRow();
    cell(row, w.host); cell(row, w.pid); cell(row, w.queues.join(", ")); cell(row, w.concurrency); cell(row, w.running.length);
    cell(row, w.done); cell(row, ago(w.lastBeat));
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
    idCell(row, entry.jobId, "#detail", () => showDetail(entry.jobId));
    clipped(row, entry.queue, "clip"); clipped(row, entry.type, "clip"); cell(row, entry.attempts);
    cell(row, entry.replays, "replays"); cell(row, time(entry.failedAt)); clipped(row, entry.error, "clip error");
    const actions = row.insertCell();
    actions.appendChild(button("Replay", "replay", () => replay(entry.jobId)));
    actions.appendChild(button("Delete", "delete", () => remove(entry.jobId)));
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
    await refreshJobs();
    if (view.job) await showJob(view.job);
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

function everything() {
  tick();
  guard(refreshHistory)();
  guard(refreshDlq)();
}

document.addEventListener("DOMContentLoaded", () => {
  drawTabs();
  el("key-form").addEventListener("submit", guard(async () => {
    sessionStorage.setItem(KEY, el("key-input").value);
    el("key-panel").hidden = true;
    everything();
  }));
  el("job-form").addEventListener("submit", guard(() => showJob(el("job-id").value)));
  el("jobs-form").addEventListener("submit", guard(async () => { view.pages = [null]; view.page = 0; await refreshJobs(); }));
  el("jobs-next").addEventListener("click", guard(async () => {
    view.pages = view.pages.slice(0, view.page + 1).concat([view.next]);
    view.page += 1;
    await refreshJobs();
  }));
  el("jobs-first").addEventListener("click", guard(async () => { view.pages = [null]; view.page = 0; await refreshJobs(); }));
  for (const b of document.querySelectorAll(".range-button")) {
    b.addEventListener("click", guard(async () => { view.hours = Number(b.dataset.hours); await refreshHistory(); }));
  }
  el("dlq-form").addEventListener("submit", guard(refreshDlq));
  el("purge").addEventListener("click", guard(purge));
  everything();
  setInterval(tick, 2000);
  setInterval(() => guard(refreshHistory)(), 10000);
  setInterval(() => guard(refreshDlq)(), 10000);
});
