// The replay player: a window of stored history (GET /api/replay, a page at a time), a time slider,
// play/pause at 1×–60×, trails, and exports of the same window (GET /api/replay/export).
// Every string from the server is set as text (textContent, attribute values), never parsed as markup.

const PAGE = { "X-Requested-With": "rallypoint-replay" };  // no Basic challenge for the page's requests
const PAGE_SIZE = 5000;
const MAX_EVENTS = 100000;  // the same cap as an export: past it, ask for a smaller window
const SVG_NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

let token = null;
// The loaded window: tracks by uid, each a time-ordered list of reports.
let replay = { tracks: new Map(), first: 0, last: 0, query: null };
let now = 0;
let playing = false;
let lastFrame = null;

function status(text) { $("status").textContent = text; }

function headers() {
  return token ? { ...PAGE, Authorization: `Bearer ${token}` } : { ...PAGE };
}

// datetime-local inputs hold UTC here (the page says so): no local-zone surprises between operators.
function toInput(ms) { return new Date(ms).toISOString().slice(0, 19); }
function fromInput(text) { return text ? Date.parse(`${text.length === 16 ? `${text}:00` : text}Z`) : NaN; }
function label(ms) { return `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")} UTC`; }

function windowQuery() {
  const since = fromInput($("since").value);
  const until = fromInput($("until").value);
  if (Number.isNaN(since) || Number.isNaN(until)) throw new Error("give both times of the window");
  if (until <= since) throw new Error("the window must end after it starts");
  const query = new URLSearchParams({ since: String(since), until: String(until) });
  const bbox = $("bbox").value.trim();
  if (bbox) {
    const parts = bbox.split(",").map(Number);
    if (parts.length !== 4 || parts.some((v) => !Number.isFinite(v))) throw new Error("area: west,south,east,north");
    query.set("bbox", parts.join(","));
    if (parts[0] > parts[2]) query.set("antimeridian", "true");
  }
  return query;
}

async function refusal(answer) {
  try {
    const body = await answer.json();
    return body.detail || body.error || `refused (${answer.status})`;
  } catch (err) {
    return `refused (${answer.status})`;
  }
}

async function fetchWindow(query) {
  const events = [];
  let cursor = null;
  do {
    const params = new URLSearchParams(query);
    params.set("limit", String(PAGE_SIZE));
    if (cursor) params.set("cursor", cursor);
    const answer = await fetch(`/api/replay?${params}`, { headers: headers() });
    if (!answer.ok) throw new Error(answer.status === 401 ? "log in first" : await refusal(answer));
    const page = await answer.json();
    events.push(...page.events);
    status(`loading… ${events.length} events`);
    if (events.length > MAX_EVENTS) throw new Error(`more than ${MAX_EVENTS} events: choose a shorter window or a smaller area`);
    cursor = page.truncated ? page.next : null;
  } while (cursor);
  return events;
}

function buildTracks(events) {
  const tracks = new Map();
  for (const ev of events) {
    const p = ev.position;
    if (!p) continue;  // a report without a fix has no place on the map
    let track = tracks.get(ev.uid);
    if (!track) {
      track = { uid: ev.uid, callsign: ev.callsign || ev.uid, type: ev.type, reports: [] };
      tracks.set(ev.uid, track);
    }
    if (ev.callsign) track.callsign = ev.callsign;
    track.type = ev.type;
    track.reports.push({ t: ev.time_ms, stale: ev.stale_ms, lat: p.lat, lon: p.lon });
  }
  return tracks;
}

// Index of the last report at or before t (-1 when the track has not started).
function before(reports, t) {
  let lo = 0;
  let hi = reports.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (reports[mid].t <= t) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
  }
  return found;
}

// Where a track is at t: between two reports, moved along the straight line joining them.
function positionAt(reports, i, t) {
  const a = reports[i];
  const b = reports[i + 1];
  if (!b || b.t === a.t) return a;
  const f = (t - a.t) / (b.t - a.t);
  return { t, stale: a.stale, lat: a.lat + (b.lat - a.lat) * f, lon: a.lon + (b.lon - a.lon) * f };
}

function extent() {
  let w = Infinity; let s = Infinity; let e = -Infinity; let n = -Infinity;
  for (const track of replay.tracks.values()) {
    for (const r of track.reports) {
      w = Math.min(w, r.lon); e = Math.max(e, r.lon); s = Math.min(s, r.lat); n = Math.max(n, r.lat);
    }
  }
  if (!Number.isFinite(w)) return null;
  const pad = Math.max(e - w, n - s, 0.01) * 0.08;
  return { w: w - pad, s: s - pad, e: e + pad, n: n + pad };
}

