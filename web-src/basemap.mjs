// Converts the Natural Earth 1:50m land and country polygons of world-atlas (TopoJSON) into the compact
// GeoJSON the picture draws offline: land polygons, country borders (shared arcs only, once each) and
// coastlines (the land's outline). Coordinates are rounded to 0.01° (about 1 km), plenty at this scale.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const topo = require("topojson-client");
const out = process.argv[2];
const countries = JSON.parse(readFileSync(new URL("./node_modules/world-atlas/countries-50m.json", import.meta.url)));
const land = JSON.parse(readFileSync(new URL("./node_modules/world-atlas/land-50m.json", import.meta.url)));

const round = (v) => Math.round(v * 100) / 100;
function roundGeometry(g) {
  const walk = (c) => (typeof c[0] === "number" ? [round(c[0]), round(c[1])] : c.map(walk));
  return { type: g.type, coordinates: walk(g.coordinates) };
}
const feature = (kind, geometry) => ({ type: "Feature", properties: { kind }, geometry: roundGeometry(geometry) });

const features = [
  ...topo.feature(land, land.objects.land).features.map((f) => feature("land", f.geometry)),
  feature("coastline", topo.mesh(land, land.objects.land)),
  feature("border", topo.mesh(countries, countries.objects.countries, (a, b) => a !== b)),
];
writeFileSync(out, JSON.stringify({ type: "FeatureCollection", features }));
