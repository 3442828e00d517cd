"""Mission subscriptions and invitations: the rows saying who follows a mission and who may join it."""

from __future__ import annotations

import sqlite3

from rallypoint.model.mission import Invitation, InviteType, Role, Subscription
from rallypoint.storage.sqlite.missions_schema import SUB_COLUMNS


def insert_subscription(db: sqlite3.Connection, guid: str, sub: Subscription) -> None:
    """Insert or replace the client's subscription."""
    db.execute(
        f"INSERT OR REPLACE INTO mission_subscriptions (guid, {SUB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (guid, sub.client_uid, sub.principal, sub.token, sub.role.value, sub.create_time),
    )


def delete_subscription(db: sqlite3.Connection, guid: str, client_uid: str) -> bool:
    """Drop a subscription; False if there was none."""
    cur = db.execute("DELETE FROM mission_subscriptions WHERE guid = ? AND client_uid = ?", (guid, client_uid))
    return cur.rowcount > 0


def update_role(db: sqlite3.Connection, guid: str, client_uid: str, role: Role) -> bool:
    """Change a subscriber's role; False if the client is not subscribed."""
    cur = db.execute(
        "UPDATE mission_subscriptions SET role = ? WHERE guid = ? AND client_uid = ?", (role.value, guid, client_uid)
    )
    return cur.rowcount > 0


def select_subscriptions(db: sqlite3.Connection, guid: str | None) -> list[Subscription]:
    """Subscriptions of one mission, or of every mission when ``guid`` is None."""
    query = (
        "SELECT m.name, s.client_uid, s.principal, s.token, s.role, s.create_time "
        "FROM mission_subscriptions s JOIN missions m ON m.guid = s.guid"
    )
    cur = (
        db.execute(query + " ORDER BY s.create_time")
        if guid is None
        else db.execute(query + " WHERE s.guid = ? ORDER BY s.create_time", (guid,))
    )
    return [
        Subscription(mission=name, client_uid=cu, principal=p, token=t, role=Role(r), create_time=ct)
        for name, cu, p, t, r, ct in cur
    ]


def insert_invitation(db: sqlite3.Connection, guid: str, inv: Invitation) -> None:
    """Record (or refresh) an invitation."""
    db.execute(
        "INSERT OR REPLACE INTO mission_invitations (guid, type, invitee, creator_uid, role, create_time)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (guid, inv.type.value, inv.invitee, inv.creator_uid, inv.role.value, inv.create_time),
    )


def select_invitations(db: sqlite3.Connection, guid: str) -> list[Invitation]:
    """Invitations to one mission."""
    cur = db.execute(
        "SELECT m.name, i.type, i.invitee, i.creator_uid, i.role, i.create_time "
        "FROM mission_invitations i JOIN missions m ON m.guid = i.guid WHERE i.guid = ? ORDER BY i.create_time",
        (guid,),
    )
    return [
        Invitation(mission=n, type=InviteType(t), invitee=i, creator_uid=c, role=Role(r), create_time=ct)
        for n, t, i, c, r, ct in cur
    ]