function svg(name, attrs) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function draw() {
  const map = $("map");
  const box = replay.box;
  const shapes = [];
  if (box) {
    const rect = map.getBoundingClientRect();
    const kx = Math.cos(((box.s + box.n) / 2) * Math.PI / 180);
    const scale = Math.min(rect.width / ((box.e - box.w) * kx), rect.height / (box.n - box.s));
    const project = (r) => [((r.lon - box.w) * kx * scale).toFixed(1), ((box.n - r.lat) * scale).toFixed(1)];
    const trails = $("trails").checked;
    for (const track of replay.tracks.values()) {
      const i = before(track.reports, now);
      if (i < 0) continue;
      const here = positionAt(track.reports, i, now);
      if (trails && i > 0) {
        const points = track.reports.slice(0, i + 1).map(project);
        points.push(project(here));
        shapes.push(svg("polyline", { class: "trail", points: points.map((p) => p.join(",")).join(" ") }));
      }
      const [x, y] = project(here);
      const past = now > track.reports[i].stale;
      const g = svg("g", { class: `unit${track.type.startsWith("a-h") ? " hostile" : ""}${past ? " past" : ""}`,
                           transform: `translate(${x},${y})`, "data-uid": track.uid });
      g.append(svg("circle", { r: 6 }));
      const text = svg("text", { x: 9, y: 4 });
      text.textContent = track.callsign;
      g.append(text);
      shapes.push(g);
    }
  }
  map.replaceChildren(...shapes);
  $("slider").value = String(now);
  $("clock").textContent = replay.tracks.size ? label(now) : "--";
}

function listUnits() {
  const items = [...replay.tracks.values()].map((track) => {
    const li = document.createElement("li");
    li.textContent = `${track.callsign} (${track.reports.length})`;
    li.title = track.uid;
    return li;
  });
  $("units").replaceChildren(...items);
  $("count").textContent = String(items.length);
}

function setPlaying(on) {
  playing = on;
  lastFrame = null;
  $("play").textContent = on ? "Pause" : "Play";
  $("play").setAttribute("aria-pressed", String(on));
  if (on) requestAnimationFrame(frame);
}

function frame(ts) {
  if (!playing) return;
  if (lastFrame !== null) now = Math.min(replay.last, now + (ts - lastFrame) * Number($("speed").value));
  lastFrame = ts;
  draw();
  if (now >= replay.last) { setPlaying(false); return; }
  requestAnimationFrame(frame);
}

async function load(event) {
  event.preventDefault();
  setPlaying(false);
  let query;
  try { query = windowQuery(); } catch (err) { status(err.message); return; }
  status("loading…");
  let events;
  try { events = await fetchWindow(query); } catch (err) { status(err.message || "cannot reach the server"); return; }
  const tracks = buildTracks(events);
  // The API answers oldest first: the window's ends are its first and last events.
  const first = events.length ? events[0].time_ms : 0;
  const last = events.length ? events[events.length - 1].time_ms : 0;
  replay = { tracks, query, first, last, box: null };
  replay.box = extent();
  const ready = tracks.size > 0;
  now = ready ? replay.first : 0;
  $("slider").min = String(replay.first || 0);
  $("slider").max = String(replay.last || 0);
  for (const el of [$("play"), $("slider"), ...document.querySelectorAll(".export")]) el.disabled = !ready;
  listUnits();
  draw();
  status(ready ? `${events.length} events, ${tracks.size} units` : "nothing in this window and area");
}

async function exportWindow(button) {
  if (!replay.query) return;
  const params = new URLSearchParams(replay.query);
  params.set("format", button.dataset.format);
  status(`exporting ${button.dataset.format}…`);
  const answer = await fetch(`/api/replay/export?${params}`, { headers: headers() });
  if (!answer.ok) { status(await refusal(answer)); return; }
  const name = /filename="([^"]+)"/.exec(answer.headers.get("content-disposition") || "");
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await answer.blob());
  link.download = name ? name[1] : `replay.${button.dataset.format}`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  status(`exported ${link.download}`);
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new URLSearchParams({ grant_type: "password", username: $("user").value, password: $("password").value });
  $("password").value = "";
  let answer;
  try { answer = await fetch("/oauth/token", { method: "POST", headers: PAGE, body: form }); } catch (err) {
    status("cannot reach the server");
    return;
  }
  if (!answer.ok) { status(`login refused: ${await refusal(answer)}`); return; }
  token = (await answer.json()).access_token;
  status(`logged in as ${$("user").value}`);
});
$("window").addEventListener("submit", load);
$("play").addEventListener("click", () => {
  if (!playing && now >= replay.last) now = replay.first;
  setPlaying(!playing);
});
$("slider").addEventListener("input", () => { now = Number($("slider").value); draw(); });
$("trails").addEventListener("change", draw);
for (const button of document.querySelectorAll(".export")) button.addEventListener("click", () => exportWindow(button));
window.addEventListener("resize", () => requestAnimationFrame(draw));

// ?since=…&until=…&bbox=… (ISO 8601 or epoch ms) fills the form: a window can be bookmarked and shared.
const given = new URLSearchParams(location.search);
const asMs = (v) => (/^\d+$/.test(v) ? Number(v) : Date.parse(v));
const wanted = { since: asMs(given.get("since") || ""), until: asMs(given.get("until") || "") };
const end = Number.isFinite(wanted.until) ? wanted.until : Date.now();
$("until").value = toInput(end);
$("since").value = toInput(Number.isFinite(wanted.since) ? wanted.since : end - 3600 * 1000);
if (given.get("bbox")) $("bbox").value = given.get("bbox");
draw();
