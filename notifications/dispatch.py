"""Send the outbox through Apprise: per recipient and run, one routine message plus one per formal document.

Flows never send; they queue `Notification` rows with the change that caused them. This
module takes what is queued and delivers it:

1. **Claim** (one short transaction): queued rows, failed rows whose backoff has passed,
   unroutable rows (the routes may have been fixed) and rows claimed by a dispatcher that died
   (older than the lease) become `sending`. Two dispatchers never claim the same row.
2. **Send**, per recipient tag, in a thread pool (`messages_of`): everything routine claimed
   for one recipient (reminders, acknowledgements, returned replies) goes out as ONE message
   (one reminder letter, not forty mails), and each formal document (an individualized
   recommendation, a level-2 notice, the digest) goes out ALONE under its own subject: a
   ministry files the formal letter by its number and the office decides on each notice, so
   neither may hide inside a reminder or under another letter's subject. Every message goes
   through fresh copies of the Apprise servers that carry the tag — Apprise pauses 5.5 s
   between two sends through the same server object, so sharing none means never waiting.
   Formal letters travel also as attached HTML documents.
3. **Mark** each message's rows right after its send: `sent` (with where it went, URLs
   masked), `failed` with a backoff, `dead` after the configured attempts, or `unroutable`
   when no URL carries the tag. A crash between sending and marking leaves the rows `sending`;
   the next dispatcher after the lease sends them again: a message may be repeated, never lost.
4. **Again**, for what was queued meanwhile, until a claim finds nothing: one run serves a
   whole burst of `followup.notification.queued` events (the trigger fires once per window).

Secrets stay out of the database, logs and artifacts: every URL and error text is masked.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import apprise
import yaml
from sqlalchemy import Engine, and_, bindparam, or_, update

import followup.notifications.local_outbox  # noqa: F401  (registers outbox://)
from followup.config.loader import ConfigError
from followup.config.notifications import (
    Delivery,
    apprise_config_path,
    load_notification_config,
)
from followup.config.settings import get_settings
from followup.models.dates import as_date_or_none
from followup.models.db import get_engine
from followup.models.domain import NotificationStatus as NS
from followup.models.followup import Notification
from followup.models.registry import table_of
from followup.models.types import utcnow
from followup.notifications.render import strings

SEPARATOR = "\n\n" + "─" * 60 + "\n\n"


# --- routes: the Apprise configuration ----------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One Apprise server of the configuration, with its tags; never shown unmasked."""

    server: Any
    tags: frozenset[str]

    @property
    def masked(self) -> str:
        return masked_url(self.server)


def masked_url(server: Any) -> str:
    """The server's URL with passwords and tokens replaced by asterisks."""
    try:
        shown = str(server.url(privacy=True))
    except Exception:  # a plugin that cannot print itself still gets a name
        shown = f"{type(server).__name__}://"
    schema = getattr(server, "secure_protocol", None) if shown.endswith("://") else None
    if schema == "outbox":
        from followup.notifications.local_outbox import folder_of

        meta = {"host": getattr(server, "host", ""), "fullpath": getattr(server, "fullpath", "")}
        return f"outbox://{folder_of(meta)}"
    return shown


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def with_environment(content: str, path: Path) -> str:
    """`${SMTP_PASSWORD}` in the routes file is taken from the environment, so the file itself
    can be kept in version control without secrets (Apprise does not expand variables)."""
    missing = sorted({name for name in _VARIABLE.findall(content) if name not in os.environ})
    if missing:
        raise ConfigError(f"{path}: {', '.join('${' + m + '}' for m in missing)}: not set in the environment")
    return _VARIABLE.sub(lambda m: os.environ[m.group(1)], content)


@dataclass(frozen=True)
class RefusedRoute:
    """A URL of the routes file that Apprise would not load: where it is, its tags, why (masked)."""

    where: str
    tags: frozenset[str]
    reason: str


class RouteTable(list[Route]):
    """The servers Apprise loaded, and the URLs it refused (`refused`), so that a recipient
    whose only URL was refused is told so, not that no URL has its tag."""

    refused: list[RefusedRoute]


@dataclass(frozen=True)
class _Entry:
    line: int
    url: str
    tags: frozenset[str]
    document: str  # the entry alone, as a routes file of its own
    servers: int  # how many servers it defines


