// A first live picture: logs in for a token (POST /oauth/token) or relies on the client certificate,
// opens /api/live and draws every feature at its longitude and latitude. No libraries, no network
// beyond this server.
"use strict";

const SUBPROTOCOL = "rallypoint.live.v1";
const SVG = "http://www.w3.org/2000/svg";
const COLOURS = { f: "#1e6fd9", a: "#1e6fd9", h: "#d62728", s: "#d62728", j: "#d62728", k: "#d62728",
                  n: "#2ca02c", u: "#d4b000", p: "#d4b000" };

const features = new Map();
let socket = null;
let drawPending = false;

const $ = (id) => document.getElementById(id);

function status(text) { $("status").textContent = text; }

function colour(type) {
  const parts = (type || "").split("-");
  return parts[0] === "a" ? (COLOURS[parts[1]] || "#777") : "#8c564b";
}

function isStale(f) { return f.properties.stale_ms <= Date.now(); }

// A report without a position fix (geometry null, properties.no_fix) leaves the unit where it was last
// seen, marked as such; a unit never seen with a fix is listed but not drawn (never at 0,0).
function lastKnown(f, previous) {
  if (f.geometry || !previous || !previous.geometry) return f;
  return { ...f, geometry: previous.geometry };
}

function apply(message) {
  if (message.type === "FeatureCollection") {
    const before = new Map(features);
    features.clear();
    for (const f of message.features) features.set(f.id, lastKnown(f, before.get(f.id)));
  } else if (message.type === "Feature") {
    features.set(message.id, lastKnown(message, features.get(message.id)));
  } else if (message.type === "Delete") {
    features.delete(message.id);
  }
  if (!drawPending) {
    drawPending = true;
    requestAnimationFrame(draw);
  }
}

function niceStep(span) {
  const raw = span / 6;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function draw() {
  drawPending = false;
  const svg = $("map");
  const width = svg.clientWidth || 800, height = svg.clientHeight || 600, pad = 30, left = 75;
  const all = [...features.values()], placed = all.filter((f) => f.geometry);
  let [minLon, maxLon, minLat, maxLat] = [-180, 180, -85, 85];
  if (placed.length) {
    const lons = placed.map((f) => f.geometry.coordinates[0]), lats = placed.map((f) => f.geometry.coordinates[1]);
    [minLon, maxLon, minLat, maxLat] = [Math.min(...lons), Math.max(...lons), Math.min(...lats), Math.max(...lats)];
  }
  // At least ~1 km across, with a margin, and the same ground scale on both axes (equirectangular).
  const midLat = (minLat + maxLat) / 2, k = Math.max(Math.cos(midLat * Math.PI / 180), 0.05);
  let spanLon = Math.max(maxLon - minLon, 0.01) * 1.2, spanLat = Math.max(maxLat - minLat, 0.01) * 1.2;
  const scale = Math.min((width - left - pad) / (spanLon * k), (height - 2 * pad) / spanLat);
  spanLon = (width - left - pad) / (scale * k);
  spanLat = (height - 2 * pad) / scale;
  const west = (minLon + maxLon) / 2 - spanLon / 2, south = (minLat + maxLat) / 2 - spanLat / 2;
  const x = (lon) => left + (lon - west) * scale * k;
  const y = (lat) => height - pad - (lat - south) * scale;

  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const stepLon = niceStep(spanLon), stepLat = niceStep(spanLat);
  const digits = (step) => Math.max(0, -Math.floor(Math.log10(step)));
  for (let lon = Math.ceil(west / stepLon) * stepLon; lon <= west + spanLon; lon += stepLon) {
    svg.append(el("line", { class: "axis", x1: x(lon), x2: x(lon), y1: pad, y2: height - pad }));
    svg.append(el("text", { class: "tick", x: x(lon), y: height - pad + 14, "text-anchor": "middle" },
                  `${lon.toFixed(digits(stepLon))}°`));
  }
  for (let lat = Math.ceil(south / stepLat) * stepLat; lat <= south + spanLat; lat += stepLat) {
    svg.append(el("line", { class: "axis", x1: left, x2: width - pad, y1: y(lat), y2: y(lat) }));
    svg.append(el("text", { class: "tick", x: left - 4, y: y(lat) + 4, "text-anchor": "end" },
                  `${lat.toFixed(digits(stepLat))}°`));
  }
  for (const f of placed) {
    const [lon, lat] = f.geometry.coordinates, p = f.properties;
    const g = el("g", { class: isStale(f) ? "stale" : p.no_fix ? "nofix" : "" });
    const dot = el("circle", { cx: x(lon), cy: y(lat), r: p.kind === "client" ? 6 : 4, fill: colour(p.type) });
    const where = `${lat.toFixed(5)}, ${lon.toFixed(5)}${p.no_fix ? " (last known: no GPS fix now)" : ""}`;
    dot.append(el("title", {}, `${p.callsign || f.id}\n${p.type}\n${where}`));
    g.append(dot, el("text", { class: "label", x: x(lon) + 8, y: y(lat) + 4 }, p.callsign || ""));
    svg.append(g);
  }
  listUnits(all);
}

function listUnits(all) {
  const rows = all
    .sort((a, b) => (a.properties.callsign || a.id).localeCompare(b.properties.callsign || b.id))
    .map((f) => {
      const p = f.properties, tr = document.createElement("tr");
      const where = f.geometry ? [f.geometry.coordinates[1].toFixed(5), f.geometry.coordinates[0].toFixed(5)] : ["–", "–"];
      if (isStale(f) || p.no_fix) tr.className = "stale";
      for (const text of [(p.callsign || f.id) + (p.no_fix ? " (no GPS fix)" : ""), p.type, ...where,
                          new Date(p.time_ms).toLocaleTimeString()]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    });
  $("units").replaceChildren(...rows);
  $("count").textContent = String(all.length);
}

// Token renewal: a logged-in page renews its token when two thirds of its lifetime have passed, if
// someone used the page since the last renewal or the page is a display (/map?display=1), and hands
// the new token to the open feed. An idle page lets its token lapse and asks for a new login.
const DISPLAY = new URLSearchParams(location.search).get("display") === "1";
const PAGE = { "X-Requested-With": "rallypoint-map" };  // no Basic challenge for the page's requests
let session = null;  // { token, expiresAt, timer, active }
const REVOKED = "session expired or revoked: log in again";

function startSession(token, expiresIn) {
  endSession(false);
  session = { token, expiresAt: 0, timer: null, active: false };
  scheduleRenewal(expiresIn);
  connect(token);
}

function scheduleRenewal(expiresIn) {
  session.expiresAt = Date.now() + expiresIn * 1000;
  const delay = Math.max(1, expiresIn * 2 / 3) * 1000;
  session.timer = setTimeout(renew, delay);
}

// A renewal that failed for want of the server (unreachable, a proxy's 502, busy) is tried again
// while the token still lives, more often as its expiry nears; only a refusal (401/403) ends the session.
function retryRenewal(current) {
  const left = current.expiresAt - Date.now();
  current.timer = setTimeout(renew, Math.max(250, Math.min(5000, left / 3)));
}

async function renew() {
  const current = session;
  if (!current) return;
  if (!DISPLAY && !current.active) return;  // idle: let the token lapse
  let answer;
  try {
    answer = await fetch("/api/auth/token/renew", {
      method: "POST", headers: { ...PAGE, Authorization: `Bearer ${current.token}` } });
  } catch (err) {
    if (session === current) retryRenewal(current);
    return;
  }
  if (session !== current) return;
  if (answer.status === 401 || answer.status === 403) {
    // Revoked, expired or disabled: stop showing a feed the server is about to cut.
    endSession(false);
    disconnect();
    status(REVOKED);
    return;
  }
  if (!answer.ok) { retryRenewal(current); return; }
  const body = await answer.json();
  current.token = body.access_token;
  current.active = false;
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: "token", token: current.token }));
  }
  scheduleRenewal(body.expires_in);
}

