// Replay in the picture: pick a window (UTC) and, by default, the map's current view as the area; the
// main map then plays stored history (GET /api/replay) at 1×–60× with a time slider and trails, under a
// REPLAY badge, while the live picture keeps arriving unseen; "Back to live" returns to it. Exports of
// the same window: GET /api/replay/export (KML, GeoJSON, CSV). The loading and play logic is the replay
// page's own (app/playback.js).
import { registerPanel } from "./registry.js";
import {
  PlayClock, buildTracks, fetchWindow, fromInput, statesAt, toInput, utcLabel, windowQuery,
} from "../playback.js";

const SPEEDS = [1, 2, 5, 10, 30, 60];
const FORMATS = [["kml", "KML"], ["geojson", "GeoJSON"], ["csv", "CSV"]];

registerPanel({ id: "replay", title: "Replay", order: 20, mount });

function mount(body, { el, view }) {
  const now = Date.now();
  const field = (id, text, input) => [el("label", { text, attrs: { for: id } }), input];
  const since = el("input", { attrs: { id: "replay-since", type: "datetime-local", step: 1, value: toInput(now - 3600_000) } });
  const until = el("input", { attrs: { id: "replay-until", type: "datetime-local", step: 1, value: toInput(now) } });
  const inView = el("input", { attrs: { id: "replay-in-view", type: "checkbox", checked: "" } });
  const load = el("button", { text: "Load", attrs: { type: "button", id: "replay-load" } });
  const status = el("p", { attrs: { id: "replay-status", role: "status", "aria-live": "polite" } });
  const play = el("button", { text: "Play", attrs: { type: "button", id: "replay-play", "aria-pressed": "false", disabled: "" } });
  const speed = el("select", { attrs: { id: "replay-speed" } },
                   ...SPEEDS.map((v) => el("option", { text: `${v}×`, attrs: { value: v } })));
  speed.value = "10";
  const slider = el("input", { attrs: { id: "replay-slider", type: "range", min: 0, max: 0, step: 1000, value: 0,
                                        disabled: "" } });
  const clockText = el("output", { text: "--", attrs: { id: "replay-clock", for: "replay-slider" } });
  const trails = el("input", { attrs: { id: "replay-trails", type: "checkbox", checked: "" } });
  const live = el("button", { text: "Back to live", attrs: { type: "button", id: "replay-live", disabled: "" } });
  const exports = el("p", { cls: "replay-exports", attrs: { id: "replay-exports", hidden: "" } }, "Export: ");
  body.append(
    ...field("replay-since", "From (UTC)", since), ...field("replay-until", "Until (UTC)", until),
    el("label", { cls: "inline", attrs: { for: "replay-in-view" } }, inView, "Only the map's current view"),
    load, status,
    el("div", { cls: "kit-row" }, play, live),
    ...field("replay-speed", "Speed", speed), ...field("replay-slider", "Time", slider), clockText,
    el("label", { cls: "inline", attrs: { for: "replay-trails" } }, trails, "Trails"),
    exports,
  );

  let tracks = new Map();
  const clock = new PlayClock({
    speed: () => Number(speed.value),
    onTick: (t) => draw(t),
    onState: (on) => { play.textContent = on ? "Pause" : "Play"; play.setAttribute("aria-pressed", String(on)); },
  });

  function say(text, error = false) {
    status.textContent = text;
    status.className = error ? "panel-error" : "";
  }

  function draw(t) {
    view.showReplay(statesAt(tracks, t), t, trails.checked);
    slider.value = String(t);
    clockText.textContent = utcLabel(t);
  }

  function setLoaded(on) {
    play.disabled = slider.disabled = live.disabled = !on;
    exports.hidden = !on;
  }

  load.addEventListener("click", async () => {
    clock.set(false);
    let query;
    try {
      query = windowQuery(fromInput(since.value), fromInput(until.value), inView.checked ? view.viewBbox() : null);
    } catch (error) {
      say(error.message, true);
      return;
    }
    say("loading…");
    let events;
    try {
      events = await fetchWindow(query, { headers: { "X-Requested-With": "rallypoint-web" },
                                          onProgress: (n) => say(`loading… ${n} events`) });
    } catch (error) {
      say(error.message || "cannot reach the server", true);
      return;
    }
    tracks = buildTracks(events);
    if (!tracks.size) { say("nothing in this window and area"); return; }
    // The API answers oldest first: the window's ends are its first and last events.
    const first = events[0].time_ms, last = events[events.length - 1].time_ms;
    clock.load(first, last);
    slider.min = String(first);
    slider.max = String(last);
    exports.replaceChildren("Export: ", ...FORMATS.map(([format, text]) => {
      const params = new URLSearchParams(query);
      params.set("format", format);
      return el("a", { text, attrs: { href: `/api/replay/export?${params}`, download: "", class: "replay-export" } });
    }));
    setLoaded(true);
    await view.ready;
    draw(first);
    say(`${events.length} events, ${tracks.size} units: replaying`);
  });
  play.addEventListener("click", () => clock.toggle());
  slider.addEventListener("input", () => clock.seek(Number(slider.value)));
  trails.addEventListener("change", () => { if (view.replaying) draw(clock.now); });
  live.addEventListener("click", () => {
    clock.set(false);
    view.endReplay();
    setLoaded(false);
    say("back to the live picture");
  });
}
