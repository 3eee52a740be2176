// rocketcore console: each page is a few admin verbs, run through
// POST /api/v1/admin exactly as `rocketcore admin <verb>` runs them.
"use strict";

const $ = (sel) => document.querySelector(sel);
const page = () => $("#page");
let info = { writable: false, writeVerbs: [] };
let timer = null;

function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// A success message outlives the page load that usually follows it.
let flash = null;

function status(text, kind) {
  const s = $("#status");
  s.textContent = text || "";
  s.className = kind || "";
  if (kind === "ok") flash = { text, t: Date.now() };
}

function settle() {
  if (flash && Date.now() - flash.t < 5000) status(flash.text, "ok");
  else status("");
}

function time(ms) {
  const n = Number(ms);
  return n > 0 ? new Date(n).toISOString().replace("T", " ").replace("Z", "") : "";
}

async function api(args) {
  const headers = { "Content-Type": "application/json" };
  const pw = $("#admin-password").value;
  if (pw && info.writeVerbs.includes(args[0])) headers["X-Admin-Password"] = pw;
  const r = await fetch("/api/v1/admin", { method: "POST", headers, body: JSON.stringify({ args }) });
  const body = await r.json().catch(() => ({ ok: false, error: "HTTP " + r.status }));
  if (!body.ok) throw new Error(body.error || "HTTP " + r.status);
  return body.result;
}

// Runs `fn`, showing what it is doing and any error it ends with.
async function busy(what, fn) {
  status(what + "…");
  try {
    const r = await fn();
    settle();
    return r;
  } catch (e) {
    status(what + ": " + e.message, "error");
    return undefined;
  }
}

function table(id, headers, rows, onClick) {
  const head = headers.map((h) => `<th>${esc(h)}</th>`).join("");
  const body = rows
    .map((r, i) => `<tr data-i="${i}"${onClick ? ' class="clickable"' : ""}>${r
      .map((c) => (typeof c === "number" ? `<td class="num">${c}</td>` : `<td>${c && c.html !== undefined ? c.html : esc(c)}</td>`))
      .join("")}</tr>`)
    .join("");
  const html = `<table id="${id}"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
  if (onClick) {
    setTimeout(() => {
      document.querySelectorAll(`#${id} tbody tr`).forEach((tr) =>
        tr.addEventListener("click", () => onClick(Number(tr.dataset.i))));
    });
  }
  return rows.length ? html : `<p class="muted" id="${id}">none</p>`;
}

function kv(id, obj) {
  return table(id, ["key", "value"], Object.keys(obj).sort().map((k) => [k, obj[k]]));
}

function ratioBar(r) {
  const pct = Math.round(Number(r) * 100);
  const cls = pct >= 85 ? "bad" : pct >= 75 ? "warn" : "";
  return { html: `<span class="bar ${cls}"><span style="width:${Math.min(pct, 100)}%"></span></span>${pct}%` };
}

function form(id, fields, button, onSubmit, extraClass) {
  const inputs = fields
    .map((f) => `<label>${esc(f.label)}<input name="${f.name}" id="${id}-${f.name}" type="${f.type || "text"}" value="${esc(f.value || "")}" ${f.size ? `size="${f.size}"` : ""}></label>`)
    .join("");
  setTimeout(() => {
    const el = document.getElementById(id);
    if (el) el.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const values = {};
      fields.forEach((f) => (values[f.name] = el.elements[f.name].value.trim()));
      onSubmit(values);
    });
  });
  return `<form id="${id}">${inputs}<button type="submit" class="${extraClass || ""}">${esc(button)}</button></form>`;
}

// ---- Cluster ---------------------------------------------------------------

const samples = [];