function endSession(revoke) {
  if (!session) return;
  clearTimeout(session.timer);
  if (revoke) {
    fetch("/api/auth/token", { method: "DELETE", headers: { ...PAGE, Authorization: `Bearer ${session.token}` } })
      .catch(() => {});
  }
  session = null;
}

for (const name of ["pointerdown", "pointermove", "keydown", "wheel", "touchstart"]) {
  window.addEventListener(name, () => { if (session) session.active = true; }, { passive: true });
}

function connect(token) {
  disconnect();
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/live`;
  const protocols = token ? [SUBPROTOCOL, `bearer.${token}`] : [SUBPROTOCOL];
  const ws = new WebSocket(url, protocols);
  socket = ws;
  status("connecting…");
  ws.onopen = () => {
    status(DISPLAY ? "live (display)" : "live");
    $("logout").hidden = false;
    // A renewal that happened while connecting: the feed must re-check with the newest token.
    if (session && session.token !== token) ws.send(JSON.stringify({ type: "token", token: session.token }));
  };
  ws.onmessage = (event) => apply(JSON.parse(event.data));
  ws.onclose = (event) => {
    if (socket !== ws) return;
    socket = null;
    $("logout").hidden = true;
    const why = { 4401: REVOKED, 4403: "access refused",
                  1001: "server went away" }[event.code];
    if (event.code === 4401 || event.code === 4403) endSession(false);
    status(why || `disconnected (${event.code || "refused"})`);
    // A display reconnects by itself after the server went away (its token is still renewed).
    if (DISPLAY && event.code !== 4401 && event.code !== 4403) {
      setTimeout(() => { if (!socket) connect(session ? session.token : token); }, 5000);
    }
  };
}

function disconnect() {
  if (socket) {
    const ws = socket;
    socket = null;
    ws.close(1000);
  }
  status("not connected");
  $("logout").hidden = true;
}

// What a refused login says: the token endpoint's reason, in words.
const REFUSALS = { bad_credentials: "wrong user name or password",
                   locked: "account locked after repeated failures: try again later",
                   disabled: "account disabled" };

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new URLSearchParams({ grant_type: "password", username: $("user").value,
                                     password: $("password").value });
  $("password").value = "";
  status("logging in…");
  let answer;
  try {
    answer = await fetch("/oauth/token", { method: "POST", headers: PAGE, body: form });
  } catch (err) {
    status("cannot reach the server");
    return;
  }
  let body = {};
  try { body = await answer.json(); } catch (err) { body = {}; }
  if (!answer.ok) {
    status(REFUSALS[body.reason] || `login refused (${answer.status})`);
    return;
  }
  startSession(body.access_token, body.expires_in);
});
$("direct").addEventListener("click", () => { endSession(true); connect(null); });
$("logout").addEventListener("click", () => { endSession(true); disconnect(); });
window.addEventListener("resize", () => requestAnimationFrame(draw));
setInterval(() => requestAnimationFrame(draw), 5000);  // grey out items as they go stale
draw();
// /map#connect connects at once (bookmark it on a device that holds a client certificate).
if (location.hash === "#connect") connect(null);
