// The ironic dashboard: a node table paged and filtered by the server, kept live
// by the server-sent event stream, and a node page whose buttons call the public
// API. No framework, no build step.
"use strict";

const API_HEADERS = { "X-OpenStack-Ironic-API-Version": "latest", "Content-Type": "application/json" };
const $ = (s, r = document) => r.querySelector(s);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
};

const view = { markers: [], marker: null, data: null, node: null, dirty: false };

function secs(s) {
  if (s == null) return "";
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}
function when(t) { return t ? new Date(t).toLocaleString() : ""; }
function stateClass(s) {
  return "state " + (s.includes("fail") || s === "error" ? "failed" : s.includes("wait") || s.includes("hold") ? "wait" : s.replace(/ /g, "-"));
}

function params() {
  const f = new FormData($("#filters"));
  const p = new URLSearchParams();
  for (const [k, v] of f) if (v !== "") p.set(k, v);
  if (view.marker) p.set("marker", view.marker);
  return p;
}

function waitText(r) {
  if (!r.wait) return "";
  let t = r.wait.reason;
  if (r.wait.deadline) t += ` (times out ${when(r.wait.deadline)})`;
  return t;
}

function rowCells(r) {
  const name = el("a", { href: `#/node/${r.uuid}`, text: r.name || r.uuid });
  const ps = el("span", { class: stateClass(r.provision_state), text: r.provision_state });
  const cell = el("td", { class: "pstate" }, ps);
  if (r.target_provision_state) cell.append(el("span", { class: "target", text: ` → ${r.target_provision_state}` }));
  if (r.step) cell.append(el("div", { class: "muted", text: r.step }));
  if (r.progress != null) cell.append(el("progress", { max: "100", value: String(r.progress), title: `${r.progress}%` }));
  const maint = el("td");
  if (r.maintenance) maint.append(el("span", { class: "badge", text: "maintenance", title: r.maintenance_reason || "" }));
  if (r.fault) maint.append(" ", el("span", { class: "badge fault", text: r.fault }));
  const power = r.power_state || "None";
  const inState = el("td", { text: secs(r.seconds_in_state) });
  if (r.over_budget != null) { inState.className = "over"; inState.title = `${secs(r.over_budget)} over budget`; }
  return [
    el("td", {}, name),
    el("td", { class: "power", text: r.target_power_state ? `${power} → ${r.target_power_state}` : power }),
    cell, maint,
    el("td", { text: r.driver }),
    el("td", { text: r.conductor_group || "" }),
    el("td", { text: r.reservation || "" }),
    inState,
    el("td", { class: "waiting", text: waitText(r) }),
    el("td", { class: "err", text: r.last_error || "", title: r.last_error || "" }),
  ];
}

function renderRow(r) {
  const tr = el("tr", { "data-uuid": r.uuid, "data-state": r.provision_state });
  tr.append(...rowCells(r));
  return tr;
}

function fillSelect(sel, values, counts) {
  const cur = sel.value;
  sel.replaceChildren(el("option", { value: "", text: "any" }));
  for (const v of values) sel.append(el("option", { value: v, text: counts ? `${v} (${counts[v]})` : v }));
  sel.value = cur;
}

function renderList(d) {
  view.data = d;
  $("#conductor").textContent = `conductor ${d.conductor} · ${d.total} node${d.total === 1 ? "" : "s"}`;
  const chips = $("#states");
  chips.replaceChildren();
  const sel = $("#filters [name=provision_state]").value;
  for (const [s, c] of Object.entries(d.states)) {
    const chip = el("span", { class: "chip" + (sel === s ? " sel" : ""), "data-state": s }, s, el("b", { text: String(c) }));
    chip.onclick = () => { const f = $("#filters [name=provision_state]"); f.value = f.value === s ? "" : s; view.markers = []; view.marker = null; load(); };
    chips.append(chip);
  }
  fillSelect($("#filters [name=provision_state]"), Object.keys(d.states), d.states);
  fillSelect($("#filters [name=driver]"), d.drivers);
  $("#nodes tbody").replaceChildren(...d.nodes.map(renderRow));
  const start = view.markers.length * Number($("#filters [name=limit]").value);
  $("#range").textContent = d.total ? `${start + 1}–${start + d.nodes.length} of ${d.total}` : "no nodes";
  $("#prev").disabled = view.markers.length === 0;
  $("#next").disabled = !d.next_marker;
}

async function get(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
  return r.json();
}

async function load() {
  try { renderList(await get(`/dashboard/api/nodes?${params()}`)); }
  catch (e) { $("#range").textContent = `could not load: ${e.message}`; }
}

function applyRow(r) {
  const tr = document.querySelector(`#nodes tr[data-uuid="${r.uuid}"]`);
  if (tr) {
    tr.replaceChildren(...rowCells(r));
    tr.dataset.state = r.provision_state;
    tr.classList.remove("flash"); void tr.offsetWidth; tr.classList.add("flash");
  }
  view.dirty = true; // counts and membership of the page: refreshed soon
  if (view.node && view.node === r.uuid) loadNode(r.uuid);
}

function connect() {
  const es = new EventSource("/dashboard/events");
  const live = $("#live");
  es.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  es.onerror = () => { live.textContent = "reconnecting"; live.className = "live off"; };
  es.addEventListener("node", (e) => applyRow(JSON.parse(e.data)));
  es.addEventListener("deleted", () => { view.dirty = true; });
  es.addEventListener("resync", () => { view.dirty = true; });
}

// a change may move nodes between pages and counts: refresh at most every 2 s
setInterval(() => { if (view.dirty && !view.node) { view.dirty = false; load(); } }, 2000);

// ---- node page ----