function chart(points) {
  const w = 640, h = 160, pad = 30;
  const max = Math.max(1, ...points.map((p) => Math.max(p.in, p.out)));
  const x = (i) => pad + (i * (w - 2 * pad)) / Math.max(1, points.length - 1);
  const y = (v) => h - pad + 10 - (v * (h - 2 * pad)) / max;
  const line = (k) => points.map((p, i) => `${x(i).toFixed(1)},${y(p[k]).toFixed(1)}`).join(" ");
  return `<div class="legend"><span class="in">— in msgs/s</span><span class="out">— out msgs/s</span>
    <span class="muted">last ${points.length} samples, 2 s apart</span></div>
    <svg class="chart" id="tps-chart" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">
    <text x="4" y="14">${max.toFixed(0)}</text><text x="4" y="${h - 18}">0</text>
    <polyline class="in" points="${line("in")}"/><polyline class="out" points="${line("out")}"/></svg>`;
}

async function clusterPage() {
  const brokers = await busy("loading brokers", () => api(["clusterList"]));
  if (!brokers) return;
  const rows = brokers.map((b, i) => [b.cluster, b.brokerName, b.brokerId, Number(b.brokerId) === 0 ? "MASTER" : "SLAVE",
    b.addr, b.version, { html: `<span id="broker-tps-${i}">…</span>` },
    Number(b.inTotalToday), Number(b.outTotalToday), b.diskRatio === undefined ? "" : ratioBar(b.diskRatio),
    b.bootTimestamp ? time(b.bootTimestamp) : ""]);
  page().innerHTML = `<h2>Cluster</h2>
    ${table("brokers", ["cluster", "broker", "id", "role", "address", "version", "msgs/s in / out", "in (total)", "out (total)", "disk used", "started"], rows, showBroker)}
    <h3>Throughput</h3><div id="tps">${chart(samples.length ? samples : [{ in: 0, out: 0 }])}</div>
    <div id="broker-detail"></div>`;
  async function showBroker(i) {
    const b = brokers[i];
    const [rt, conf] = await busy("loading broker " + b.addr, () =>
      Promise.all([api(["brokerStatus", "-b", b.addr]), api(["getBrokerConfig", "-b", b.addr])])) || [];
    if (!rt) return;
    $("#broker-detail").innerHTML = `<h3>Runtime of ${esc(b.brokerName)} (${esc(b.addr)})</h3>${kv("broker-runtime", rt[b.addr] || {})}
      <h3>Configuration</h3>${kv("broker-config", conf[b.brokerName] || Object.values(conf)[0] || {})}`;
  }
  let last = null;
  const tick = async () => {
    let now;
    try { now = await api(["clusterList"]); } catch (e) { return; }
    const t = Date.now();
    const sum = (k) => now.reduce((a, b) => a + Number(b[k] || 0), 0);
    const cur = { t, in: sum("inTotalToday"), out: sum("outTotalToday"), brokers: now };
    if (last) {
      const dt = (cur.t - last.t) / 1000;
      samples.push({ in: Math.max(0, (cur.in - last.in) / dt), out: Math.max(0, (cur.out - last.out) / dt) });
      now.forEach((b, i) => {
        const before = last.brokers.find((x) => x.addr === b.addr);
        const cell = document.getElementById("broker-tps-" + i);
        if (!before || !cell) return;
        const rate = (k) => Math.max(0, (Number(b[k]) - Number(before[k])) / dt).toFixed(1);
        cell.textContent = `${rate("inTotalToday")} / ${rate("outTotalToday")}`;
      });
      while (samples.length > 60) samples.shift();
      const el = $("#tps");
      if (el) el.innerHTML = chart(samples);
    }
    last = cur;
  };
  tick();
  timer = setInterval(tick, 2000);
}

// ---- Topics ----------------------------------------------------------------

// Brokers keep a topic named after their cluster and one after themselves.
function topicKind(t, brokers) {
  if (t.startsWith("%RETRY%")) return "RETRY";
  if (t.startsWith("%DLQ%")) return "DLQ";
  if ((brokers || []).some((b) => b.cluster === t || b.brokerName === t)) return "SYSTEM";
  if (/^(rmq_sys_|RMQ_SYS_|SCHEDULE_TOPIC|TBW102$|SELF_TEST_TOPIC$|OFFSET_MOVED_EVENT$|TRANS_CHECK_MAX_TIME_TOPIC$)/.test(t)) return "SYSTEM";
  return "NORMAL";
}

