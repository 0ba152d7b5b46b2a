// The operations page: reads the admin API with the token kept in this tab's session storage
// (never in a URL), refreshes every few seconds, and sends the node actions as commands.
"use strict";

const TOKEN_KEY = "phonefleet-admin-token";
const REFRESH_MS = 3000;
const $ = (selector) => document.querySelector(selector);
let timer = null;

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: {
      Authorization: `Bearer ${token()}`,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data.detail || data.title || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function button(parent, label, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await action();
      notice(`${label}: done`);
    } catch (error) {
      notice(`${label}: ${error.message}`);
    } finally {
      b.disabled = false;
      refresh();
    }
  });
  parent.appendChild(b);
  return b;
}

function notice(text) {
  $("#notice").textContent = text;
}

function renderFleet(nodes) {
  const body = $("#fleet tbody");
  body.replaceChildren();
  for (const node of nodes) {
    const row = body.insertRow();
    row.dataset.node = node.name;
    cell(row, node.name);
    cell(row, node.status, `status status-${node.status}`);
    const devices = Object.entries(node.devices || {})
      .map(([state, n]) => `${state} ${n}`)
      .join(", ");
    cell(row, devices || "none");
    const usage = node.usage ? `${node.usage.devices} leased` : "";
    cell(row, usage);
    const actions = cell(row, "");
    const id = node.id;
    if (node.status === "maintenance") {
      button(actions, "End maintenance", () =>
        api("POST", `/scheduler/nodes/${id}/maintenance`, { enable: false }));
    } else if (node.status === "ready" || node.status === "cordoned") {
      button(actions, "Maintenance", () =>
        api("POST", `/scheduler/nodes/${id}/maintenance`, { enable: true, reason: "from /ops" }));
      button(actions, "Drain", () =>
        api("POST", `/scheduler/nodes/${id}/drain`, { mode: "migrate", reason: "from /ops" }));
    }
  }
}

function renderQueue(entries) {
  const byTier = new Map();
  for (const entry of entries) {
    if (!byTier.has(entry.tier)) byTier.set(entry.tier, []);
    byTier.get(entry.tier).push(entry);
  }
  const parent = $("#queue");
  parent.replaceChildren();
  if (!entries.length) {
    parent.textContent = "Nobody waits.";
    return;
  }
  for (const [tier, waiting] of byTier) {
    const title = document.createElement("h3");
    title.textContent = `${tier} (${waiting.length})`;
    const table = document.createElement("table");
    table.createTHead().insertRow().append(
      ...["Position", "User", "Minutes", "Expected start"].map((t) => {
        const th = document.createElement("th");
        th.textContent = t;
        return th;
      }),
    );
    const body = table.createTBody();
    waiting.sort((a, b) => (a.position ?? 1e9) - (b.position ?? 1e9));
    for (const entry of waiting) {
      const row = body.insertRow();
      cell(row, entry.position ?? "…");
      cell(row, entry.userId);
      cell(row, entry.durationMinutes);
      cell(row, entry.estimatedStartAt ? new Date(entry.estimatedStartAt).toLocaleTimeString() : "unknown");
    }
    parent.append(title, table);
  }
}

function renderLeases(leases) {
  const body = $("#leases tbody");
  body.replaceChildren();
  const soon = [...leases].sort((a, b) => a.expiresAt.localeCompare(b.expiresAt)).slice(0, 10);
  for (const lease of soon) {
    const row = body.insertRow();
    cell(row, lease.id.slice(0, 8));
    cell(row, lease.userId);
    cell(row, lease.deviceId.slice(0, 8));
    cell(row, new Date(lease.expiresAt).toLocaleTimeString());
    const actions = cell(row, "");
    button(actions, "Reschedule", () =>
      api("POST", `/scheduler/reschedule/${lease.deviceId}`, { reason: "from /ops" }));
  }
}

function renderUtilization(buckets) {
  const svg = $("#utilization");
  svg.replaceChildren();
  const width = 480 / Math.max(buckets.length, 1);
  buckets.forEach((bucket, i) => {
    const height = Math.round(100 * Math.min(bucket.utilization, 1));
    const bar = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    bar.setAttribute("x", String(i * width + 1));
    bar.setAttribute("y", String(105 - height));
    bar.setAttribute("width", String(Math.max(width - 2, 1)));
    bar.setAttribute("height", String(height));
    const tip = document.createElementNS("http://www.w3.org/2000/svg", "title");
    tip.textContent = `${bucket.hour}: ${(100 * bucket.utilization).toFixed(1)} %, ${bucket.leases} leases`;
    bar.appendChild(tip);
    svg.appendChild(bar);
  });
  const base = document.createElementNS("http://www.w3.org/2000/svg", "line");
  for (const [k, v] of Object.entries({ x1: 0, y1: 105, x2: 480, y2: 105 })) base.setAttribute(k, String(v));
  svg.appendChild(base);
  const label = document.createElementNS("http://www.w3.org/2000/svg", "text");
  label.setAttribute("x", "2");
  label.setAttribute("y", "117");
  label.textContent = "24 h ago → now (bar: share of device time leased)";
  svg.appendChild(label);
}

function renderEvents(events) {
  const list = $("#events");
  list.replaceChildren();
  for (const event of events) {
    const item = document.createElement("li");
    item.textContent = `${new Date(event.occurredAt).toLocaleTimeString()} ${event.type} ${event.aggregateId}`;
    list.appendChild(item);
  }
}

async function refresh() {
  try {
    const [nodes, queue, leases, trend, events] = await Promise.all([
      api("GET", "/scheduler/nodes"),
      api("GET", "/scheduler/queue?status=waiting&limit=100"),
      api("GET", "/scheduler/allocations?status=active&limit=100"),
      api("GET", "/scheduler/cluster/usage-trend?hours=24"),
      api("GET", "/scheduler/events?limit=30"),
    ]);
    renderFleet(nodes);
    renderQueue(queue.items);
    renderLeases(leases.items);
    renderUtilization(trend.buckets || trend);
    renderEvents(events);
    $("#refreshed").textContent = `as of ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      logout(error.status === 401 ? "That token is not valid." : "That token is not an admin's.");
      return;
    }
    notice(`Refresh failed: ${error.message}`);
  }
}

function show(loggedIn) {
  $("#login").hidden = loggedIn;
  $("#dashboard").hidden = !loggedIn;
  $("#logout").hidden = !loggedIn;
  clearInterval(timer);
  if (loggedIn) {
    refresh();
    timer = setInterval(refresh, REFRESH_MS);
  }
}

function logout(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  $("#login-error").textContent = reason || "";
  show(false);
}

$("#login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("#token").value.trim());
  $("#token").value = "";
  $("#login-error").textContent = "";
  show(true);
});
$("#logout").addEventListener("click", () => logout());
show(Boolean(token()));
