// Place names on the base map without glyph files: GeoNames' cities of 300,000 people or more and the
// national capitals (web/static/vendor/places.geojson, built by scripts/places.py), each label a canvas
// image (a dot and the name) drawn when the map first needs it. Larger places appear at lower zooms
// (their minzoom) and are placed first; labels that would collide are left out, as MapLibre does.
import { textImage } from "./shapes.js";

const PLACES = "/web/vendor/places.geojson";
const DOT = 2.5;
export const PLACE_PREFIX = "p:";

/** Add the place names (over the base map and tiles, under drawings and units). */
export function addPlaceLayer(map) {
  map.addSource("places", { type: "geojson", data: new URL(PLACES, location.href).href });
  // The image's dot sits DOT + 4 pixels from its left edge: that is the place's position.
  map.addLayer({ id: "places", type: "symbol", source: "places", filter: [">=", ["zoom"], ["get", "minzoom"]],
                 layout: { "icon-image": ["concat", PLACE_PREFIX, ["get", "name"]], "icon-anchor": "left",
                           "icon-offset": [-(DOT + 4), 0], "symbol-sort-key": ["-", 0, ["get", "population"]],
                           "icon-padding": 2 } });
}

/** The label image of a place: ``id`` is PLACE_PREFIX and its name, from the shipped file. */
export function placeImage(id) {
  return textImage(id.slice(PLACE_PREFIX.length), "#3a3a3a", "11px sans-serif", DOT);
}
