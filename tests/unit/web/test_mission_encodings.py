"""The model's mission types as each web API writes them: exact bytes, so a shape change shows here.

The Marti answers are TAK Server's field names (what ATAK and WinTAK parse); the native API views
keep their own names. Both are encoded from the same ``model.mission`` values.
"""

from __future__ import annotations

import msgspec
from starlette.responses import JSONResponse

from rallypoint.model.mission import (
    ChangeType,
    Mission,
    MissionChange,
    MissionContent,
    MissionDetails,
    MissionItem,
    Role,
    Subscription,
)
from rallypoint.web.api.catalog import mission_detail, mission_info
from rallypoint.web.api.missions import change_view, subscription_view
from rallypoint.web.marti import missions_json as js

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z
HASH = "ab" * 32
MISSION = Mission(
    name="Op", guid="g-1", create_time=T0, creator_uid="ANDROID-a", creator_principal="alice",
    groups=frozenset({"Red", "Blue"}), description="the op", keywords=("k1",), password_hash="x",
    default_role=Role.READONLY, chat_room="room", classification="U",
)
CONTENT = MissionContent(hash=HASH, creator_uid="ANDROID-a", timestamp=T0 + 1, name="p.zip", size=4,
                         mime_type="application/zip", submitter="alice", keywords=("missionpackage",))
ITEM = MissionItem(uid="marker-1", creator_uid="ANDROID-a", timestamp=T0 + 2, cot_type="a-f-G", callsign="M1")
SUB = Subscription(mission="Op", client_uid="ANDROID-b", principal="bob", token="tok", role=Role.SUBSCRIBER,
                   create_time=T0 + 3)
CHANGE = MissionChange(type=ChangeType.ADD_CONTENT, mission="Op", creator_uid="ANDROID-a", timestamp=T0 + 1,
                       content_hash=HASH)
DETAILS = MissionDetails(mission=MISSION, contents=[CONTENT], items=[ITEM], role=Role.OWNER)


def marti(data: object) -> bytes:
    # As the Marti endpoints answer: Starlette's JSONResponse of the ApiResponse wrapper.
    return JSONResponse(js.envelope(js.MISSION_TYPE, data, "node-1")).body


def test_marti_mission_json_is_tak_servers_shape() -> None:
    doc = js.mission_json(MISSION, contents=[CONTENT], items=[ITEM], token="tok", role=Role.SUBSCRIBER)
    assert marti([doc]) == (
        b'{"version":"3","type":"Mission","data":[{"name":"Op","description":"the op","chatRoom":"room",'
        b'"baseLayer":"","bbox":"","path":"","classification":"U","tool":"public","keywords":["k1"],'
        b'"creatorUid":"ANDROID-a","createTime":"2023-11-14T22:13:20.000Z","externalData":[],"feeds":[],'
        b'"mapLayers":[],"defaultRole":{"type":"MISSION_READONLY_SUBSCRIBER","permissions":["MISSION_READ"]},'
        b'"ownerRole":{"type":"MISSION_OWNER","permissions":["MISSION_READ","MISSION_WRITE","MISSION_DELETE",'
        b'"MISSION_SET_ROLE","MISSION_SET_PASSWORD","MISSION_UPDATE_GROUPS","MISSION_MANAGE_FEEDS",'
        b'"MISSION_MANAGE_LAYERS"]},"inviteOnly":false,"expiration":-1,"guid":"g-1","groups":["Blue","Red"],'
        b'"uids":[{"data":"marker-1","timestamp":"2023-11-14T22:13:20.002Z","creatorUid":"ANDROID-a",'
        b'"details":{"type":"a-f-G","callsign":"M1","iconsetPath":""}}],'
        b'"contents":[{"data":{"keywords":["missionpackage"],"mimeType":"application/zip","name":"p.zip",'
        b'"submissionTime":"2023-11-14T22:13:20.001Z","submitter":"alice","uid":"' + HASH.encode() + b'",'
        b'"creatorUid":"ANDROID-a","hash":"' + HASH.encode() + b'","size":4,"expiration":-1},'
        b'"timestamp":"2023-11-14T22:13:20.001Z","creatorUid":"ANDROID-a"}],"passwordProtected":true,'
        b'"token":"tok","role":{"type":"MISSION_SUBSCRIBER","permissions":["MISSION_READ","MISSION_WRITE"]}}],'
        b'"nodeId":"node-1"}'
    )


def test_marti_subscription_and_change_json_are_tak_servers_shape() -> None:
    assert marti(js.subscription_json(SUB, with_token=False)) == (
        b'{"version":"3","type":"Mission","data":{"clientUid":"ANDROID-b","username":"bob",'
        b'"createTime":"2023-11-14T22:13:20.003Z","role":{"type":"MISSION_SUBSCRIBER",'
        b'"permissions":["MISSION_READ","MISSION_WRITE"]}},"nodeId":"node-1"}'
    )
    assert marti(js.change_json(CHANGE, {HASH: CONTENT})["contentResource"]["size"]) == (
        b'{"version":"3","type":"Mission","data":4,"nodeId":"node-1"}'
    )
    assert js.change_json(CHANGE)["contentResource"] == {"hash": HASH, "uid": HASH}


def test_native_api_mission_views_keep_their_field_names() -> None:
    assert msgspec.json.encode(mission_info(DETAILS)) == (
        b'{"name":"Op","guid":"g-1","description":"the op","tool":"public","creator_uid":"ANDROID-a",'
        b'"created":"2023-11-14T22:13:20.000Z","groups":["Blue","Red"],"keywords":["k1"],'
        b'"contents_count":1,"uids_count":1}'
    )
    assert msgspec.json.encode(mission_detail(DETAILS, 2)) == (
        b'{"name":"Op","guid":"g-1","description":"the op","tool":"public","creator_uid":"ANDROID-a",'
        b'"created":"2023-11-14T22:13:20.000Z","groups":["Blue","Red"],"keywords":["k1"],'
        b'"contents_count":1,"uids_count":1,"contents":[{"hash":"' + HASH.encode() + b'","name":"p.zip"}],'
        b'"uids":["marker-1"],"subscribers":2,"role":"MISSION_OWNER"}'
    )
    assert msgspec.json.encode(subscription_view(SUB, with_token=False)) == (
        b'{"mission":"Op","uid":"ANDROID-b","role":"MISSION_SUBSCRIBER","created_ms":1700000000003,"token":null}'
    )
    assert msgspec.json.encode(change_view(CHANGE)) == (
        b'{"type":"ADD_CONTENT","mission":"Op","creator_uid":"ANDROID-a","time_ms":1700000000001,'
        b'"content_hash":"' + HASH.encode() + b'","content_uid":null}'
    )
