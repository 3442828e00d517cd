// Distance and bearing between two points: great-circle distance (haversine, mean Earth radius) and
// the initial true bearing from the first point to the second.

const EARTH_RADIUS_M = 6_371_008.8;
const rad = (d) => (d * Math.PI) / 180;

/** Metres between [lon, lat] points ``a`` and ``b``. */
export function distanceM(a, b) {
  const dLat = rad(b[1] - a[1]), dLon = rad(b[0] - a[0]);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a[1])) * Math.cos(rad(b[1])) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Initial bearing in degrees true (0–360) from ``a`` to ``b``. */
export function bearingDeg(a, b) {
  const y = Math.sin(rad(b[0] - a[0])) * Math.cos(rad(b[1]));
  const x = Math.cos(rad(a[1])) * Math.sin(rad(b[1])) - Math.sin(rad(a[1])) * Math.cos(rad(b[1])) * Math.cos(rad(b[0] - a[0]));
  return ((Math.atan2(y, x) * 180) / Math.PI + 360) % 360;
}

/** "1.23 km, 045°" (metres under a kilometre). */
export function measureText(a, b) {
  const d = distanceM(a, b);
  const distance = d < 1000 ? `${d.toFixed(0)} m` : `${(d / 1000).toFixed(2)} km`;
  return `${distance}, ${bearingDeg(a, b).toFixed(0).padStart(3, "0")}°`;
}

/** The measure tool: toggled by ``button``; two clicks (or Enter on the map) give the answer. */
export class MeasureTool {
  constructor({ map, button, output, onLine }) {
    this.map = map;
    this.button = button;
    this.output = output;
    this.onLine = onLine;
    this.points = [];
    button.addEventListener("click", () => this.toggle());
    map.on("click", (e) => { if (this.active) this.add([e.lngLat.lng, e.lngLat.lat]); });
    map.getContainer().addEventListener("keydown", (e) => {
      if (this.active && e.key === "Enter") {
        const c = map.getCenter();
        this.add([c.lng, c.lat]);
      }
    });
  }

  get active() { return this.button.getAttribute("aria-pressed") === "true"; }

  toggle() {
    const on = !this.active;
    this.button.setAttribute("aria-pressed", String(on));
    this.points = [];
    this.output.textContent = on ? "pick the first point" : "";
    this.onLine([]);
  }

  add(point) {
    if (this.points.length === 2) this.points = [];
    this.points.push(point);
    this.onLine(this.points);
    this.output.textContent = this.points.length === 2 ? measureText(this.points[0], this.points[1])
      : "pick the second point";
  }
}