async function topicsPage(params) {
  const [topics, brokers] = await busy("loading topics", () => Promise.all([api(["topicList"]), api(["clusterList"])])) || [];
  if (!topics) return;
  const showAll = params.get("all") === "1";
  const shown = topics.filter((t) => showAll || topicKind(t, brokers) === "NORMAL");
  const cluster = brokers.length ? brokers[0].cluster : "DefaultCluster";
  page().innerHTML = `<h2>Topics</h2>
    <p><label style="flex-direction:row;gap:6px"><input type="checkbox" id="show-system" ${showAll ? "checked" : ""}> show retry, dead-letter and system topics</label></p>
    ${table("topics", ["topic", "kind"], shown.map((t) => [t, topicKind(t, brokers)]), (i) => (location.hash = "#topic?t=" + encodeURIComponent(shown[i])))}
    <h3>Create or update a topic</h3>
    ${form("create-topic", [{ name: "topic", label: "topic" }, { name: "queues", label: "queues", value: "8", size: 4 }], "Save", async (v) => {
      const r = await busy("saving topic " + v.topic, () => api(["updateTopic", "-t", v.topic, "-c", cluster, "-r", v.queues, "-w", v.queues]));
      if (r) { status("topic " + v.topic + " saved", "ok"); setTimeout(() => route(), 600); }
    })}`;
  $("#show-system").addEventListener("change", (e) => (location.hash = e.target.checked ? "#topics?all=1" : "#topics"));
}

async function topicPage(params) {
  const topic = params.get("t");
  const [queues, routeData, brokers] = await busy("loading " + topic, () =>
    Promise.all([api(["topicStatus", "-t", topic]), api(["topicRoute", "-t", topic]), api(["clusterList"])])) || [];
  if (!queues) return;
  const stored = queues.reduce((a, q) => a + (q.maxOffset - q.minOffset), 0);
  const cluster = brokers.length ? brokers[0].cluster : "DefaultCluster";
  page().innerHTML = `<h2>Topic ${esc(topic)}</h2>
    <p class="muted">${queues.length} queues, ${stored} messages stored · <span id="topic-tps">measuring msgs/s in…</span></p>
    ${table("topic-queues", ["broker", "queue", "min offset", "max offset", "messages", "last stored"],
      queues.map((q) => [q.brokerName, q.queueId, q.minOffset, q.maxOffset, q.maxOffset - q.minOffset, time(q.lastUpdateTimestamp)]))}
    <h3>Send a test message</h3>
    ${form("send-message", [{ name: "body", label: "body", value: "hello from the console" }, { name: "key", label: "key" }, { name: "tag", label: "tag" }], "Send", async (v) => {
      const args = ["sendMessage", "-t", topic, "-p", v.body];
      if (v.key) args.push("-k", v.key);
      if (v.tag) args.push("-c", v.tag);
      const r = await busy("sending", () => api(args));
      if (r) { status(`sent ${r.msgId} to queue ${r.queueId}`, "ok"); setTimeout(() => route(), 600); }
    })}
    <h3>Route</h3><pre id="topic-route">${esc(JSON.stringify(routeData, null, 2))}</pre>
    <form id="delete-topic"><span class="muted">Deletes the topic from every broker of cluster ${esc(cluster)} and from the name server.</span>
    <button class="danger" type="submit">Delete topic</button></form>`;
  // Put rate: the change of the queues' end offsets between two polls.
  let lastEnd = { t: Date.now(), n: queues.reduce((a, q) => a + q.maxOffset, 0) };
  timer = setInterval(async () => {
    let now;
    try { now = await api(["topicStatus", "-t", topic]); } catch (e) { return; }
    const cur = { t: Date.now(), n: now.reduce((a, q) => a + q.maxOffset, 0) };
    const el = $("#topic-tps");
    if (el) el.textContent = `${Math.max(0, (cur.n - lastEnd.n) / ((cur.t - lastEnd.t) / 1000)).toFixed(1)} msgs/s in`;
    lastEnd = cur;
  }, 2000);
  $("#delete-topic").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!confirm("Delete topic " + topic + "?")) return;
    const r = await busy("deleting " + topic, () => api(["deleteTopic", "-t", topic, "-c", cluster]));
    if (r) { status("topic " + topic + " deleted", "ok"); location.hash = "#topics"; }
  });
}