function summaryItem(k, v) { return el("div", {}, el("span", { text: k }), v == null || v === "" ? "—" : String(v)); }

async function loadNode(uuid) {
  let d;
  try { d = await get(`/dashboard/api/nodes/${encodeURIComponent(uuid)}`); }
  catch (e) { $("#node-title").textContent = `could not load ${uuid}: ${e.message}`; return; }
  const r = d.node;
  $("#node-title").replaceChildren(r.name || r.uuid, " ", el("span", { class: stateClass(r.provision_state), id: "node-state", text: r.provision_state }));
  $("#node-summary").replaceChildren(
    summaryItem("UUID", r.uuid),
    summaryItem("Power", r.target_power_state ? `${r.power_state} → ${r.target_power_state}` : r.power_state),
    summaryItem("Target", r.target_provision_state),
    summaryItem("Driver", r.driver),
    summaryItem("Conductor group", r.conductor_group),
    summaryItem("Locked by", r.reservation),
    summaryItem("In this state since", when(r.state_since)),
    summaryItem("Current step", r.step),
    summaryItem("Image", d.image_source),
    summaryItem("Agent", d.agent_version ? `${d.agent_version}, last heartbeat ${when(d.agent_last_heartbeat)}` : null),
    summaryItem("Agent command", d.agent_command),
    summaryItem("Progress", r.progress != null ? `${r.progress}%` : null),
    summaryItem("Maintenance", r.maintenance ? `yes: ${r.maintenance_reason || ""}` : "no"),
    summaryItem("Fault", r.fault),
    summaryItem("Last error", r.last_error),
  );
  const w = $("#node-wait");
  if (r.wait) {
    w.hidden = false;
    w.className = "wait" + (r.over_budget != null ? " over" : "");
    const parts = [`Waiting: ${r.wait.reason}`];
    if (r.wait.since) parts.push(`since ${when(r.wait.since)}`);
    parts.push(r.wait.deadline ? `times out ${when(r.wait.deadline)} (${r.wait.timeout_setting})` : "no timeout");
    if (d.budget_seconds != null) parts.push(`budget ${secs(d.budget_seconds)}${r.over_budget != null ? `, ${secs(r.over_budget)} over` : ""}`);
    w.textContent = parts.join(" · ");
  } else { w.hidden = true; }
  $("#timeline tbody").replaceChildren(...d.timeline.slice().reverse().map((h) => el("tr", {},
    el("td", { text: when(h.at) }), el("td", { text: h.provision_state || "" }),
    el("td", { text: h.event, class: h.severity === "ERROR" ? "err" : "" }),
    el("td", { text: h.seconds != null ? secs(Math.round(h.seconds)) : "now" }))));
  if (!d.timeline.length) {
    $("#timeline tbody").replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: "4", class: "muted",
      text: "No history yet: errors, waits (with their reason and deadline) and budget warnings appear here." })));
  }
  $("#ports tbody").replaceChildren(...d.ports.map((p) => el("tr", {},
    el("td", { text: p.address }), el("td", { text: p.pxe_enabled ? "yes" : "no" }),
    el("td", { text: p.physical_network || "" }), el("td", { text: p.switch || "" }),
    el("td", { text: p.switch_port || "" }), el("td", { text: p.vif || "" }))));
}

async function call(method, path, body) {
  const r = await fetch(`/v1/nodes/${encodeURIComponent(view.node)}${path}`, { method, headers: API_HEADERS, body: body ? JSON.stringify(body) : undefined });
  if (!r.ok) {
    let msg = `${r.status}`;
    try { const j = await r.json(); msg = JSON.parse(j.error_message).faultstring; } catch (_) { /* keep the status */ }
    throw new Error(msg);
  }
}

async function act(btn) {
  const out = $("#action-result");
  out.className = ""; out.textContent = "…";
  try {
    if (btn.dataset.verb === "active") {
      const url = $("#image-url").value.trim();
      if (!url) throw new Error("give the image URL to deploy");
      const patch = [{ op: "add", path: "/instance_info/image_source", value: url }];
      const sum = $("#image-checksum").value.trim();
      if (sum) patch.push({ op: "add", path: "/instance_info/image_checksum", value: sum });
      await call("PATCH", "", patch);
      await call("PUT", "/states/provision", { target: "active" });
    } else if (btn.dataset.verb) {
      await call("PUT", "/states/provision", { target: btn.dataset.verb });
    } else if (btn.dataset.power) {
      await call("PUT", "/states/power", { target: btn.dataset.power });
    } else if (btn.dataset.maint === "on") {
      await call("PUT", "/maintenance", { reason: "set from the dashboard" });
    } else if (btn.dataset.maint === "off") {
      await call("DELETE", "/maintenance");
    }
    out.textContent = `${btn.textContent}: accepted`;
  } catch (e) {
    out.className = "error"; out.textContent = `${btn.textContent}: ${e.message}`;
  }
}

function route() {
  const m = location.hash.match(/^#\/node\/(.+)$/);
  view.node = m ? decodeURIComponent(m[1]) : null;
  $("#list-view").hidden = !!view.node;
  $("#node-view").hidden = !view.node;
  $("#action-result").textContent = "";
  if (view.node) loadNode(view.node); else load();
}

$("#filters").addEventListener("change", () => { view.markers = []; view.marker = null; load(); });
$("#next").onclick = () => { if (view.data && view.data.next_marker) { view.markers.push(view.marker); view.marker = view.data.next_marker; load(); } };
$("#prev").onclick = () => { view.marker = view.markers.pop() || null; load(); };
for (const b of document.querySelectorAll("#actions button")) b.onclick = () => act(b);
window.addEventListener("hashchange", route);
connect();
route();