def _tags(value: Any) -> set[str]:
    items = value if isinstance(value, list) else re.split(r"[\s,]+", str(value or ""))
    return {str(t).strip() for t in items if str(t).strip()}


def _entries(content: str) -> list[_Entry]:
    """Each URL of the routes file with its line and tags (Apprise's YAML or TEXT format)."""
    try:
        data = yaml.safe_load(content)
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("urls"), list):
        root = yaml.compose(content)
        assert root is not None  # the same text safe_load just read as a mapping
        nodes = next(v for k, v in root.value if k.value == "urls").value
        common = _tags(data.get("tag") or data.get("tags"))
        found = []
        for node, item in zip(nodes, data["urls"], strict=True):
            url, options = (item, None) if not isinstance(item, dict) else next(iter(item.items()))
            blocks = options if isinstance(options, list) else [options or {}]
            tags = set(common)
            for block in blocks:
                if isinstance(block, dict):
                    tags |= _tags(block.get("tag") or block.get("tags"))
            document = yaml.safe_dump({"version": 1, "urls": [item]}, allow_unicode=True)
            found.append(_Entry(node.start_mark.line + 1, str(url), frozenset(tags), document, len(blocks)))
        return found
    found = []
    for number, line in enumerate(content.splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith(("#", ";")) or "://" not in text or text.startswith("include "):
            continue
        separator = text.find("=")
        named, url = (text[:separator], text[separator + 1:].strip()) if 0 <= separator < text.find("://") else ("", text)
        found.append(_Entry(number, url, frozenset(_tags(named)), url, 1))
    return found


_USERINFO = re.compile(r"(://)[^/@\s]*@")
_SECRET_QUERY = re.compile(r"(?i)\b(pass|password|pwd|token|apikey|key|secret)=[^&\s]*")
#: Apprise's messages that only say that something failed, not what
_GENERIC = ("Could not load", "Failed to load Apprise configuration")


def _masked(text: str, url: str) -> str:
    """Apprise's message about `url`, with the password (in any form Apprise prints) hidden."""
    from urllib.parse import urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        text = text.replace(password, "****")
    return _SECRET_QUERY.sub(r"\1=****", _USERINFO.sub(r"\1****@", text))


def _refused(entry: _Entry) -> str | None:
    """Why Apprise refuses the entry's URL (masked), or None when it loads it."""
    capture = _ThreadLog()
    logger = logging.getLogger("apprise")
    logger.addHandler(capture)
    try:
        config = apprise.AppriseConfig()
        loaded = len(config.servers()) if config.add_config(entry.document) else 0
    finally:
        logger.removeHandler(capture)
    if loaded >= entry.servers:
        return None
    reasons = [_masked(line, entry.url) for line in dict.fromkeys(capture.lines) if not line.startswith(_GENERIC)]
    scheme = entry.url.split("://", 1)[0]
    return f"Apprise refused the URL {scheme}://…" + (f": {'; '.join(reasons)}" if reasons else "")


def _check_ministry_tags(path: Path, entries: Sequence[_Entry]) -> None:
    """`ministry:<code>` and `ministry:<code>:approver` name a ministry of config/ministries.yaml:
    a mistyped code would leave that ministry's letters without a route."""
    from followup.config.loader import load_ministries

    codes: set[str] | None = None
    for entry in entries:
        for tag in sorted(entry.tags):
            parts = tag.split(":")
            if parts[0] != "ministry":
                continue
            if codes is None:
                codes = {m.code for m in load_ministries()}
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "approver"):
                raise ConfigError(f"{path}: line {entry.line}: tag {tag!r}: a ministry's tags are ministry:<code> "
                                  "and ministry:<code>:approver")
            if parts[1] not in codes:
                raise ConfigError(f"{path}: line {entry.line}: tag {tag!r}: no ministry {parts[1]!r} in the ministries "
                                  f"file (known: {', '.join(sorted(codes))})")