// ---- Consumer groups -------------------------------------------------------

async function groupsPage() {
  const groups = await busy("loading groups", () => api(["consumerProgress"]));
  if (!groups) return;
  page().innerHTML = `<h2>Consumer groups</h2>
    ${table("groups", ["group", "online clients", "version", "type", "model", "lag"],
      groups.map((g) => [g.group, g.count ? g.count : "OFFLINE", g.version, g.consumeType, g.messageModel, g.diffTotal]),
      (i) => (location.hash = "#group?g=" + encodeURIComponent(groups[i].group)))}`;
}

async function groupPage(params) {
  const group = params.get("g");
  const progress = await busy("loading " + group, () => api(["consumerProgress", "-g", group]));
  if (!progress) return;
  let conns = null;
  try { conns = await api(["consumerConnection", "-g", group]); } catch (e) { conns = null; }
  const topics = [...new Set(progress.queues.map((q) => q.topic))];
  const clients = conns ? conns.connectionSet || [] : [];
  page().innerHTML = `<h2>Consumer group ${esc(group)}</h2>
    <p class="muted">lag ${progress.diffTotal} messages in ${progress.queues.length} queues</p>
    ${table("group-queues", ["topic", "broker", "queue", "broker offset", "consumer offset", "lag", "last consumed"],
      progress.queues.map((q) => [q.topic, q.brokerName, q.queueId, q.brokerOffset, q.consumerOffset, q.diff, q.lastTimestamp ? time(q.lastTimestamp) : "N/A"]))}
    <h3>Connections</h3>
    ${conns ? table("group-connections", ["client id", "address", "language", "version"], clients.map((c) => [c.clientId, c.clientAddr, c.language, c.version]))
      + `<p class="muted">${esc(conns.consumeType)} · ${esc(conns.messageModel)} · ${esc(conns.consumeFromWhere)}</p>`
      : '<p class="muted" id="group-connections">no consumer of this group is online</p>'}
    <div id="group-running"></div>
    <h3>Reset offset</h3>
    <form id="reset-offset">
      <label>topic<select name="topic" id="reset-offset-topic">${topics.map((t) => `<option>${esc(t)}</option>`).join("")}</select></label>
      <label>to the first message stored at or after<input name="when" id="reset-offset-when" type="datetime-local" step="1"></label>
      <label>or (millis, now)<input name="raw" id="reset-offset-raw" size="14"></label>
      <button type="submit">Reset</button></form>
    <form id="delete-group"><span class="muted">Deletes the group's subscription settings from every broker.</span>
      <button class="danger" type="submit">Delete group</button></form>`;
  if (clients.length) {
    // What each client reports about itself (GET_CONSUMER_RUNNING_INFO).
    api(["consumerStatus", "-g", group]).then((status) => {
      const el = $("#group-running");
      if (!el) return;
      el.innerHTML = `<h3>Running info</h3>` + status.map((c) => {
        const info = c.runningInfo || {};
        const props = info.properties || {};
        return `<details><summary>${esc(c.clientId)}: ${Object.keys(info.mqTable || {}).length} queues, `
          + `${esc(props.consumeType || props.PROP_CONSUME_TYPE || "")}</summary>`
          + `<pre>${esc(JSON.stringify(info, null, 2))}</pre></details>`;
      }).join("");
    }).catch((e) => {
      const el = $("#group-running");
      if (el) el.innerHTML = `<p class="muted">running info: ${esc(e.message)}</p>`;
    });
  }
  $("#reset-offset").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const when = f.elements.raw.value.trim() || (f.elements.when.value ? String(new Date(f.elements.when.value).getTime()) : "");
    if (!when) { status("choose a time, or type millis or now", "error"); return; }
    const r = await busy("resetting", () => api(["resetOffsetByTime", "-g", group, "-t", f.elements.topic.value, "-s", when]));
    if (r) { status(`reset ${r.queues.length} queues of ${r.topic}`, "ok"); setTimeout(() => route(), 400); }
  });
  $("#delete-group").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!confirm("Delete group " + group + "?")) return;
    const brokers = await api(["clusterList"]).catch(() => []);
    const cluster = brokers.length ? brokers[0].cluster : "DefaultCluster";
    const r = await busy("deleting " + group, () => api(["deleteSubGroup", "-g", group, "-c", cluster]));
    if (r) { status("group " + group + " deleted", "ok"); location.hash = "#groups"; }
  });
}

