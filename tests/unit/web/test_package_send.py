"""The file transfer request's detail: ATAK's attributes, every value escaped and read back as given."""

from __future__ import annotations

from lxml import etree

from rallypoint.storage.base.packages import PackageRecord
from rallypoint.web.api.package_send import fileshare_detail


def _record(name: str) -> PackageRecord:
    return PackageRecord(hash="ab" * 32, uid="u-1", name=name, mime="application/zip", size=1234, keywords=(),
                         tool="public", creator_uid="", submitter="carol", groups=frozenset({"A"}),
                         submitted_ms=0)


def test_the_detail_carries_what_atak_reads() -> None:
    detail = fileshare_detail(_record("relief.zip"), "https://h:8443/Marti/sync/content?hash=ab&x=1",
                              sender="rallypoint-api-carol", callsign="carol", to_uid="ANDROID-1", ack_uid="ack-1")
    root = etree.fromstring(f"<detail>{detail}</detail>".encode())
    share = root.find("fileshare")
    assert share is not None and dict(share.attrib) == {
        "filename": "relief.zip", "name": "relief", "senderCallsign": "carol", "senderUid": "rallypoint-api-carol",
        "senderUrl": "https://h:8443/Marti/sync/content?hash=ab&x=1", "sha256": "ab" * 32, "sizeInBytes": "1234"}
    ack = root.find("ackrequest")
    assert ack is not None and dict(ack.attrib) == {"uid": "ack-1", "ackrequested": "true", "tag": "relief"}
    dest = root.find("marti/dest")
    assert dest is not None and dest.get("uid") == "ANDROID-1"


def test_hostile_values_stay_values() -> None:
    name = "\"><script>x</script>'&.ZIP"
    detail = fileshare_detail(_record(name), "u", sender="s\"<", callsign="c&'", to_uid="t\">", ack_uid="a")
    root = etree.fromstring(f"<detail>{detail}</detail>".encode())
    share = root.find("fileshare")
    assert share is not None
    assert (share.get("filename"), share.get("name")) == (name, name[:-4])
    assert (share.get("senderUid"), share.get("senderCallsign")) == ("s\"<", "c&'")
    assert root.find("marti/dest").get("uid") == "t\">"  # type: ignore[union-attr]
    assert root.find(".//script") is None
