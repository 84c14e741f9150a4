"""The Prefect events the portal emits, after its transaction has committed.

An event only wakes a flow sooner: `followup.notification.queued` the dispatcher (which also
runs every 10 minutes), `followup.response.submitted` the recording of a confirmed reply (the
`record-responses` deployment's schedule picks up confirmed, unrecorded replies anyway). So
emitting never decides anything: a Prefect server that is down, or an error inside Prefect's
client, is a warning in the log, never a lost reply.

`emit_event` hands the event to Prefect's events worker (a background thread) and returns at
once; the worker connects, retries and gives up on its own, never blocking a request. Without
PREFECT_API_URL nothing is emitted: Prefect would otherwise start a temporary server of its own
inside the web app's process.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from prefect.events import emit_event
from prefect.settings import PREFECT_API_URL

logger = logging.getLogger("followup.web")

#: Prefect's limit on an event's related resources is 100 (server.events.maximum_related_resources)
MAX_RELATED = 100


def prefect_configured() -> bool:
    """Whether a Prefect server is named (PREFECT_API_URL): only then are events sent."""
    return bool(PREFECT_API_URL.value())


def _emit(event: str, *, resource: dict[str, str], payload: dict[str, Any],
          related: list[dict[str, str]] | None = None) -> bool:
    if not prefect_configured():
        logger.info("%s not emitted: PREFECT_API_URL is not set (the deployments' schedules pick the work up)", event)
        return False
    try:
        emit_event(event=event, resource=resource, related=related, payload=payload)
    except Exception as exc:  # noqa: BLE001 - whatever Prefect's client raises, the reply is committed already
        logger.warning("%s could not be emitted (%s: %s); the deployments' schedules pick the work up", event,
                       exc.__class__.__name__, exc)
        return False
    return True


def reply_confirmed(*, reply_id: int, reference: str, ministry: str, items: Sequence[int]) -> bool:
    """`followup.response.submitted` for a confirmed reply: the recording flow may run now."""
    related = [{"prefect.resource.id": f"followup.ministry.{ministry}", "prefect.resource.role": "ministry"}][:MAX_RELATED]
    return _emit(
        "followup.response.submitted",
        resource={"prefect.resource.id": f"followup.response.{reply_id}", "prefect.resource.name": reference},
        related=related,
        payload={"reply_id": reply_id, "ministry": ministry, "items": list(items)},
    )


def notification_queued(*, keys: Sequence[str]) -> bool:
    """`followup.notification.queued`: the dispatcher sends the validating official's message now."""
    return _emit("followup.notification.queued", resource={"prefect.resource.id": "followup.outbox"},
                 payload={"count": len(keys), "keys": list(keys)[:50]})