// ---- Messages --------------------------------------------------------------

let found = [];

function messageList(id) {
  return table(id, ["message id", "topic", "tags", "keys", "queue", "offset", "stored"],
    found.map((m) => [(m.properties || {}).UNIQ_KEY || "", m.topic, m.tags, m.keys, m.queueId, m.queueOffset, time(m.storeTimestamp)]),
    (i) => showMessage(found[i]));
}

function showMessage(m) {
  const d = $("#message-detail");
  if (!d) return;
  const fields = { topic: m.topic, tags: m.tags, keys: m.keys, queueId: m.queueId, queueOffset: m.queueOffset,
    commitLogOffset: m.commitLogOffset, reconsumeTimes: m.reconsumeTimes, bornTimestamp: time(m.bornTimestamp),
    storeTimestamp: time(m.storeTimestamp), bornHost: m.bornHost, storeHost: m.storeHost };
  d.innerHTML = `<h3>Message ${esc((m.properties || {}).UNIQ_KEY || "")}</h3>${kv("message-fields", fields)}
    <h3>Properties</h3>${kv("message-properties", m.properties || {})}
    <h3>Body</h3><pre id="message-body">${esc(m.body)}</pre>`;
}

async function messagesPage() {
  page().innerHTML = `<h2>Messages</h2>
    ${form("by-key", [{ name: "topic", label: "topic" }, { name: "key", label: "key" }], "Search by key", async (v) => {
      found = (await busy("searching", () => api(["queryMsgByKey", "-t", v.topic, "-k", v.key]))) || [];
      render();
    })}
    ${form("by-id", [{ name: "topic", label: "topic (for a message id)" }, { name: "id", label: "message id or offset message id", size: 34 }], "Search by id", async (v) => {
      const r = await busy("searching", () => (v.topic ? api(["queryMsgByUniqueKey", "-i", v.id, "-t", v.topic]) : api(["queryMsgById", "-i", v.id])));
      found = r ? (Array.isArray(r) ? r : [r]) : [];
      render();
    })}
    ${form("by-time", [{ name: "topic", label: "topic" }, { name: "begin", label: "from", type: "datetime-local" }, { name: "end", label: "to", type: "datetime-local" }], "Search by time", async (v) => {
      const args = ["printMsg", "-t", v.topic, "--max", "64"];
      if (v.begin) args.push("-b", String(new Date(v.begin).getTime()));
      if (v.end) args.push("-e", String(new Date(v.end).getTime()));
      found = (await busy("searching", () => api(args))) || [];
      render();
    })}
    <div id="message-results"></div><div id="message-detail"></div>`;
  function render() {
    $("#message-results").innerHTML = `<p class="muted">${found.length} found</p>` + messageList("messages");
    $("#message-detail").innerHTML = "";
    if (found.length === 1) showMessage(found[0]);
  }
}

// ---- Dead letters ----------------------------------------------------------

