"""The mailbox's statistics as Prometheus gauges and counters (``ServerMetrics``)."""

from __future__ import annotations


def mailbox_gauges(stats: dict[str, int]) -> list[tuple[str, str, float]]:
    """Sizes from :meth:`Mailbox.statistics`, for ``ServerMetrics.add_gauges``."""
    return [
        ("rallypoint_mailbox_pending", "Stored messages waiting for an offline recipient", float(stats["pending"])),
        ("rallypoint_mailbox_write_queue", "New mailbox messages waiting to be written", float(stats["write_queue"])),
        (
            "rallypoint_mailbox_unwritten",
            "Mailbox changes (messages, cursors, recipients) not yet on disk",
            float(stats["unwritten"]),
        ),
    ]


def mailbox_counters(stats: dict[str, int]) -> list[tuple[str, str, float]]:
    """Counters from :meth:`Mailbox.statistics`, for ``ServerMetrics.add_counters``."""
    return [
        ("rallypoint_mailbox_queued", "Messages kept for offline recipients", float(stats["queued"])),
        ("rallypoint_mailbox_delivered", "Kept messages delivered on reconnect", float(stats["delivered"])),
        ("rallypoint_mailbox_expired", "Kept messages dropped because they expired", float(stats["expired"])),
        (
            "rallypoint_mailbox_overflow",
            "Messages not kept because a mailbox bound was reached",
            float(stats["overflow"]),
        ),
        (
            "rallypoint_mailbox_malformed",
            "Mail tags and written reports of other nodes refused as malformed",
            float(stats["malformed_reports"]),
        ),
    ]
