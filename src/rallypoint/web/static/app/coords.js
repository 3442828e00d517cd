// Coordinates as people read them: decimal degrees and MGRS (the vendored mgrs library, 1 m precision).
import { forward } from "../vendor/mgrs.js";

/** "lat, lon" with five decimals (about a metre). */
export function latLonText(lat, lon) { return `${lat.toFixed(5)}, ${lon.toFixed(5)}`; }

/** The MGRS reference of a point, grouped "18S UJ 23487 06483"; "–" where MGRS is undefined (poles). */
export function mgrsText(lat, lon) {
  let ref;
  try {
    ref = forward([lon, lat], 5);
  } catch (err) {
    return "–";
  }
  const m = /^(\d{1,2}[A-Z])([A-Z]{2})(\d*)$/.exec(ref);
  if (!m) return ref;
  const half = m[3].length / 2;
  return `${m[1]} ${m[2]} ${m[3].slice(0, half)} ${m[3].slice(half)}`;
}
