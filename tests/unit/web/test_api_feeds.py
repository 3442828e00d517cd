"""Which file feeds the API may add: only files under the data directory's layers folder."""

from __future__ import annotations

from pathlib import Path

from rallypoint.web.api.feeds import file_allowed


def test_file_feeds_over_the_api_stay_in_the_layers_folder(tmp_path: Path) -> None:
    layers = (tmp_path / "layers").resolve()
    layers.mkdir()
    assert file_allowed(f"geojson+file://{layers}/zones.geojson", layers)
    assert file_allowed(f"kml+file://{layers}/sub/dir/a.kmz", layers)
    assert not file_allowed("geojson+file:///etc/passwd", layers)
    assert not file_allowed(f"geojson+file://{layers}/../secret.geojson", layers)
    assert not file_allowed(f"geojson+file://{layers}/..%2Fsecret.geojson", layers)
    (layers / "link.geojson").symlink_to("/etc/hostname")
    assert not file_allowed(f"geojson+file://{layers}/link.geojson", layers)
    assert file_allowed("sbs+tcp://127.0.0.1:30003", layers)