def load_routes(path: Path | None = None) -> RouteTable:
    """Every server the Apprise configuration file defines, with its tags; the URLs Apprise
    refused are kept aside (`refused`) and logged, a ministry tag of no known ministry is an error."""
    path = Path(path or apprise_config_path())
    if not path.is_file():
        raise ConfigError(f"{path}: Apprise configuration file not found (FOLLOWUP_APPRISE_CONFIG)")
    content = with_environment(path.read_text(encoding="utf-8"), path)
    entries = _entries(content)
    _check_ministry_tags(path, entries)
    config = apprise.AppriseConfig()
    if not config.add_config(content):
        raise ConfigError(f"{path}: not an Apprise configuration (TEXT or YAML)")
    servers = config.servers()
    refused = [RefusedRoute(f"line {e.line}", e.tags, reason) for e in entries if (reason := _refused(e))]
    for r in refused:
        logging.getLogger(__name__).warning("%s: %s (tags %s): %s", path, r.where, ", ".join(sorted(r.tags)), r.reason)
    if not servers:
        detail = "; ".join(f"{r.where}: {r.reason}" for r in refused) or "check the URLs' syntax"
        raise ConfigError(f"{path}: no usable URL ({detail})")
    table = RouteTable(Route(s, frozenset(str(t) for t in s.tags)) for s in servers)
    table.refused = refused
    return table


def secrets_of(routes: Iterable[Route]) -> list[str]:
    """The strings that must never appear in a log line or an error message."""
    found: set[str] = set()
    for route in routes:
        server = route.server
        for name in ("password", "token", "apikey", "secret", "access_token", "webhook_id", "webhook_token"):
            value = getattr(server, name, None)
            if isinstance(value, str) and len(value) >= 3:
                found.add(value)
        try:
            full = server.url(privacy=False)
            if full != route.masked:
                found.add(full)
        except Exception:  # a plugin that cannot print itself has no URL to hide
            pass
    return sorted(found, key=len, reverse=True)


def mask(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "****")
    return text


# --- composing: one routine message per recipient, one message per formal document ------------------

#: kinds that are documents of their own: each leaves alone, under its own subject
ALONE = frozenset({"individualized", "level2", "digest"})


@dataclass
class Letter:
    subject: str
    text: str
    html: str | None
    attachments: list[tuple[str, str]] = field(default_factory=list)  # (file name, content): HTML or CSV
    #: the day the letter is dated (its `as_of` or `issued_on`): the local outbox names its file by it
    dated: date | None = None


def messages_of(rows: Sequence[Any]) -> list[tuple[str, list[Any]]]:
    """The messages one run sends, as (recipient, rows), in recipient order: per recipient, one
    message with all of its routine rows, and one message for each formal document (`ALONE`)."""
    by_recipient: dict[str, list[Any]] = {}
    for row in sorted(rows, key=lambda r: (r.created_at, r.id)):
        by_recipient.setdefault(row.recipient, []).append(row)
    messages: list[tuple[str, list[Any]]] = []
    for recipient, batch in sorted(by_recipient.items()):
        routine = [r for r in batch if r.kind not in ALONE]
        if routine:
            messages.append((recipient, routine))
        messages += [(recipient, [r]) for r in batch if r.kind in ALONE]
    return messages


def letter_date(row: Any) -> date | None:
    """The day a queued message is dated: its payload's `issued_on` or `as_of` (the run's day,
    also when a past day is run), else the day it was queued in the office's time zone."""
    payload = row.payload if isinstance(row.payload, dict) else {}
    for key in ("issued_on", "as_of"):
        value = payload.get(key)
        if isinstance(value, str):
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                continue
    created = getattr(row, "created_at", None)
    return as_date_or_none(created, tz=get_settings().tz) if created is not None else None


def _combined_subject(rows: Sequence[Any]) -> str:
    """A subject that says what a routine message holds: both subjects, or how many of each kind."""
    subjects = [r.subject for r in rows]
    if len(subjects) <= 2:
        return " | ".join(subjects)
    s = strings(rows[0].language)
    kinds = Counter(str(r.kind) for r in rows)
    held = ", ".join(f"{s['values']['kind'].get(kind, kind)} — {n}" for kind, n in kinds.items())
    return str(s["labels"]["combined"]).replace("{count}", str(len(rows))).replace("{kinds}", held)


_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S | re.I)
_STYLE = re.compile(r"<style[^>]*>.*?</style>", re.S | re.I)


