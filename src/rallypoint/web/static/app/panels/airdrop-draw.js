// The airdrop plan on the map: DZ outline, PI and CARP, run-in line, green-light stretch, the 95 %
// dispersion ellipse and the sampled impacts. Every source and layer id starts with "airdrop-".
// Positions from the plan are drawn as the server gave them; the run-in line and the ellipse outline
// are laid out from the plan's numbers with a local flat-earth offset (metres to degrees at the
// plan's latitude), which is well under a metre off at the few kilometres a drop spans.

const EMPTY = { type: "FeatureCollection", features: [] };
export const SOURCE = "airdrop-plan";
const M_PER_DEG_LAT = 111_320;
const RUN_IN_BEFORE_M = 5000;  // how much of the approach to draw before the release point
const RUN_IN_AFTER_M = 1000;
const ELLIPSE_POINTS = 72;

const rad = (d) => (d * Math.PI) / 180;

/** [lon, lat] moved ``east`` and ``north`` metres from [lon, lat] ``at``. */
export function offset(at, east, north) {
  const [lon, lat] = at;
  return [lon + east / (M_PER_DEG_LAT * Math.cos(rad(lat))), lat + north / M_PER_DEG_LAT];
}

/** [lon, lat] ``metres`` from ``at`` along the true bearing ``deg``. */
export function along(at, deg, metres) {
  return offset(at, metres * Math.sin(rad(deg)), metres * Math.cos(rad(deg)));
}

/** A closed ring tracing ``ellipse`` (centre, semi-axes in metres, bearing of the major axis). */
export function ellipseRing(ellipse) {
  const centre = [ellipse.center.lon, ellipse.center.lat];
  const t = rad(ellipse.orientation_deg);
  const major = [Math.sin(t), Math.cos(t)], minor = [Math.cos(t), -Math.sin(t)];
  const ring = [];
  for (let i = 0; i < ELLIPSE_POINTS; i += 1) {
    const a = (2 * Math.PI * i) / ELLIPSE_POINTS;
    const u = ellipse.semi_major_m * Math.cos(a), v = ellipse.semi_minor_m * Math.sin(a);
    ring.push(offset(centre, u * major[0] + v * minor[0], u * major[1] + v * minor[1]));
  }
  ring.push(ring[0]);
  return ring;
}

const lonLat = (p) => [p.lon, p.lat];
const feature = (kind, geometry, properties = {}) => ({ type: "Feature", geometry, properties: { kind, ...properties } });

/** The plan's features, each with a ``kind`` property the layers filter on. */
export function planFeatures(plan) {
  const features = [];
  const dz = plan.dz_polygon.map(lonLat);
  features.push(feature("dz", { type: "Polygon", coordinates: [[...dz, dz[0]]] }, { fits: plan.dz.fits }));
  const carp = lonLat(plan.carp);
  features.push(feature("run-in", { type: "LineString", coordinates: [
    along(carp, plan.run_in_deg + 180, RUN_IN_BEFORE_M), carp, along(carp, plan.run_in_deg, RUN_IN_AFTER_M)] }));
  if (plan.green_light) {
    features.push(feature("green-light", { type: "LineString",
                                           coordinates: [lonLat(plan.green_light.start), lonLat(plan.green_light.end)] }));
  }
  const d = plan.dispersion;
  if (d) {
    const e = d.ellipse;
    features.push(feature("footprint", { type: "Polygon", coordinates: [ellipseRing(e)] },
                          { center_lat: e.center.lat, center_lon: e.center.lon, semi_major_m: e.semi_major_m,
                            semi_minor_m: e.semi_minor_m, orientation_deg: e.orientation_deg }));
    for (const p of d.impacts) features.push(feature("impact", { type: "Point", coordinates: lonLat(p) }));
  }
  features.push(feature("pi", { type: "Point", coordinates: lonLat(plan.pi) }));
  features.push(feature("carp", { type: "Point", coordinates: carp }));
  return { type: "FeatureCollection", features };
}

const LAYERS = [
  { id: "airdrop-dz", type: "fill", filter: ["==", ["get", "kind"], "dz"],
    paint: { "fill-color": ["case", ["get", "fits"], "#2ca02c", "#d62728"], "fill-opacity": 0.15 } },
  { id: "airdrop-dz-outline", type: "line", filter: ["==", ["get", "kind"], "dz"],
    paint: { "line-color": "#2b5d2b", "line-width": 2 } },
  { id: "airdrop-footprint", type: "fill", filter: ["==", ["get", "kind"], "footprint"],
    paint: { "fill-color": "#ff7f0e", "fill-opacity": 0.25, "fill-outline-color": "#b35900" } },
  { id: "airdrop-run-in", type: "line", filter: ["==", ["get", "kind"], "run-in"],
    paint: { "line-color": "#1f3b73", "line-width": 2, "line-dasharray": [3, 2] } },
  { id: "airdrop-green-light", type: "line", filter: ["==", ["get", "kind"], "green-light"],
    paint: { "line-color": "#00a651", "line-width": 5 } },
  { id: "airdrop-impacts", type: "circle", filter: ["==", ["get", "kind"], "impact"],
    paint: { "circle-radius": 1.5, "circle-color": "#7f3f00" } },
  { id: "airdrop-points", type: "circle", filter: ["in", ["get", "kind"], ["literal", ["pi", "carp", "dz-pick"]]],
    paint: { "circle-radius": 6, "circle-stroke-width": 2, "circle-stroke-color": "#fff",
             "circle-color": ["match", ["get", "kind"], "carp", "#d62728", "pi", "#1f3b73", "#555"] } },
];

/** Draws plans on ``view.map`` (waits for the map's style before adding its source and layers). */
export class AirdropDrawing {
  constructor(view) { this.view = view; }

  async show(collection) {
    await this.view.ready;
    const map = this.view.map;
    if (!map.getSource(SOURCE)) {
      map.addSource(SOURCE, { type: "geojson", data: EMPTY });
      for (const layer of LAYERS) map.addLayer({ ...layer, source: SOURCE });
    }
    map.getSource(SOURCE).setData(collection);
  }

  /** Only the DZ centre picked so far (before a plan is computed). */
  showPick(lon, lat) {
    return this.show({ type: "FeatureCollection",
                       features: [feature("dz-pick", { type: "Point", coordinates: [lon, lat] })] });
  }

  /** Draw ``plan`` and fit the map to its DZ and approach. */
  async showPlan(plan) {
    const collection = planFeatures(plan);
    await this.show(collection);
    const bounds = new maplibregl.LngLatBounds();
    for (const f of collection.features) {
      // The approach line runs off the view: the DZ, the release point and the green light frame it.
      if (f.properties.kind === "impact" || f.properties.kind === "run-in") continue;
      const g = f.geometry;
      const points = g.type === "Point" ? [g.coordinates] : g.type === "LineString" ? g.coordinates : g.coordinates[0];
      for (const p of points) bounds.extend(p);
    }
    this.view.map.fitBounds(bounds, { padding: 60, maxZoom: 16, duration: 0 });
  }

  clear() { return this.show(EMPTY); }
}