async function dlqPage(params) {
  const group = params.get("g") || "";
  page().innerHTML = `<h2>Dead letters</h2>
    ${form("dlq-group", [{ name: "group", label: "consumer group", value: group }], "Show", (v) => (location.hash = "#dlq?g=" + encodeURIComponent(v.group)))}
    <div id="dlq-list"></div><div id="message-detail"></div>`;
  if (!group) return;
  let letters;
  try {
    letters = await api(["consumeMessage", "-t", "%DLQ%" + group, "-c", "64"]);
  } catch (e) {
    $("#dlq-list").innerHTML = `<p class="muted" id="dlq-letters">no dead letters for ${esc(group)} (${esc(e.message)})</p>`;
    return;
  }
  found = letters;
  $("#dlq-list").innerHTML = `<p class="muted">${letters.length} dead letters of ${esc(group)}</p>
    ${table("dlq-letters", ["message id", "original topic", "reconsumed", "stored", ""],
      letters.map((m, i) => [(m.properties || {}).UNIQ_KEY || "", (m.properties || {}).RETRY_TOPIC || (m.properties || {}).DLQ_ORIGIN_TOPIC || "",
        m.reconsumeTimes, time(m.storeTimestamp), { html: `<button class="secondary resend" data-i="${i}">Re-send</button>` }]), (i) => showMessage(letters[i]))}
    <button id="resend-all">Re-send all to ${esc(group)}</button>`;
  const resend = async (id) => {
    const args = ["resendDlqMessage", "-g", group, "-c", "64"];
    if (id) args.push("-i", id);
    const r = await busy("re-sending", () => api(args));
    if (r) status(`re-sent ${r.length} message(s) to %RETRY%${group}`, "ok");
  };
  document.querySelectorAll("button.resend").forEach((b) => b.addEventListener("click", (ev) => {
    ev.stopPropagation();
    resend((letters[Number(b.dataset.i)].properties || {}).UNIQ_KEY);
  }));
  $("#resend-all").addEventListener("click", () => resend(null));
}

// ---- Producers and name server ---------------------------------------------

async function producersPage(params) {
  const g = params.get("g") || "", t = params.get("t") || "";
  page().innerHTML = `<h2>Producers</h2>
    ${form("producer-query", [{ name: "group", label: "producer group", value: g }, { name: "topic", label: "topic", value: t }], "Show connections",
      (v) => (location.hash = `#producers?g=${encodeURIComponent(v.group)}&t=${encodeURIComponent(v.topic)}`))}<div id="producer-list"></div>`;
  if (!g || !t) return;
  const conns = await busy("loading producers", () => api(["producerConnection", "-g", g, "-t", t]));
  if (conns) $("#producer-list").innerHTML = table("producers", ["client id", "address", "language", "version"], conns.map((c) => [c.clientId, c.clientAddr, c.language, c.version]));
}

async function configPage() {
  const conf = await busy("loading name server settings", () => api(["getNamesrvConfig"]));
  if (!conf) return;
  page().innerHTML = `<h2>Name server ${esc(info.namesrv)}</h2>${kv("namesrv-config", conf)}`;
}

// ---- Routing ---------------------------------------------------------------

const pages = { cluster: clusterPage, topics: topicsPage, topic: topicPage, groups: groupsPage, group: groupPage,
  messages: messagesPage, dlq: dlqPage, producers: producersPage, config: configPage };
const navOf = { topic: "topics", group: "groups" };

function route() {
  if (timer) { clearInterval(timer); timer = null; }
  const [name, query] = (location.hash.slice(1) || "cluster").split("?");
  const key = pages[name] ? name : "cluster";
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.id === "nav-" + (navOf[key] || key)));
  page().innerHTML = "";
  pages[key](new URLSearchParams(query || ""));
}

async function start() {
  const pw = $("#admin-password");
  pw.value = sessionStorage.getItem("rocketcore-admin-password") || "";
  pw.addEventListener("change", () => sessionStorage.setItem("rocketcore-admin-password", pw.value));
  try {
    info = await (await fetch("/api/v1/info")).json();
    $("#node").textContent = info.node + (info.writable ? "" : " · read-only");
    if (!info.writable) $("#password-box").style.display = "none";
  } catch (e) {
    status("cannot reach the server: " + e.message, "error");
  }
  window.addEventListener("hashchange", route);
  route();
}

start();
