// The status page's script: polls /v1/status, draws the chain, the chart and
// the dead-letter reasons, and runs the playground. Every value is written
// with textContent (never innerHTML): plugin reasons and event fields are
// data, not markup.
"use strict";

const TOKEN_KEY = "wraith-token";
const POLL_MS = 2000;
const SAMPLES = [
  {
    name: "command with an e-mail address",
    event: {
      event_type: "command_completed",
      tool: "trix",
      tool_version: "2.4.1",
      command: "deploy",
      duration_ms: 1840,
      message: "deployed by ada.lovelace@example.org to prod-eu-1",
      context: { os: "linux", arch: "x86_64", driver_version: "10.2.14.7" },
    },
  },
  {
    name: "error with a stack trace",
    event: {
      event_type: "command_failed",
      level: "error",
      tool: "trix",
      command: "sync",
      error_type: "ConnectionRefused",
      message: "connect to 10.0.4.17:5432 failed (user bob, phone +1 415 555 0100)",
      stack: "at sync::pull (src/sync.rs:88)\nat main (src/main.rs:12)",
    },
  },
  {
    name: "event without PII",
    event: { event_type: "command_started", tool: "trix", command: "build", context: { os: "macos" } },
  },
];

let lastPlugins = new Map();

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(path, init = {}) {
  const headers = new Headers(init.headers || {});
  const t = token();
  if (t) headers.set("Authorization", "Bearer " + t);
  const resp = await fetch(path, { ...init, headers, cache: "no-store" });
  if (resp.status === 401) {
    showTokenForm(t ? "that token was not accepted" : "");
    throw new Error("this gateway needs an API token");
  }
  const text = await resp.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${resp.status}: ${text.slice(0, 300)}`);
  }
  if (!resp.ok) {
    const m = body && body.error ? `${body.error.code}: ${body.error.message}` : text;
    throw new Error(`${resp.status} ${m}`);
  }
  return body;
}

function showTokenForm(message) {
  document.getElementById("token-form").style.display = "block";
  document.getElementById("token-error").textContent = message || "";
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function fmtDuration(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function fmtMs(seconds) {
  if (!isFinite(seconds)) return "–";
  const ms = seconds * 1000;
  return ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(0)} µs`;
}

function fmtRate(r) {
  return r >= 1000 ? `${(r / 1000).toFixed(1)}k/s` : `${r.toFixed(r >= 10 ? 0 : 1)}/s`;
}

function drawChain(status) {
  document.getElementById("plugins-dir").textContent = status.plugins_dir;
  document.getElementById("manifest-error").textContent = status.manifest_error || "";
  const body = document.getElementById("chain-body");
  body.replaceChildren();
  if (!status.plugins.some((p) => p.mode !== "shadow")) {
    const tr = el("tr");
    const td = el("td", "no plugins: events pass through unchanged", "muted");
    td.colSpan = 12;
    tr.append(td);
    body.append(tr);
  }
  const seen = new Map();
  for (const p of status.plugins.filter((p) => p.mode !== "shadow")) {
    const prev = lastPlugins.get(p.name);
    const dc = prev ? p.calls - prev.calls : 0;
    const now = dc > 0 ? (p.call_seconds - prev.call_seconds) / dc : NaN;
    const mean = p.calls ? p.call_seconds / p.calls : NaN;
    const tr = el("tr");
    tr.dataset.plugin = p.name;
    tr.append(
      el("td", p.position === null || p.position === undefined ? "" : p.position + 1),
      el("td", p.name),
      el("td", p.state, "state-" + p.state),
      el("td", p.events_in, "n"),
      el("td", p.kept, "n"),
      el("td", p.dropped, "n"),
      el("td", p.rejected, "n"),
      el("td", p.faulted, "n"),
      el("td", p.calls, "n"),
      el("td", fmtMs(now), "n"),
      el("td", fmtMs(mean), "n"),
      el("td", p.last_error || "", "err"),
    );
    body.append(tr);
    seen.set(p.name, p);
  }
  lastPlugins = seen;
}

function drawShadows(status) {
  const shadows = status.plugins.filter((p) => p.mode === "shadow").map((p) => p.shadow);
  document.getElementById("shadows").hidden = shadows.length === 0;
  const body = document.getElementById("shadows-body");
  body.replaceChildren();
  for (const s of shadows) {
    const where = [
      ...Object.entries(s.verdict_changes).map(([k, n]) => `${k} ×${n}`),
      ...Object.entries(s.edit_paths).map(([k, n]) => `${k} ×${n}`),
    ].join(", ");
    const ratio = s.live_seconds > 0 ? `${(s.shadow_seconds / s.live_seconds).toFixed(2)}×` : "–";
    const tr = el("tr");
    tr.dataset.shadow = s.name;
    tr.append(
      el("td", s.name),
      el("td", s.shadows || s.error || ""),
      el("td", s.events, "n"),
      el("td", s.verdict_differs, "n"),
      el("td", s.edits_differ, "n"),
      el("td", where),
      el("td", s.faults, "n"),
      el("td", ratio, "n"),
    );
    body.append(tr);
  }
}

