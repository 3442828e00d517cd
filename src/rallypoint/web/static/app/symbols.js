// MIL-STD-2525C symbols (milsymbol) for CoT types, drawn on canvases and handed to the map as images.
// A CoT atom type a-<affiliation>-<dimension>-<function...> maps onto a 15-character letter SIDC:
// S, affiliation, battle dimension, status P, six function letters, then dashes.

const AFFILIATION = { f: "F", h: "H", n: "N", u: "U", p: "P", a: "A", s: "S", j: "J", k: "K", o: "U", x: "U" };
const DIMENSION = { P: "P", A: "A", G: "G", S: "S", U: "U", F: "F" };
const STALE_COLOUR = "#8a8a8a";

/** The 2525C SIDC of a CoT type, or null when the type is not an atom (a-...) with a known dimension. */
export function sidcOf(type) {
  const atoms = String(type || "").split("-");
  if (atoms[0] !== "a" || atoms.length < 3) return null;
  const affiliation = AFFILIATION[atoms[1]], dimension = DIMENSION[atoms[2]];
  if (!affiliation || !dimension) return null;
  const fn = atoms.slice(3).filter((a) => /^[A-Z]$/.test(a)).join("").slice(0, 6).padEnd(6, "-");
  return `S${affiliation}${dimension}P${fn}-----`;
}

/**
 * Images by key for the map: a key names one (type, label, stale) combination and is a counter, so no
 * client-sent text ever becomes part of an identifier the map parses.
 */
export class SymbolImages {
  constructor() {
    this.keys = new Map();  // "type\u0000label\u0000stale" -> key
    this.specs = new Map(); // key -> { type, label, stale }
    this.next = 0;
  }

  /** The image key for a unit (created lazily; the map asks for the image when it first needs it). */
  keyFor(type, label, stale) {
    const id = `${type}\u0000${label}\u0000${stale ? 1 : 0}`;
    let key = this.keys.get(id);
    if (key === undefined) {
      key = `u${this.next++}`;
      this.keys.set(id, key);
      this.specs.set(key, { type, label, stale });
    }
    return key;
  }

  /** Draw the image for ``key`` (undefined when the key is not ours). */
  draw(key) {
    const spec = this.specs.get(key);
    if (spec === undefined) return undefined;
    const sidc = sidcOf(spec.type);
    const options = { size: 22, uniqueDesignation: spec.label };
    if (spec.stale) options.monoColor = STALE_COLOUR;
    const canvas = sidc ? new ms.Symbol(sidc, options).asCanvas(window.devicePixelRatio || 1)
      : plainMarker(spec.label, spec.stale);
    const ctx = canvas.getContext("2d");
    return { data: ctx.getImageData(0, 0, canvas.width, canvas.height), ratio: window.devicePixelRatio || 1 };
  }
}

// Non-atom items (drawings, points, sensors): a dot with its label, drawn as text on a canvas.
function plainMarker(label, stale) {
  const ratio = window.devicePixelRatio || 1;
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d");
  ctx.font = "12px sans-serif";
  const width = Math.ceil(Math.min(ctx.measureText(label).width, 200)) + 22;
  canvas.width = width * ratio;
  canvas.height = 18 * ratio;
  ctx.scale(ratio, ratio);
  ctx.fillStyle = stale ? STALE_COLOUR : "#8c564b";
  ctx.beginPath();
  ctx.arc(8, 9, 6, 0, 2 * Math.PI);
  ctx.fill();
  ctx.font = "12px sans-serif";
  ctx.fillStyle = stale ? STALE_COLOUR : "#111";
  ctx.fillText(label, 18, 13, 200);
  return canvas;
}

/** A cluster badge: a circle with the count. */
export function clusterImage(count) {
  const ratio = window.devicePixelRatio || 1, size = 34;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.fillStyle = "rgba(30, 111, 217, 0.85)";
  ctx.beginPath();
  ctx.arc(size / 2, size / 2, size / 2 - 1, 0, 2 * Math.PI);
  ctx.fill();
  ctx.fillStyle = "#fff";
  ctx.font = "bold 12px sans-serif";
  ctx.textAlign = "center";
  ctx.fillText(String(count), size / 2, size / 2 + 4);
  return { data: ctx.getImageData(0, 0, canvas.width, canvas.height), ratio };
}
