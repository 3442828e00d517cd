// The picture page: cookie login (POST /api/web/login), the live feed, the map, selection, cursor
// position, the measure tool and the panels. Client-sent text is only ever set with textContent.
import { Picture, openFeed } from "./live.js";
import { PictureMap } from "./map.js";
import { MeasureTool } from "./measure.js";
import { latLonText, mgrsText } from "./coords.js";
import { SHAPE_LAYERS, anchor, isDrawing } from "./shapes.js";
import { mountPanels } from "./panels/registry.js";
import { api, el } from "./api.js";
import "./panels/all.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const DISPLAY = params.get("display") === "1";  // a wall display renews even when nobody touches it
const DROP_AFTER_MS = Number(params.get("drop_s") || 300) * 1000;
// Page requests never meet a Basic challenge; writes carry the page's Origin (checked by the server).
const PAGE = { "X-Requested-With": "rallypoint-web" };
const REFUSALS = { bad_credentials: "wrong user name or password",
                   locked: "account locked after repeated failures: try again later",
                   disabled: "account disabled" };
const REVOKED = "session expired or revoked: log in again";

// Picture messages go to the map; every other kind of live message goes to the panels that asked for it.
const PICTURE_MESSAGES = new Set(["FeatureCollection", "Feature", "Delete"]);
const liveHandlers = new Map();
const state = { socket: null, selected: null, framed: false, pending: false, renewTimer: null, active: false,
                firstSymbolsAt: null };
const picture = new Picture({ dropAfterMs: DROP_AFTER_MS, onChange: schedule });
const view = new PictureMap($("map"));
// For people debugging from the console and for the browser tests.
window.rallypoint = { picture, view, state, select: (id) => { state.selected = id; showSelected(); } };

function status(text) { $("status").textContent = text; }

// Drawing is at most every RENDER_GAP_MS: units report about once a second, and each redraw re-clusters
// and re-places every symbol, so drawing on every message would starve the frames of a busy picture.
const RENDER_GAP_MS = 400;
let lastRender = 0;

function schedule() {
  if (state.pending) return;
  state.pending = true;
  const wait = Math.max(0, lastRender + RENDER_GAP_MS - performance.now());
  setTimeout(() => requestAnimationFrame(async () => {
    await view.ready;
    state.pending = false;
    lastRender = performance.now();
    if (!state.framed) state.framed = view.frame(picture);
    const drawn = view.render(picture, Date.now());
    if (drawn && state.firstSymbolsAt === null) state.firstSymbolsAt = performance.now();
    showSelected();
  }), wait);
}

function showSelected() {
  const unit = state.selected && picture.units.get(state.selected);
  $("selected-none").hidden = Boolean(unit);
  $("selected-details").hidden = !unit;
  if (!unit) return;
  const f = unit.feature, p = f.properties;
  $("sel-callsign").textContent = p.callsign || f.id;
  $("sel-type").textContent = p.type || "";
  // A unit's point; a drawing's marker point or the middle of its shape (where its label is).
  const at = f.geometry && (isDrawing(f) ? anchor(f.geometry) : f.geometry.coordinates);
  if (at) {
    const [lon, lat] = at;
    $("sel-latlon").textContent = latLonText(lat, lon);
    $("sel-mgrs").textContent = mgrsText(lat, lon);
  }
  // Only drawings carry their remarks in the live feed (docs/api.md); shown as text, line breaks kept.
  const remarks = typeof p.remarks === "string" ? p.remarks : "";
  $("sel-remarks").textContent = remarks;
  $("sel-remarks").hidden = $("sel-remarks-label").hidden = !remarks;
  $("sel-time").textContent = new Date(p.time_ms).toLocaleTimeString()
    + (picture.isStale(unit, Date.now()) ? " (stale)" : "");
}

