// Map items drawn by TAK clients and the drawing panel: outlines, fills, spot markers and their labels.
// The live feed gives each drawing its geometry and colours (properties drawing, stroke, fill...; see
// docs/api.md, /api/tracks). Labels are canvas images keyed by a counter, like the units' symbols: the
// map has no glyphs, and client-sent text never becomes part of an identifier the map parses.

const EMPTY = { type: "FeatureCollection", features: [] };
const STALE = "#9a9a9a";
const COLOUR = /^#[0-9a-f]{6}$/i;
export const LABEL_PREFIX = "l";
/** The layers a click on a drawing lands on. */
export const SHAPE_LAYERS = ["shapes-spot", "shapes-label", "shapes-line", "shapes-fill"];

/** Label images by key ("l0", "l1"...), drawn on demand. */
export class LabelImages {
  constructor() {
    this.keys = new Map();  // "text\u0000colour" -> key
    this.specs = new Map(); // key -> { text, colour }
  }

  keyFor(text, colour) {
    const id = `${text}\u0000${colour}`;
    let key = this.keys.get(id);
    if (key === undefined) {
      key = `${LABEL_PREFIX}${this.keys.size}`;
      this.keys.set(id, key);
      this.specs.set(key, { text, colour });
    }
    return key;
  }

  /** The image for ``key``: the text with a light halo, so it reads over land, sea and fills. */
  draw(key) {
    const spec = this.specs.get(key);
    if (spec === undefined) return undefined;
    return textImage(spec.text, spec.colour);
  }
}

/** A text label as image data, after a dot of ``dot`` pixels' radius when given (place names). */
export function textImage(text, colour = "#111", font = "12px sans-serif", dot = 0) {
  const ratio = window.devicePixelRatio || 1;
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d");
  ctx.font = font;
  const left = 4 + (dot ? 2 * dot + 3 : 0);
  const width = Math.ceil(Math.min(ctx.measureText(text).width, 240)) + left + 4;
  canvas.width = width * ratio;
  canvas.height = 18 * ratio;
  ctx.scale(ratio, ratio);
  if (dot) {
    ctx.fillStyle = colour;
    ctx.beginPath();
    ctx.arc(4 + dot, 9, dot, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.font = font;
  ctx.lineWidth = 3;
  ctx.strokeStyle = "rgba(255, 255, 255, 0.9)";
  ctx.strokeText(text, left, 13, 240);
  ctx.fillStyle = colour;
  ctx.fillText(text, left, 13, 240);
  return { data: ctx.getImageData(0, 0, canvas.width, canvas.height), ratio };
}

/** Whether a picture feature is a drawing (a shape, route or spot marker) rather than a unit. */
export function isDrawing(feature) {
  return Boolean(feature.properties && feature.properties.drawing && feature.geometry);
}

/** Add the drawings' source and layers (under the units, over the base map and tiles). */
export function addShapeLayers(map) {
  map.addSource("shapes", { type: "geojson", data: EMPTY });
  map.addLayer({ id: "shapes-fill", type: "fill", source: "shapes", filter: ["==", ["get", "role"], "fill"],
                 paint: { "fill-color": ["get", "fill"], "fill-opacity": ["get", "fill_opacity"] } });
  map.addLayer({ id: "shapes-line", type: "line", source: "shapes", filter: ["==", ["get", "role"], "outline"],
                 paint: { "line-color": ["get", "stroke"], "line-width": ["get", "width"],
                          "line-opacity": ["get", "stroke_opacity"] } });
  map.addLayer({ id: "shapes-spot", type: "circle", source: "shapes", filter: ["==", ["get", "role"], "spot"],
                 paint: { "circle-color": ["get", "stroke"], "circle-radius": 7, "circle-stroke-width": 2,
                          "circle-stroke-color": "#ffffff" } });
  map.addLayer({ id: "shapes-label", type: "symbol", source: "shapes", filter: ["==", ["get", "role"], "label"],
                 layout: { "icon-image": ["get", "icon"], "icon-anchor": "left", "icon-offset": [8, 0],
                           "icon-allow-overlap": true } });
}

/** The map features for the drawings among ``units`` (the picture's map of uid -> unit). */
export function shapeFeatures(units, now, labels) {
  const out = [];
  for (const [id, unit] of units) {
    const f = unit.feature;
    if (!isDrawing(f)) continue;
    const p = f.properties, stale = p.stale_ms <= now;
    const stroke = stale ? STALE : colourOr(p.stroke, "#d62728");
    const common = { id, stroke, stroke_opacity: Number(p.stroke_opacity ?? 1) || 1,
                     width: Math.min(Number(p.stroke_width) || 3, 12) };
    const geometry = f.geometry;
    if (geometry.type === "Point") {
      out.push({ type: "Feature", geometry, properties: { ...common, role: "spot" } });
    } else {
      if (geometry.type === "Polygon" && p.fill) {
        out.push({ type: "Feature", geometry, properties: {
          ...common, role: "fill", fill: stale ? STALE : colourOr(p.fill, stroke),
          fill_opacity: Math.min(Math.max(Number(p.fill_opacity) || 0, 0), 1) } });
      }
      out.push({ type: "Feature", geometry, properties: { ...common, role: "outline" } });
    }
    const name = p.callsign || "";
    const at = anchor(geometry);
    if (name && at) {
      out.push({ type: "Feature", geometry: { type: "Point", coordinates: at },
                 properties: { id, role: "label", icon: labels.keyFor(name, stale ? STALE : "#111") } });
    }
  }
  return out;
}

function colourOr(value, fallback) { return COLOUR.test(value || "") ? value : fallback; }

/** Where a drawing's label goes, and its place when selected: a marker's point, a line's middle vertex, a
 * shape's mean vertex ([lon, lat]; null without vertices). */
export function anchor(geometry) {
  if (geometry.type === "Point") return geometry.coordinates.slice(0, 2);
  const vertices = geometry.type === "Polygon" ? geometry.coordinates[0].slice(0, -1) : geometry.coordinates;
  if (!vertices.length) return null;
  if (geometry.type === "LineString") return vertices[Math.floor(vertices.length / 2)];
  const sum = vertices.reduce((s, v) => [s[0] + v[0], s[1] + v[1]], [0, 0]);
  return [sum[0] / vertices.length, sum[1] / vertices.length];
}
