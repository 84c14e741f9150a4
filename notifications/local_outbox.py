"""`outbox://DIR` — an Apprise notification that writes each message as a file into DIR.

The default routes (config/apprise.yaml) use it, so a new installation and the demo deliver
without a mail server: a clerk opens var/outbox/<recipient>/ and reads the letters. A relative
DIR is relative to the working directory (`outbox://var/outbox/ombudsman`); an absolute one
is given as a parameter (`outbox://outbox?path=/srv/followup/outbox/ombudsman`). Attachments are copied next to
the message. Importing this module registers the schema with Apprise.
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from apprise.decorators import notify

SCHEMA = "outbox"


def folder_of(meta: dict[str, Any]) -> Path:
    """The folder a URL names: outbox://var/outbox/x -> var/outbox/x (relative to the working
    directory); outbox://any?path=/srv/outbox/x -> /srv/outbox/x (Apprise drops a third slash,
    so an absolute folder is given as `path=`)."""
    given = (meta.get("qsd") or {}).get("path")
    if given:
        return Path(given)
    return Path((meta.get("host") or "") + (meta.get("fullpath") or ""))


def _safe(name: str, limit: int = 80) -> str:
    cleaned = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', " ", name).strip().strip(".")
    return (" ".join(cleaned.split()) or "message")[:limit]


@notify(on=SCHEMA, name="Local outbox folder")  # type: ignore[untyped-decorator,no-untyped-call]  # Apprise is untyped
# Apprise passes every argument by name, used or not
def deliver(body: str, title: str, notify_type: Any, body_format: Any, meta: dict[str, Any], attach: Any = None, *args: Any, **kwargs: Any) -> bool:  # noqa: ARG001
    """Write one message (and its attachments) into the folder the URL names."""
    folder = folder_of(meta)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y-%m-%d %H%M%S")
    suffix = ".html" if getattr(body_format, "value", body_format) == "html" else ".txt"
    base = f"{stamp} {_safe(title or 'message')}"
    target = folder / f"{base}{suffix}"
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{base} ({n}){suffix}"
    if suffix == ".txt":
        body = f"{title}\n\n{body}" if title else body
    target.write_text(body, encoding="utf-8")
    for attachment in attach or []:
        if attachment.path:
            shutil.copyfile(attachment.path, folder / f"{stamp} {_safe(attachment.name or Path(attachment.path).name, 120)}")
    return True