view.map.on("click", "units", (e) => { state.selected = e.features[0].properties.id; showSelected(); });
// A drawing under the click is selected unless a unit is there too (units are drawn over drawings).
view.ready.then(() => view.map.on("click", (e) => {
  const map = view.map;
  if (map.queryRenderedFeatures(e.point, { layers: ["units", "clusters"] }).length) return;
  const [hit] = map.queryRenderedFeatures(e.point, { layers: SHAPE_LAYERS });
  if (hit) { state.selected = hit.properties.id; showSelected(); }
}));
view.map.on("mousemove", (e) => {
  const { lat, lng } = e.lngLat.wrap();
  $("cursor").textContent = `${latLonText(lat, lng)}  ${mgrsText(lat, lng)}`;
});
new MeasureTool({ map: view.map, button: $("measure"), output: $("measured"),
                  onLine: (points) => view.ready.then(() => view.showMeasure(points)) });

// Stale units grey and, later, leave even when nothing new arrives.
setInterval(() => { picture.expire(Date.now()); schedule(); }, 1000);

function connect() {
  disconnect();
  status("connecting…");
  const ws = openFeed({
    onMessage: (message) => {
      if (PICTURE_MESSAGES.has(message.type)) picture.apply(message);
      else for (const handler of liveHandlers.get(message.type) || []) handler(message);
    },
    onState: (what, code) => {
      if (state.socket !== ws) return;
      if (what === "open") { status("live"); $("logout").hidden = false; return; }
      state.socket = null;
      status({ 4401: REVOKED, 4403: "access refused", 1001: "server went away" }[code]
              || `disconnected (${code || "refused"})`);
    },
  });
  state.socket = ws;
}

function disconnect() {
  if (state.socket) {
    const ws = state.socket;
    state.socket = null;
    ws.close(1000);
  }
  status("not connected");
}

// The session lives in an HttpOnly cookie: the page never sees the token. It renews at two thirds of
// the token's lifetime when someone used the page since the last renewal.
function scheduleRenewal(expiresIn) {
  clearTimeout(state.renewTimer);
  state.active = false;
  state.renewTimer = setTimeout(renew, Math.max(1, expiresIn * 2 / 3) * 1000);
}

async function renew() {
  if (!state.active && !DISPLAY) return;
  const answer = await fetch("/api/web/renew", { method: "POST", headers: PAGE }).catch(() => null);
  if (answer && answer.ok) scheduleRenewal((await answer.json()).expires_in);
  else if (answer && (answer.status === 401 || answer.status === 403)) { disconnect(); status(REVOKED); }
  else state.renewTimer = setTimeout(renew, 5000);
}
for (const name of ["pointerdown", "keydown", "wheel", "touchstart"]) {
  window.addEventListener(name, () => { state.active = true; }, { passive: true });
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new URLSearchParams({ grant_type: "password", username: $("user").value,
                                     password: $("password").value });
  $("password").value = "";
  status("logging in…");
  const answer = await fetch("/api/web/login", { method: "POST", headers: PAGE, body: form }).catch(() => null);
  if (!answer) { status("cannot reach the server"); return; }
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) { status(REFUSALS[body.reason] || `login refused (${answer.status})`); return; }
  scheduleRenewal(body.expires_in);
  connect();
});
$("direct").addEventListener("click", connect);
$("logout").addEventListener("click", async () => {
  clearTimeout(state.renewTimer);
  await fetch("/api/web/logout", { method: "POST", headers: PAGE }).catch(() => null);
  disconnect();
  $("logout").hidden = true;
});

function onLive(kind, handler) {
  if (!liveHandlers.has(kind)) liveHandlers.set(kind, []);
  liveHandlers.get(kind).push(handler);
}
mountPanels($("panels"), { picture, view, state, api, el, onLive, select: window.rallypoint.select });

// A page reloaded with a live session cookie reconnects at once; so does #connect (client certificate).
fetch("/api/web/session", { headers: PAGE }).then(async (answer) => {
  if (answer.ok) {
    const body = await answer.json();
    if (body.cookie) { scheduleRenewal(body.expires_in); connect(); return; }
  }
  if (location.hash === "#connect") connect();
}).catch(() => {});
