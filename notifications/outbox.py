"""The outbox: flows queue messages here, in the transaction of the change that caused them.

`queue()` is idempotent on the dedupe key (insert-if-absent on both databases), so a run
repeated for the same day, or two runs at once, queue each message once. Sending is the
dispatcher's job (notifications issue); nothing here talks to the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from followup.models.db import insert_absent
from followup.models.followup import Notification
from followup.models.registry import table_of
from followup.models.types import utcnow


def queue(session: Session, messages: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert messages not queued before; returns {dedupe_key: id} of the ones inserted now.

    Each message: recipient, kind, subject, body_text, dedupe_key; optionally language,
    body_html, payload, attachment.
    """
    if not messages:
        return {}
    connection = session.connection()
    table = table_of(Notification)
    now = utcnow()
    rows = [
        {"language": "ru", "body_html": None, "payload": None, "attachment": None, "status": "queued", "attempts": 0, "created_at": now, **m}
        for m in messages
    ]
    stmt = insert_absent(connection, table, "dedupe_key").returning(table.c.id, table.c.dedupe_key)
    inserted: dict[str, int] = {}
    for row in rows:  # a handful per run (one per recipient), so one statement each is fine
        result = connection.execute(stmt, row).first()
        if result is not None:
            inserted[result.dedupe_key] = result.id
    return inserted
