// The live picture: what /api/live sends (a FeatureCollection, then one Feature or Delete at a time),
// kept per uid with a short trail. A unit past its stale time is greyed; DROP_AFTER_MS later it leaves.

const SUBPROTOCOL = "rallypoint.live.v1";
const TRAIL_POINTS = 30;

export class Picture {
  /** ``dropAfterMs``: how long a stale unit stays (greyed) before it is dropped. */
  constructor({ dropAfterMs = 300_000, onChange = () => {} } = {}) {
    this.units = new Map();  // id -> { feature, trail: [[lon, lat], ...] }
    this.dropAfterMs = dropAfterMs;
    this.onChange = onChange;
  }

  apply(message) {
    if (message.type === "FeatureCollection") {
      const before = this.units;
      this.units = new Map();
      for (const f of message.features) this.put(f, before.get(f.id));
    } else if (message.type === "Feature") {
      this.put(message, this.units.get(message.id));
    } else if (message.type === "Delete") {
      this.units.delete(message.id);
    }
    this.onChange();
  }

  // A report without a fix keeps the last known position; a unit never seen with one is not placed.
  put(feature, previous) {
    const trail = previous ? previous.trail : [];
    let geometry = feature.geometry;
    if (!geometry && previous) geometry = previous.feature.geometry;
    if (geometry && geometry.type === "Point") {
      const [lon, lat] = geometry.coordinates;
      const last = trail[trail.length - 1];
      if (!last || last[0] !== lon || last[1] !== lat) trail.push([lon, lat]);
      if (trail.length > TRAIL_POINTS) trail.splice(0, trail.length - TRAIL_POINTS);
    }
    this.units.set(feature.id, { feature: { ...feature, geometry }, trail });
  }

  isStale(unit, now) { return unit.feature.properties.stale_ms <= now; }

  /** Drop units stale for longer than ``dropAfterMs``; true when any went. */
  expire(now) {
    let dropped = false;
    for (const [id, unit] of this.units) {
      if (unit.feature.properties.stale_ms + this.dropAfterMs <= now) {
        this.units.delete(id);
        dropped = true;
      }
    }
    return dropped;
  }
}

/** Open the feed; ``token`` null means the cookie, the client certificate or the anonymous picture. */
export function openFeed({ onMessage, onState, token = null }) {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/live`;
  const ws = new WebSocket(url, token ? [SUBPROTOCOL, `bearer.${token}`] : [SUBPROTOCOL]);
  ws.onopen = () => onState("open", 0);
  ws.onmessage = (event) => onMessage(JSON.parse(event.data));
  ws.onclose = (event) => onState("closed", event.code);
  return ws;
}
