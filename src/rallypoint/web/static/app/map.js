// The map: MapLibre GL (CSP build, worker from this server) over the offline Natural Earth base map and its
// place names (app/places.js), with the drawings TAK clients share (app/shapes.js), the units (clustered
// when zoomed out), their trails, and the measure line.
import { SymbolImages, clusterImage } from "./symbols.js";
import { LABEL_PREFIX, LabelImages, addShapeLayers, isDrawing, shapeFeatures } from "./shapes.js";
import { PLACE_PREFIX, addPlaceLayer, placeImage } from "./places.js";
import { addVectorTiles } from "./vector-tiles.js";

const BASEMAP = "/web/vendor/basemap.geojson";
const EMPTY = { type: "FeatureCollection", features: [] };
// Tile formats the map draws as images, and those it draws as vector layers (app/vector-tiles.js).
const RASTER_FORMATS = ["png", "jpg", "jpeg", "webp", "avif"];
const VECTOR_FORMATS = ["pbf", "mvt"];

function style() {
  return {
    version: 8,
    // Tiled up to zoom 7 only (1:50m data has no more detail): deeper views reuse those tiles.
    sources: { base: { type: "geojson", data: new URL(BASEMAP, location.href).href, maxzoom: 7 } },
    layers: [
      { id: "sea", type: "background", paint: { "background-color": "#b9d3e6" } },
      { id: "land", type: "fill", source: "base", filter: ["==", ["get", "kind"], "land"],
        paint: { "fill-color": "#efeee6" } },
      { id: "coastline", type: "line", source: "base", filter: ["==", ["get", "kind"], "coastline"],
        paint: { "line-color": "#6d8aa0", "line-width": 0.8 } },
      { id: "borders", type: "line", source: "base", filter: ["==", ["get", "kind"], "border"],
        paint: { "line-color": "#9a8f9e", "line-width": 0.8, "line-dasharray": [3, 2] } },
    ],
  };
}

export class PictureMap {
  constructor(container) {
    maplibregl.setWorkerUrl(new URL("/web/vendor/maplibre-gl-csp-worker.js", location.href).href);
    this.images = new SymbolImages();
    this.labels = new LabelImages();
    this.map = new maplibregl.Map({ container, style: style(), center: [0, 20], zoom: 1.2,
                                    attributionControl: false, fadeDuration: 0 });
    this.map.addControl(new maplibregl.NavigationControl(), "top-left");
    this.map.addControl(new maplibregl.ScaleControl(), "bottom-left");
    this.map.addControl(new maplibregl.AttributionControl({ customAttribution: ["Natural Earth", "GeoNames"] }));
    this.ready = new Promise((resolve) => this.map.on("load", async () => {
      await this.addLocalTiles();
      this.addLayers();
      resolve();
    }));
    this.map.on("styleimagemissing", (e) => this.drawImage(e.id));
    // MapLibre listens for keys on its canvas only; the map region is the tab stop, so it answers them too.
    this.map.getContainer().addEventListener("keydown", (e) => this.onRegionKey(e));
  }

  onRegionKey(e) {
    if (e.target !== this.map.getContainer() || e.altKey || e.ctrlKey || e.metaKey) return;
    const step = e.shiftKey ? 300 : 100;
    const pans = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (pans[e.key]) this.map.panBy(pans[e.key], { duration: 0 });
    else if (e.key === "+" || e.key === "=") this.map.zoomIn({ duration: 0 });
    else if (e.key === "-" || e.key === "_") this.map.zoomOut({ duration: 0 });
    else return;
    e.preventDefault();
  }

  drawImage(id) {
    if (this.map.hasImage(id)) return;
    const image = id.startsWith(PLACE_PREFIX) ? placeImage(id)
      : id.startsWith("c") ? clusterImage(Number(id.slice(1)))
        : id.startsWith(LABEL_PREFIX) ? this.labels.draw(id) : this.images.draw(id);
    if (image) this.map.addImage(id, image.data, { pixelRatio: image.ratio });
  }

