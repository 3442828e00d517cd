// The replay player: a window of stored history (GET /api/replay, a page at a time), a time slider,
// play/pause at 1×–60×, trails, and exports of the same window (GET /api/replay/export).
// Every string from the server is set as text (textContent, attribute values), never parsed as markup.

import {
  PlayClock, buildTracks, fetchWindow, fromInput, refusal, statesAt, toInput, utcLabel, windowQuery,
} from "/web/app/playback.js";

const PAGE = { "X-Requested-With": "rallypoint-replay" };  // no Basic challenge for the page's requests
const SVG_NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

let token = null;
// The loaded window: tracks by uid, each a time-ordered list of reports.
let replay = { tracks: new Map(), query: null, box: null };
const clock = new PlayClock({
  speed: () => Number($("speed").value),
  onTick: () => draw(),
  onState: (on) => {
    $("play").textContent = on ? "Pause" : "Play";
    $("play").setAttribute("aria-pressed", String(on));
  },
});

function status(text) { $("status").textContent = text; }

function headers() {
  return token ? { ...PAGE, Authorization: `Bearer ${token}` } : { ...PAGE };
}

function formQuery() {
  const bbox = $("bbox").value.trim();
  return windowQuery(fromInput($("since").value), fromInput($("until").value),
                     bbox ? bbox.split(",").map(Number) : null);
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
    for (const { track, index: i, here, past } of statesAt(replay.tracks, clock.now)) {
      if (trails && i > 0) {
        const points = track.reports.slice(0, i + 1).map(project);
        points.push(project(here));
        shapes.push(svg("polyline", { class: "trail", points: points.map((p) => p.join(",")).join(" ") }));
      }
      const [x, y] = project(here);
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
  $("slider").value = String(clock.now);
  $("clock").textContent = replay.tracks.size ? utcLabel(clock.now) : "--";
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

async function load(event) {
  event.preventDefault();
  clock.set(false);
  let query;
  try { query = formQuery(); } catch (err) { status(err.message); return; }
  status("loading…");
  let events;
  try {
    events = await fetchWindow(query, { headers: headers(), onProgress: (n) => status(`loading… ${n} events`) });
  } catch (err) { status(err.message || "cannot reach the server"); return; }
  const tracks = buildTracks(events);
  // The API answers oldest first: the window's ends are its first and last events.
  const first = events.length ? events[0].time_ms : 0;
  const last = events.length ? events[events.length - 1].time_ms : 0;
  replay = { tracks, query, box: null };
  replay.box = extent();
  const ready = tracks.size > 0;
  clock.load(ready ? first : 0, ready ? last : 0);
  $("slider").min = String(first);
  $("slider").max = String(last);
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
$("play").addEventListener("click", () => clock.toggle());
$("slider").addEventListener("input", () => clock.seek(Number($("slider").value)));
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