def attachments_of(row: Any) -> list[tuple[str, str]]:
    """The files a queued row travels with, as (file name, content): a formal letter's own HTML,
    named by its payload's `document`, then its `attachment` column (a long list as a spreadsheet),
    named by its payload's `attachment`. A row queued before letters named their `document` named
    its HTML as its `attachment`, with the column empty: it still travels."""
    payload = row.payload if isinstance(row.payload, dict) else {}
    files: list[tuple[str, str]] = []
    if payload.get("document") and row.body_html:
        files.append((str(payload["document"]), row.body_html))
    if payload.get("attachment") and (row.attachment is not None or row.body_html):
        files.append((str(payload["attachment"]), row.attachment if row.attachment is not None else row.body_html))
    return files


def compose(rows: Sequence[Any]) -> Letter:
    """One message of `messages_of` (a recipient's routine rows, or one formal document) as one letter, oldest first."""
    rows = sorted(rows, key=lambda r: (r.created_at, r.id))
    attachments = [file for r in rows for file in attachments_of(r)]
    dated = max((d for d in map(letter_date, rows) if d is not None), default=None)
    if len(rows) == 1:
        only = rows[0]
        return Letter(only.subject, only.body_text, only.body_html, attachments, dated)
    subject = _combined_subject(rows)
    text = SEPARATOR.join(f"{r.subject}\n\n{r.body_text}" for r in rows)
    html = None
    if any(r.body_html for r in rows):
        styles = "".join(dict.fromkeys(m.group(0) for r in rows if r.body_html for m in _STYLE.finditer(r.body_html)))
        parts = []
        for r in rows:
            if r.body_html:
                inner = _BODY.search(r.body_html)
                parts.append(f"<article>{inner.group(1) if inner else r.body_html}</article>")
            else:
                escaped = r.body_text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                parts.append(f"<article><h2>{r.subject}</h2><pre>{escaped}</pre></article>")
        html = (
            f"<!doctype html><html><head><meta charset='utf-8'>{styles}</head><body>"
            + "<hr style='margin:2em 0'>".join(parts)
            + "</body></html>"
        )
    return Letter(subject, text, html, attachments, dated)


# --- sending ----------------------------------------------------------------------------------------