  // The tile URL template, then the tile sets added with `rallypoint tiles add` (MBTiles or PMTiles, both
  // served by the server as XYZ tiles; raster as images, vector by app/vector-tiles.js), drawn over the base
  // map, below the units.
  async addLocalTiles() {
    let sets = [];
    try {
      const answer = await fetch("/api/web/tiles");
      if (answer.ok) sets = await answer.json();
    } catch (err) {
      return;
    }
    for (const set of sets) {
      if (set.kind === "url") { this.addRemoteTiles(set); continue; }
      if (!["mbtiles", "pmtiles"].includes(set.kind)) continue;
      const id = `tiles-${set.name}`;
      const url = new URL(set.url, location.href).href.replace(/%7B/g, "{").replace(/%7D/g, "}");
      if (VECTOR_FORMATS.includes(set.format)) { addVectorTiles(this.map, id, url, set); continue; }
      if (!RASTER_FORMATS.includes(set.format)) continue;
      this.map.addSource(id, { type: "raster", tiles: [url], tileSize: 256, minzoom: set.minzoom, maxzoom: set.maxzoom });
      this.map.addLayer({ id, type: "raster", source: id });
    }
  }

  // The configured tile URL template ([web] tile_url): another server's raster tiles, under local files.
  addRemoteTiles(set) {
    this.map.addSource("remote-tiles", { type: "raster", tiles: [set.url], tileSize: 256, minzoom: set.minzoom,
                                         maxzoom: set.maxzoom });
    this.map.addLayer({ id: "remote-tiles", type: "raster", source: "remote-tiles" });
  }

  addLayers() {
    const map = this.map;
    addPlaceLayer(map);
    addShapeLayers(map);
    map.addSource("trails", { type: "geojson", data: EMPTY });
    map.addSource("units", { type: "geojson", data: EMPTY, cluster: true, clusterMaxZoom: 9, clusterRadius: 40 });
    map.addSource("measure", { type: "geojson", data: EMPTY });
    map.addLayer({ id: "trails", type: "line", source: "trails",
                   paint: { "line-color": ["case", ["get", "stale"], "#9a9a9a", "#1e6fd9"], "line-width": 2,
                            "line-opacity": 0.6 } });
    map.addLayer({ id: "clusters", type: "symbol", source: "units", filter: ["has", "point_count"],
                   layout: { "icon-image": ["concat", "c", ["to-string", ["get", "point_count"]]],
                             "icon-allow-overlap": true } });
    map.addLayer({ id: "units", type: "symbol", source: "units", filter: ["!", ["has", "point_count"]],
                   layout: { "icon-image": ["get", "icon"], "icon-allow-overlap": true,
                             "icon-ignore-placement": true } });
    map.addLayer({ id: "measure", type: "line", source: "measure",
                   paint: { "line-color": "#d62728", "line-width": 2, "line-dasharray": [2, 1] } });
    map.on("click", "clusters", async (e) => {
      const cluster = e.features[0];
      const zoom = await map.getSource("units").getClusterExpansionZoom(cluster.properties.cluster_id);
      map.easeTo({ center: cluster.geometry.coordinates, zoom });
    });
    for (const layer of ["units", "clusters"]) {
      map.on("mouseenter", layer, () => { map.getCanvas().style.cursor = "pointer"; });
      map.on("mouseleave", layer, () => { map.getCanvas().style.cursor = ""; });
    }
  }