function drawChart(status) {
  const svg = document.getElementById("chart");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const rates = status.rates;
  const keep = Math.max(rates.length, 2);
  const series = [
    ["accepted", "#2f5fd0"],
    ["dropped", "#a35a00"],
    ["dead_lettered", "#b3261e"],
    ["invalid", "#8a8f96"],
  ];
  let max = 1;
  for (const r of rates) for (const [k] of series) max = Math.max(max, r[k]);
  const W = 600, H = 140, pad = 4;
  const x = (i) => (i / (keep - 1)) * W;
  const y = (v) => H - pad - (v / max) * (H - 2 * pad);
  for (const frac of [0.5, 1]) {
    const l = document.createElementNS(ns, "line");
    l.setAttribute("x1", 0); l.setAttribute("x2", W);
    l.setAttribute("y1", y(max * frac)); l.setAttribute("y2", y(max * frac));
    l.setAttribute("stroke", "#e3e6ea");
    svg.append(l);
  }
  for (const [k, color] of series) {
    if (!rates.length) break;
    const pts = rates.map((r, i) => `${x(i).toFixed(1)},${y(r[k]).toFixed(1)}`).join(" ");
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", pts);
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", color);
    line.setAttribute("stroke-width", k === "accepted" ? 2 : 1.3);
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(line);
  }
  const span = rates.length * status.sample_seconds;
  document.getElementById("chart-scale").textContent =
    rates.length ? `top ${fmtRate(max)}, ${fmtDuration(span)} shown, one point per ${status.sample_seconds}s` : "collecting…";
  const last = rates[rates.length - 1];
  document.getElementById("rate-now").textContent = last ? `now ${fmtRate(last.accepted)} accepted` : "";
  const t = status.totals;
  document.getElementById("totals").textContent =
    `since start: ${t.received} received, ${t.accepted} accepted, ${t.dropped} dropped, ` +
    `${t.dead_lettered} dead-lettered, ${t.invalid} invalid`;
}

function drawDeadLetters(status) {
  const body = document.getElementById("dlq-body");
  body.replaceChildren();
  if (!status.dead_letters.length) {
    const tr = el("tr");
    const td = el("td", "none", "muted");
    td.colSpan = 5;
    tr.append(td);
    body.append(tr);
    return;
  }
  for (const d of status.dead_letters) {
    const tr = el("tr");
    tr.append(el("td", d.at), el("td", d.plugin), el("td", d.kind), el("td", d.count, "n"), el("td", d.reason));
    body.append(tr);
  }
}

function drawHeader(status) {
  document.getElementById("version").textContent = `v${status.version} · ${status.contract}`;
  document.getElementById("uptime").textContent = fmtDuration(status.uptime_seconds);
  document.getElementById("generation").textContent = status.generation;
  const sinks = document.getElementById("sinks");
  sinks.replaceChildren();
  for (const [name, state] of Object.entries(status.sinks)) {
    const ready = state.state === "ready";
    const label = state.reason ? `${state.state} (${state.reason})` : state.state;
    sinks.append(el("span", `${name}: ${label} `, ready ? "ready" : "unavailable"));
  }
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
}

async function poll() {
  await refresh();
  setTimeout(poll, POLL_MS);
}

function drawTrace(t) {
  document.getElementById("playground-result").hidden = false;
  const verdict = document.getElementById("playground-verdict");
  verdict.textContent = t.verdict;
  verdict.className = "v-" + t.verdict;
  document.getElementById("playground-detail").textContent =
    t.verdict === "keep" ? `stored at ${t.destination}` : `by ${t.plugin}: ${t.reason}`;
  const body = document.getElementById("playground-steps");
  body.replaceChildren();
  if (!t.steps.length) {
    const tr = el("tr");
    const td = el("td", "no plugins in the chain", "muted");
    td.colSpan = 4;
    tr.append(td);
    body.append(tr);
  }
  for (const s of t.steps) {
    const tr = el("tr");
    tr.dataset.plugin = s.plugin;
    const edits = s.edits.map((e) => `${e.op} ${e.path}`).join(", ");
    tr.append(
      el("td", s.plugin),
      el("td", s.verdict, "v-" + s.verdict),
      el("td", s.reason || (s.destination ? "→ " + s.destination : "")),
      el("td", edits || "none", edits ? "" : "muted"),
    );
    body.append(tr);
  }
  document.getElementById("playground-before").textContent = JSON.stringify(t.before, null, 2);
  document.getElementById("playground-after").textContent =
    t.after ? JSON.stringify(t.after, null, 2) : `(not stored: ${t.verdict})`;
}

async function runPlayground() {
  const status = document.getElementById("playground-status");
  const error = document.getElementById("playground-error");
  error.textContent = "";
  const text = document.getElementById("playground-input").value;
  try {
    JSON.parse(text);
  } catch (e) {
    error.textContent = "not valid JSON: " + e.message;
    return;
  }
  status.textContent = "running…";
  try {
    const t = await api("/v1/playground", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: text,
    });
    drawTrace(t);
    status.textContent = "done";
  } catch (e) {
    status.textContent = "";
    error.textContent = e.message;
  }
}

function setup() {
  const select = document.getElementById("sample");
  SAMPLES.forEach((s, i) => {
    const o = el("option", s.name);
    o.value = String(i);
    select.append(o);
  });
  const input = document.getElementById("playground-input");
  const pick = () => (input.value = JSON.stringify(SAMPLES[Number(select.value)].event, null, 2));
  select.addEventListener("change", pick);
  pick();
  document.getElementById("playground-run").addEventListener("click", runPlayground);
  document.getElementById("token-entry").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = document.getElementById("token").value.trim();
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    document.getElementById("token-error").textContent = "";
    refresh();
  });
  poll();
}

async function refresh() {
  try {
    const status = await api("/v1/status");
    document.getElementById("token-form").style.display = "none";
    drawHeader(status);
    drawChain(status);
    drawShadows(status);
    drawChart(status);
    drawDeadLetters(status);
  } catch (e) {
    document.getElementById("updated").textContent = "not updated: " + e.message;
  }
}

setup();