class _ThreadLog(logging.Handler):
    """Apprise's warnings of the calling thread only: the reason a send failed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(record.getMessage())


def _wants_html(server: Any) -> bool:
    return server.notify_format == apprise.NotifyFormat.HTML or getattr(server, "secure_protocol", None) == "outbox"


def send_letter(letter: Letter, routes: Sequence[Route], *, delivery: Delivery) -> tuple[list[str], list[str]]:
    """Send one letter through each route; returns (delivered to, errors), URLs masked."""
    delivered, errors = [], []
    with tempfile.TemporaryDirectory(prefix="followup-attach-") as tmp:
        files: list[Any] = []  # paths, as AppriseAttachment takes them
        for name, content in letter.attachments:
            path = Path(tmp) / Path(name).name
            path.write_text(content, encoding="utf-8")
            files.append(str(path))
        for route in routes:
            server = copy.copy(route.server)  # its own throttle clock: no 5.5 s wait behind another recipient
            if getattr(server, "secure_protocol", None) == "outbox":
                server.notify_format = apprise.NotifyFormat.HTML  # files for a browser: keep the HTML as it is
                if letter.dated is not None and isinstance(getattr(server, "_default_args", None), dict):
                    # the decorator plugin hands `_default_args` to deliver() as `meta`: a new dict on
                    # this copy only, so that the file is named by the letter's own date
                    server._default_args = {**server._default_args, "letter_date": letter.dated.isoformat()}
            host = getattr(server, "host", None)
            if host in delivery.trusted_hosts:
                server.request_rate_per_sec = delivery.trusted_hosts[host]
            html = _wants_html(server) and letter.html is not None
            sender = apprise.Apprise()
            sender.add(server)
            capture = _ThreadLog()
            logger = logging.getLogger("apprise")
            logger.addHandler(capture)
            try:
                ok = sender.notify(
                    body=(letter.html if html else letter.text) or "",
                    title=letter.subject,
                    body_format=apprise.NotifyFormat.HTML if html else apprise.NotifyFormat.TEXT,
                    attach=apprise.AppriseAttachment(files) if files and server.attachment_support else None,
                )
            except Exception as exc:  # a plugin bug must not lose the outbox
                ok, capture.lines = False, [*capture.lines, f"{type(exc).__name__}: {exc}"]
            finally:
                logger.removeHandler(capture)
            if ok:
                delivered.append(route.masked)
            else:
                reason = "; ".join(dict.fromkeys(capture.lines)) or "the server refused the message"
                errors.append(f"{route.masked}: {reason}")
    return delivered, errors


# --- the outbox: claim, mark ---------------------------------------------------------------------


@dataclass
class Outcome:
    """What happened to one message of a run (one recipient's routine rows, or one formal document)."""

    recipient: str
    keys: list[str]
    status: str  # sent, failed, dead, unroutable
    delivered_to: list[str] = field(default_factory=list)
    error: str | None = None
    dead: list[str] = field(default_factory=list)


@dataclass
class DispatchResult:
    claimed: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    #: claims that found something: 1 when nothing was queued during the run
    rounds: int = 0

    @property
    def sent(self) -> int:
        return sum(len(o.keys) for o in self.outcomes if o.status == NS.SENT)

    @property
    def messages(self) -> int:
        """Letters that left (one per recipient and server)."""
        return sum(len(o.delivered_to) for o in self.outcomes if o.status == NS.SENT)

    @property
    def dead(self) -> list[str]:
        return [k for o in self.outcomes for k in o.dead]

    @property
    def unroutable(self) -> list[str]:
        return sorted({o.recipient for o in self.outcomes if o.status == NS.UNROUTABLE})

    @property
    def failed(self) -> int:
        return sum(len(o.keys) - len(o.dead) for o in self.outcomes if o.status in (NS.FAILED, NS.DEAD))

    def summary(self) -> dict[str, int]:
        return {
            "claimed": self.claimed, "sent": self.sent, "messages": self.messages, "failed": self.failed,
            "dead": len(self.dead), "unroutable": sum(len(o.keys) for o in self.outcomes if o.status == NS.UNROUTABLE),
        }


def claim(engine: Engine, *, now: datetime, lease: timedelta, recipients: Sequence[str] | None = None,
          only_queued: bool = False) -> list[Any]:
    """Take what is due for sending; rows another dispatcher holds (within its lease) are left alone.

    `only_queued`: new messages only, not the retries (failed after their backoff, unroutable,
    abandoned by a dead dispatcher) — the later rounds of one run, which must not retry a
    message the same run has just failed to send."""
    table = table_of(Notification)
    due = table.c.status == NS.QUEUED.value if only_queued else or_(
        table.c.status == NS.QUEUED.value,
        table.c.status == NS.UNROUTABLE.value,
        and_(table.c.status == NS.FAILED.value, or_(table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= now)),
        and_(table.c.status == NS.SENDING.value, table.c.claimed_at < now - lease),
    )
    condition = and_(due, table.c.recipient.in_(list(recipients))) if recipients else due
    stmt = update(table).where(condition).values(status=NS.SENDING.value, claimed_at=now).returning(*table.c)
    with engine.begin() as connection:
        return list(connection.execute(stmt).all())


def _mark(engine: Engine, outcome: Outcome, rows: Sequence[Any], *, now: datetime, delivery: Delivery) -> None:
    table = table_of(Notification)
    ids = [r.id for r in rows]
    with engine.begin() as connection:
        if outcome.status == NS.SENT:
            connection.execute(
                update(table).where(table.c.id.in_(ids)).values(
                    status=NS.SENT.value, sent_at=now, attempts=table.c.attempts + 1, last_error=None,
                    claimed_at=None, next_attempt_at=None, delivered_to=", ".join(outcome.delivered_to),
                )
            )
        elif outcome.status == NS.UNROUTABLE:
            connection.execute(
                update(table).where(table.c.id.in_(ids)).values(
                    status=NS.UNROUTABLE.value, last_error=outcome.error, claimed_at=None, next_attempt_at=None,
                )
            )
        else:
            params = []
            for r in rows:
                attempts = r.attempts + 1
                dead = attempts >= delivery.max_attempts
                if dead:
                    outcome.dead.append(r.dedupe_key)
                params.append({
                    "b_id": r.id, "b_attempts": attempts, "b_status": (NS.DEAD if dead else NS.FAILED).value,
                    "b_next": None if dead else now + delivery.backoff(attempts),
                })
            connection.execute(
                update(table).where(table.c.id == bindparam("b_id")).values(
                    status=bindparam("b_status"), attempts=bindparam("b_attempts"), next_attempt_at=bindparam("b_next"),
                    last_error=outcome.error, claimed_at=None,
                ),
                params,
            )
            if outcome.dead and len(outcome.dead) == len(rows):
                outcome.status = NS.DEAD.value


def deliver_to(recipient: str, rows: Sequence[Any], routes: Sequence[Route], *, engine: Engine, delivery: Delivery,
               secrets: Sequence[str], apprise_file: Path) -> Outcome:
    """Compose, send and mark one message to one recipient (rows from `messages_of`)."""
    keys = [r.dedupe_key for r in rows]
    mine = [r for r in routes if recipient in r.tags]
    refused = [r for r in getattr(routes, "refused", ()) if recipient in r.tags]
    if not mine and refused:
        outcome = Outcome(recipient, keys, NS.UNROUTABLE.value,
                          error="; ".join(f"{apprise_file}: {r.where} (tag {recipient!r}): {r.reason}" for r in refused))
    elif not mine:
        outcome = Outcome(recipient, keys, NS.UNROUTABLE.value,
                          error=f"no Apprise URL has the tag {recipient!r} in {apprise_file} (FOLLOWUP_APPRISE_CONFIG)")
    else:
        delivered, errors = send_letter(compose(rows), mine, delivery=delivery)
        if errors:
            outcome = Outcome(recipient, keys, NS.FAILED.value, delivered, mask("; ".join(errors), secrets))
        else:
            outcome = Outcome(recipient, keys, NS.SENT.value, delivered)
    _mark(engine, outcome, rows, now=utcnow(), delivery=delivery)
    return outcome


#: rounds of one dispatch run at most: a producer that never stops queueing cannot keep one run
#: alive for ever (the next run, by trigger or schedule, takes over)
MAX_ROUNDS = 20


def dispatch(*, engine: Engine | None = None, apprise_file: Path | None = None, delivery: Delivery | None = None,
             recipients: Sequence[str] | None = None, max_rounds: int = MAX_ROUNDS) -> DispatchResult:
    """Send everything due in the outbox, then what was queued meanwhile, until it is empty.

    One run is started for a whole burst of `followup.notification.queued` events (prefect.yaml:
    the trigger fires on the first one and ignores the rest of its window), so the run itself
    must not end while letters queued during it wait: each round after the first claims the
    messages queued since, until a round finds none. Retries (failed, unroutable, abandoned
    rows) are the first round's only: a message this run failed to send waits for its backoff.
    """
    engine = engine or get_engine()
    delivery = delivery or load_notification_config().delivery
    apprise_file = Path(apprise_file or apprise_config_path())
    routes = load_routes(apprise_file)  # a broken routes file fails before anything is claimed
    secrets = secrets_of(routes)
    result = DispatchResult()
    lease = timedelta(minutes=delivery.lease_minutes)
    while result.rounds < max_rounds:
        rows = claim(engine, now=utcnow(), lease=lease, recipients=recipients, only_queued=result.rounds > 0)
        if not rows:
            break
        result.rounds += 1
        result.claimed += len(rows)
        result.outcomes += _deliver_round(rows, routes, engine=engine, delivery=delivery, secrets=secrets,
                                          apprise_file=apprise_file)
    return result


def _deliver_round(rows: Sequence[Any], routes: Sequence[Route], *, engine: Engine, delivery: Delivery,
                   secrets: Sequence[str], apprise_file: Path) -> list[Outcome]:
    """One round: every claimed message (one routine message per recipient, one per formal
    document: `messages_of`), messages in parallel."""
    messages = messages_of(rows)
    with ThreadPoolExecutor(max_workers=min(delivery.concurrency, len(messages)), thread_name_prefix="dispatch") as pool:
        futures = [
            pool.submit(deliver_to, recipient, batch, routes, engine=engine, delivery=delivery, secrets=secrets, apprise_file=apprise_file)
            for recipient, batch in messages
        ]
        return [f.result() for f in futures]