  /** Draw ``picture`` as it stands at ``now`` (ms); in replay mode only remember it for the way back. */
  render(picture, now) {
    this.live = picture;
    if (this.replaying) return 0;
    const units = [], trails = [];
    for (const [id, unit] of picture.units) {
      const f = unit.feature;
      // Drawings (a spot marker included) are drawn from the shapes source only, never also as a symbol.
      if (!f.geometry || isDrawing(f)) continue;
      // Exercise traffic (properties.exercise) is drawn grey like a stale unit: never taken for a real one.
      const p = f.properties, stale = picture.isStale(unit, now) || Boolean(p.exercise);
      const icon = this.images.keyFor(p.type || "", p.callsign || id, stale);
      units.push({ type: "Feature", geometry: f.geometry, properties: { id, icon, stale } });
      if (unit.trail.length > 1) {
        trails.push({ type: "Feature", geometry: { type: "LineString", coordinates: unit.trail },
                      properties: { stale } });
      }
    }
    this.map.getSource("units").setData({ type: "FeatureCollection", features: units });
    this.map.getSource("trails").setData({ type: "FeatureCollection", features: trails });
    const shapes = shapeFeatures(picture.units, now, this.labels);
    this.map.getSource("shapes").setData({ type: "FeatureCollection", features: shapes });
    return units.length + shapes.length;
  }

  /**
   * Replay mode: the map shows stored history instead of the live picture (which keeps arriving). ``states``
   * come from playback.statesAt at ``now``; a REPLAY badge with the replayed time stays on the map.
   */
  showReplay(states, now, withTrails) {
    this.replaying = true;
    const units = [], trails = [];
    for (const { track, index, here, past } of states) {
      const icon = this.images.keyFor(track.type || "", track.callsign || track.uid, past);
      units.push({ type: "Feature", geometry: { type: "Point", coordinates: [here.lon, here.lat] },
                   properties: { id: track.uid, icon, stale: past } });
      if (withTrails && index > 0) {
        const line = track.reports.slice(0, index + 1).map((r) => [r.lon, r.lat]);
        line.push([here.lon, here.lat]);
        trails.push({ type: "Feature", geometry: { type: "LineString", coordinates: line }, properties: { stale: past } });
      }
    }
    this.map.getSource("units").setData({ type: "FeatureCollection", features: units });
    this.map.getSource("trails").setData({ type: "FeatureCollection", features: trails });
    this.map.getSource("shapes").setData(EMPTY);
    if (!this.badge) {
      this.badge = document.createElement("div");
      this.badge.className = "replay-badge";
      this.badge.setAttribute("role", "status");
      this.map.getContainer().append(this.badge);
    }
    this.badge.textContent = `REPLAY ${new Date(now).toISOString().slice(0, 19).replace("T", " ")} UTC`;
    return units.length;
  }

  /** Back to the live picture. */
  endReplay() {
    this.replaying = false;
    this.badge?.remove();
    this.badge = null;
    if (this.live) this.render(this.live, Date.now());
  }

  /** The map's view as a bbox [west, south, east, north] (west > east across the antimeridian); null: the world. */
  viewBbox() {
    const b = this.map.getBounds();
    if (b.getEast() - b.getWest() >= 360) return null;
    const wrap = (lon) => ((((lon + 180) % 360) + 360) % 360) - 180;
    const clamp = (lat) => Math.min(90, Math.max(-90, lat));
    const round = (v) => Math.round(v * 1e6) / 1e6;
    return [wrap(b.getWest()), clamp(b.getSouth()), wrap(b.getEast()), clamp(b.getNorth())].map(round);
  }

  /** Frame the placed units (once, on the first picture). */
  frame(picture) {
    const placed = [...picture.units.values()].filter((u) => u.feature.geometry?.type === "Point");
    if (!placed.length) return false;
    const bounds = new maplibregl.LngLatBounds();
    for (const u of placed) bounds.extend(u.feature.geometry.coordinates);
    this.map.fitBounds(bounds, { padding: 60, maxZoom: 13, duration: 0 });
    return true;
  }

  showMeasure(points) {
    const line = points.length === 2 ? [{ type: "Feature", properties: {},
                                          geometry: { type: "LineString", coordinates: points } }] : [];
    this.map.getSource("measure").setData({ type: "FeatureCollection", features: line });
  }
}
