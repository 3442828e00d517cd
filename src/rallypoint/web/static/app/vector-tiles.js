// Vector tile sets (pbf/mvt MBTiles or PMTiles added with `rallypoint tiles add`) drawn without a style file
// of their own: every layer the file's metadata names (`layers` of GET /api/web/tiles) is drawn by its
// geometry, coloured by what its name says it holds, in the usual order (land, water, buildings, then
// lines). This reads the common schemas (OpenMapTiles, Protomaps basemaps, Shortbread) and draws any
// other plainly. No text: the page has no glyph files, and place names come from app/places.js.

// [pattern on the layer name, fill colour, line colour, rank]; the first match wins.
const KINDS = [
  [/water|ocean|sea|lake|river/i, "#8db8de", "#6a9fcf", 1],
  [/building/i, "#d9d0c9", "#c2b6ab", 2],
  [/park|wood|forest|green|landcover|grass|natural/i, "#d5e8c4", null, 0],
  [/road|street|transport|highway|rail|transit|path/i, null, "#a89f91", 3],
  [/boundar|admin|border/i, null, "#9a8f9e", 4],
  [/earth|land|ground/i, "#efeee6", null, -1],
];
const OTHER = ["#e6e2d8", "#b5ad9f", 0];

function kindOf(name) {
  const found = KINDS.find(([pattern]) => pattern.test(name));
  return found ? found.slice(1) : OTHER;
}

/** Add set ``set`` ({name, minzoom, maxzoom, layers}) from tile URL ``url`` as source ``id`` with its layers. */
export function addVectorTiles(map, id, url, set) {
  map.addSource(id, { type: "vector", tiles: [url], minzoom: set.minzoom, maxzoom: set.maxzoom });
  const layers = [...set.layers].map((name, order) => ({ name, order, kind: kindOf(name) }))
    .sort((a, b) => a.kind[2] - b.kind[2] || a.order - b.order);
  const polygons = ["==", ["geometry-type"], "Polygon"];
  const lines = ["==", ["geometry-type"], "LineString"];
  for (const { name, kind: [fill] } of layers) {
    if (fill) {
      map.addLayer({ id: `${id}-${name}-fill`, type: "fill", source: id, "source-layer": name, filter: polygons,
                     paint: { "fill-color": fill } });
    }
  }
  for (const { name, kind: [, line] } of layers) {
    if (!line) continue;
    const dashed = /boundar|admin|border/i.test(name);
    map.addLayer({ id: `${id}-${name}-line`, type: "line", source: id, "source-layer": name, filter: lines,
                   paint: { "line-color": line, "line-width": dashed ? 1 : 1.5,
                            ...(dashed ? { "line-dasharray": [3, 2] } : {}) } });
  }
}
