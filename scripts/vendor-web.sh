#!/bin/sh
# Fetches the pinned browser libraries (web-src/package-lock.json) from the npm registry and copies what
# the picture needs into src/rallypoint/web/static/vendor/, with their licences, and converts the
# Natural Earth base map. The output is committed: running the server needs no build step and no network.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
src="$here/web-src"
out="$here/src/rallypoint/web/static/vendor"
cd "$src"
npm ci --ignore-scripts --no-audit --no-fund
mkdir -p "$out"
nm="$src/node_modules"
cp "$nm/maplibre-gl/dist/maplibre-gl-csp.js" "$nm/maplibre-gl/dist/maplibre-gl-csp-worker.js" \
   "$nm/maplibre-gl/dist/maplibre-gl.css" "$out/"
cp "$nm/maplibre-gl/LICENSE.txt" "$out/LICENSE-maplibre-gl.txt"
cp "$nm/milsymbol/dist/milsymbol.js" "$out/"
cp "$nm/milsymbol/LICENSE" "$out/LICENSE-milsymbol.txt"
cp "$nm/mgrs/dist/mgrs.esm.js" "$out/mgrs.js"
cp "$nm/mgrs/license.md" "$out/LICENSE-mgrs.txt"
cp "$nm/world-atlas/LICENSE" "$out/LICENSE-world-atlas.txt"
# HLS playback for browsers without it (docs/video.md): the light ES module build (no subtitles, no DRM).
cp "$nm/hls.js/dist/hls.light.min.mjs" "$out/hls.light.esm.js"
cp "$nm/hls.js/LICENSE" "$out/LICENSE-hls.js.txt"
node "$src/basemap.mjs" "$out/basemap.geojson"
# The versions actually copied, for the documentation and for anyone auditing the package.
node -e 'for (const p of ["maplibre-gl", "milsymbol", "mgrs", "world-atlas", "topojson-client", "hls.js"]) {
  const j = require(process.argv[1] + "/" + p + "/package.json"); console.log(p + " " + j.version + " " + j.license); }' \
  "$nm" > "$out/VERSIONS.txt"
echo "vendored into $out"
