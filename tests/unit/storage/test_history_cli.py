"""``rallypoint history query|export`` against a database filled by the test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from lxml import etree
from typer.testing import CliRunner

from rallypoint.cli.history import history_app, parse_bbox, parse_time_arg
from rallypoint.clock import datetime_to_ms
from rallypoint.storage.base import StoredEvent
from rallypoint.storage.sqlite.events import SqliteEventStore

MakeEvent = Callable[..., StoredEvent]
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
MIN = 60_000


@pytest.fixture
def data_dir(tmp_path: Path, ev: MakeEvent) -> Path:
    async def fill() -> None:
        store = SqliteEventStore(tmp_path / "events.db")
        try:
            await store.append(
                [
                    ev("alpha", time=T0, lon=10.0, lat=50.0, callsign="Alpha", team="Cyan", groups={"Ops", "Blue"}),
                    ev("bravo", type="a-h-G", time=T0 + MIN, lon=-70.0, lat=-30.0, callsign="Bravo"),
                    ev("marker", type="b-m-p-s-m", time=T0 + 2 * MIN, lon=10.5, lat=50.5),
                    ev("alpha", time=T0 + 3 * MIN, lon=10.1, lat=50.1, callsign="Alpha", team="Cyan",
                       groups={"Ops", "Blue"}),
                ]
            )
        finally:
            await store.close()

    asyncio.run(fill())
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(history_app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_query_json_filters_by_type_and_time(data_dir: Path) -> None:
    code, out, _ = run(
        "query",
        "--data-dir",
        str(data_dir),
        "--format",
        "json",
        "--type",
        "a-f",
        "--since",
        "2023-11-14T22:14:00Z",
    )

    assert code == 0
    rows = json.loads(out)
    assert [(r["uid"], r["time"]) for r in rows] == [("alpha", "2023-11-14T22:16:20.000Z")]
    assert rows[0]["callsign"] == "Alpha" and rows[0]["hae"] is None
    assert rows[0]["xml"].startswith("<event")


def test_query_table_lists_matching_events(data_dir: Path) -> None:
    code, out, _ = run("query", "--data-dir", str(data_dir), "--uid", "bravo")

    assert code == 0
    assert "Bravo" in out and "a-h-G" in out
    assert "Alpha" not in out


def test_query_bbox_limit_and_order(data_dir: Path) -> None:
    code, out, _ = run(
        "query",
        "--data-dir",
        str(data_dir),
        "--format",
        "json",
        "--bbox",
        "9,49,11,51",
        "--order",
        "desc",
        "--limit",
        "2",
    )

    assert code == 0
    assert [r["uid"] for r in json.loads(out)] == ["alpha", "marker"]


def test_export_geojson_to_file(data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "history.geojson"

    code, _, err = run("export", "--data-dir", str(data_dir), "--format", "geojson", "--out", str(target))

    assert code == 0
    assert "4 events" in err
    doc = json.loads(target.read_text())
    assert doc["type"] == "FeatureCollection"
    assert len(doc["features"]) == 4


def test_export_kml_to_stdout(data_dir: Path) -> None:
    code, out, _ = run("export", "--data-dir", str(data_dir), "--format", "kml", "--uid", "marker")

    assert code == 0
    root = etree.fromstring(out.encode())
    ns = "{http://www.opengis.net/kml/2.2}"
    assert root.findtext(f".//{ns}coordinates") == "10.5,50.5"


def test_export_cot_stream(data_dir: Path) -> None:
    code, out, _ = run(
        "export", "--data-dir", str(data_dir), "--format", "cot", "--storage", "sqlite://events.db"
    )

    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("<?xml")
    assert [etree.fromstring(line.encode()).get("uid") for line in lines[1:]] == [
        "alpha",
        "bravo",
        "marker",
        "alpha",
    ]


def test_export_requires_a_format(data_dir: Path) -> None:
    code, _, _ = run("export", "--data-dir", str(data_dir))
    assert code != 0


def test_missing_database_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    code, _, err = run("query", "--data-dir", str(tmp_path / "nowhere"))

    assert code == 1
    assert "no event database" in err
    assert not (tmp_path / "nowhere").exists()


def test_bad_filters_are_usage_errors(data_dir: Path) -> None:
    assert run("query", "--data-dir", str(data_dir), "--since", "yesterday-ish")[0] == 2
    assert run("query", "--data-dir", str(data_dir), "--bbox", "1,2,3")[0] == 2
    assert run("query", "--data-dir", str(data_dir), "--storage", "postgresql://db/x")[0] == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", T0 - 2 * 3_600_000),
        ("30m", T0 - 30 * MIN),
        ("45s", T0 - 45_000),
        ("1.5d", T0 - 36 * 3_600_000),
        ("now", T0),
        ("2023-11-14T22:13:20Z", T0),
        ("2023-11-14T23:13:20+01:00", T0),
        ("2023-11-14T22:13:20", T0),
        ("2023-11-14", datetime_to_ms(__import__("datetime").datetime(2023, 11, 14))),
    ],
)
def test_parse_time_arg(text: str, expected: int) -> None:
    assert parse_time_arg(text, T0) == expected


def test_parse_bbox_validates_ranges() -> None:
    assert parse_bbox("-1,-1,1,1") == (-1.0, -1.0, 1.0, 1.0)
    with pytest.raises(typer.BadParameter):
        parse_bbox("0,10,1,5")
    with pytest.raises(typer.BadParameter):
        parse_bbox("0,0,200,1")


def test_west_greater_than_east_is_refused_unless_antimeridian() -> None:
    with pytest.raises(typer.BadParameter, match=r"west \(179\) is greater than east \(-179\)"):
        parse_bbox("179,-1,-179,1")
    assert parse_bbox("179,-1,-179,1", antimeridian=True) == (179.0, -1.0, -179.0, 1.0)
    with pytest.raises(typer.BadParameter, match="crosses the 180th meridian"):
        parse_bbox("-179,-1,179,1", antimeridian=True)


def test_cli_refuses_a_reversed_bbox_with_a_clear_error(data_dir: Path) -> None:
    result = CliRunner().invoke(
        history_app, ["query", "--data-dir", str(data_dir), "--bbox", "-119,38,-121,40"], env={"COLUMNS": "400"}
    )
    assert result.exit_code == 2
    message = " ".join(result.stderr.replace("│", " ").split())
    assert "west (-119) is greater than east (-121)" in message
    assert "Swap them (-121,38,-119,40)" in message and "--antimeridian" in message
    assert run("query", "--data-dir", str(data_dir), "--antimeridian")[0] == 2


def test_antimeridian_query_returns_both_sides(data_dir: Path) -> None:
    # From 10.2 east across the antimeridian to -69: the marker (10.5) and bravo (-70), not alpha (10.0, 10.1).
    code, out, err = run("query", "--data-dir", str(data_dir), "--format", "json", "--bbox", "10.2,-40,-69,60",
                         "--antimeridian")  # fmt: skip
    assert code == 0, err
    assert sorted(r["uid"] for r in json.loads(out)) == ["bravo", "marker"]


def test_table_is_one_unwrapped_line_per_event_when_piped(data_dir: Path) -> None:
    result = CliRunner().invoke(history_app, ["query", "--data-dir", str(data_dir)], env={"COLUMNS": "40"})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 5  # a header and four events, however narrow the terminal claims to be
    assert lines[0].split() == ["time", "(UTC)", "uid", "type", "how", "callsign", "team", "groups", "lat", "lon",
                                 "sender"]
    assert lines[1].split()[:3] == ["2023-11-14T22:13:20.000Z", "alpha", "a-f-G-U-C"]
    assert "50.000000" in lines[1] and "10.000000" in lines[1]
    assert not any(ch in result.stdout for ch in "│┃━─")


def test_csv_format(data_dir: Path, tmp_path: Path) -> None:
    import csv
    import io

    code, out, _ = run("query", "--data-dir", str(data_dir), "--format", "csv", "--uid", "alpha")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["uid"] for r in rows] == ["alpha", "alpha"]
    assert rows[0]["time"] == "2023-11-14T22:13:20.000Z" and rows[0]["callsign"] == "Alpha"
    assert rows[0]["lat"] == "50.000000" and rows[0]["lon"] == "10.000000" and rows[0]["team"] == "Cyan"
    assert rows[0]["groups"] == "Blue;Ops"
    target = tmp_path / "out.csv"
    code, _, err = run("export", "--data-dir", str(data_dir), "--format", "csv", "--out", str(target))
    assert code == 0 and "wrote 4 events" in err
    assert target.read_text().splitlines()[0] == "time,uid,type,how,callsign,team,groups,lat,lon,hae,sender"
