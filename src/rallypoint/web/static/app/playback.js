// Playback of stored history, shared by the replay page (/replay) and the picture's Replay panel:
// a window of GET /api/replay read a page at a time, tracks by uid, where each unit is at a given time,
// and the play clock (1×–60×). Nothing here touches the page: callers draw.

export const PAGE_SIZE = 5000;
export const MAX_EVENTS = 100000;  // the same cap as an export: past it, ask for a smaller window

// datetime-local inputs hold UTC (the pages say so): no local-zone surprises between operators.
export function toInput(ms) { return new Date(ms).toISOString().slice(0, 19); }
export function fromInput(text) { return text ? Date.parse(`${text.length === 16 ? `${text}:00` : text}Z`) : NaN; }
export function utcLabel(ms) { return `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")} UTC`; }

/**
 * The query of a window: ``since`` and ``until`` in epoch ms, ``bbox`` [west, south, east, north] or
 * null (west > east crosses the antimeridian). Throws an Error that says what is wrong.
 */
export function windowQuery(since, until, bbox) {
  if (Number.isNaN(since) || Number.isNaN(until)) throw new Error("give both times of the window");
  if (until <= since) throw new Error("the window must end after it starts");
  const query = new URLSearchParams({ since: String(since), until: String(until) });
  if (bbox) {
    if (bbox.length !== 4 || bbox.some((v) => !Number.isFinite(v))) throw new Error("area: west,south,east,north");
    query.set("bbox", bbox.join(","));
    if (bbox[0] > bbox[2]) query.set("antimeridian", "true");
  }
  return query;
}

/** The server's reason for refusing a request (its JSON ``detail``), else the status. */
export async function refusal(answer) {
  try {
    const body = await answer.json();
    return body.detail || body.error || `refused (${answer.status})`;
  } catch (err) {
    return `refused (${answer.status})`;
  }
}

/** Every event of the window, oldest first, following the API's cursor; ``onProgress(count)`` per page. */
export async function fetchWindow(query, { headers = {}, onProgress = () => {} } = {}) {
  const events = [];
  let cursor = null;
  do {
    const params = new URLSearchParams(query);
    params.set("limit", String(PAGE_SIZE));
    if (cursor) params.set("cursor", cursor);
    const answer = await fetch(`/api/replay?${params}`, { headers, credentials: "same-origin" });
    if (!answer.ok) throw new Error(answer.status === 401 ? "log in first" : await refusal(answer));
    const page = await answer.json();
    events.push(...page.events);
    onProgress(events.length);
    if (events.length > MAX_EVENTS) throw new Error(`more than ${MAX_EVENTS} events: choose a shorter window or a smaller area`);
    cursor = page.truncated ? page.next : null;
  } while (cursor);
  return events;
}

/** Tracks by uid, each a time-ordered list of reports ``{ t, stale, lat, lon }``; reports without a fix are left out. */
export function buildTracks(events) {
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

/** Index of the last report at or before t (-1 when the track has not started). */
export function before(reports, t) {
  let lo = 0;
  let hi = reports.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (reports[mid].t <= t) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
  }
  return found;
}

/** Where a track is at t: between two reports, moved along the straight line joining them. */
export function positionAt(reports, i, t) {
  const a = reports[i];
  const b = reports[i + 1];
  if (!b || b.t === a.t) return a;
  const f = (t - a.t) / (b.t - a.t);
  return { t, stale: a.stale, lat: a.lat + (b.lat - a.lat) * f, lon: a.lon + (b.lon - a.lon) * f };
}

/** Each track at ``t``: ``{ track, here, index, past }`` (past: its last report is stale by then). */
export function* statesAt(tracks, t) {
  for (const track of tracks.values()) {
    const index = before(track.reports, t);
    if (index < 0) continue;
    yield { track, index, here: positionAt(track.reports, index, t), past: t > track.reports[index].stale };
  }
}

/**
 * The play clock: ``now`` runs from ``first`` to ``last`` at ``speed()`` times real time while playing;
 * ``onTick(now)`` after every step, ``onState(playing)`` when it starts or stops.
 */
export class PlayClock {
  constructor({ speed, onTick, onState = () => {} }) {
    this.speed = speed;
    this.onTick = onTick;
    this.onState = onState;
    this.first = 0;
    this.last = 0;
    this.now = 0;
    this.playing = false;
    this.lastFrame = null;
  }

  load(first, last) {
    this.set(false);
    this.first = first;
    this.last = last;
    this.now = first;
  }

  seek(t) { this.now = Math.min(Math.max(t, this.first), this.last); this.onTick(this.now); }

  toggle() {
    if (!this.playing && this.now >= this.last) this.now = this.first;
    this.set(!this.playing);
  }

  set(on) {
    this.playing = on;
    this.lastFrame = null;
    this.onState(on);
    if (on) requestAnimationFrame((ts) => this.frame(ts));
  }

  frame(ts) {
    if (!this.playing) return;
    if (this.lastFrame !== null) this.now = Math.min(this.last, this.now + (ts - this.lastFrame) * this.speed());
    this.lastFrame = ts;
    this.onTick(this.now);
    if (this.now >= this.last) { this.set(false); return; }
    requestAnimationFrame((t) => this.frame(t));
  }
}
