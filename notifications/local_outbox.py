"""`outbox://DIR` — an Apprise notification that writes each message as a file into DIR.

The default routes (config/apprise.yaml) use it, so a new installation and the demo deliver
without a mail server: a clerk opens var/outbox/<recipient>/ and reads the letters. A relative
DIR is relative to the working directory (`outbox://var/outbox/ombudsman`); an absolute one
is given as a parameter (`outbox://outbox?path=/srv/followup/outbox/ombudsman`), in a routes
file of Apprise's TEXT format: Apprise 1.x's YAML reader fails on a query string of a schema
registered this way (KeyError 'password' in its URL parsing). Attachments are copied next to
the message. Importing this module registers the schema with Apprise.
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from apprise.decorators import notify

from followup.config.settings import get_settings

SCHEMA = "outbox"


def folder_of(meta: dict[str, Any]) -> Path:
    """The folder a URL names: outbox://var/outbox/x -> var/outbox/x (relative to the working
    directory); outbox://any?path=/srv/outbox/x -> /srv/outbox/x (Apprise drops a third slash,
    so an absolute folder is given as `path=`)."""
    given = (meta.get("qsd") or {}).get("path")
    if given:
        return Path(given)
    return Path((meta.get("host") or "") + (meta.get("fullpath") or ""))


#: bytes of a file name's subject part: file systems allow 255 bytes, a Cyrillic letter takes two
NAME_BYTES = 180


def _safe(name: str, limit: int = NAME_BYTES) -> str:
    """The subject as a file name: characters no file system takes become spaces, and a name too
    long for one is cut after its last whole word that fits, with "…" (never in mid-word)."""
    cleaned = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', " ", name).strip().strip(".")
    text = " ".join(cleaned.split()) or "message"
    if len(text.encode("utf-8")) <= limit:
        return text
    words, kept = text.split(" "), ""
    for word in words:
        candidate = f"{kept} {word}" if kept else word
        if len(candidate.encode("utf-8")) > limit - len("…".encode()):
            break
        kept = candidate
    if not kept:  # one word longer than the limit: cut it by characters
        kept = text.encode("utf-8")[: limit - 3].decode("utf-8", "ignore")
    return kept.rstrip(" ,;(-–—") + "…"


def _stamp(meta: dict[str, Any]) -> str:
    """The file's date and time: the letter's own date (`letter_date`, set by the dispatcher: the day
    of the run that wrote it, also when a past day is run) and the time of writing, in the office's
    time zone (FOLLOWUP_TIMEZONE, Asia/Almaty), not the server's."""
    now = datetime.now(get_settings().tz)
    day = meta.get("letter_date") or now.date().isoformat()
    return f"{day} {now:%H%M%S}"


@notify(on=SCHEMA, name="Local outbox folder")  # type: ignore[untyped-decorator,no-untyped-call]  # Apprise is untyped
# Apprise passes every argument by name, used or not
def deliver(body: str, title: str, notify_type: Any, body_format: Any, meta: dict[str, Any], attach: Any = None, *args: Any, **kwargs: Any) -> bool:  # noqa: ARG001
    """Write one message (and its attachments) into the folder the URL names."""
    folder = folder_of(meta)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = _stamp(meta)
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
