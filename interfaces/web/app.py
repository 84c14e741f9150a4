"""The ministries' reply portal: a ministry opens the link in its letter, sees its open
recommendations, answers them (with evidence files, or through a spreadsheet) and has the reply
confirmed by its validating official. Server-rendered pages that work without JavaScript.

Security, in short (README: The reply portal): the link's token is exchanged at once for a signed
session cookie, and every request checks the ministry's link generation in the registry again
(`followup links revoke` ends every session at once); the session sees only its ministry's rows;
every form carries a CSRF token; every response carries strict security headers; tokens never
reach a log or an error page; uploads are typed from their content and kept by hash.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeSerializer
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from followup.config.office import office_contact
from followup.config.policy import Policy, load_policy
from followup.config.settings import get_settings
from followup.interfaces.web import events, portal
from followup.interfaces.web.evidence import (
    ACCEPT_ATTRIBUTE,
    BadForm,
    EvidenceStore,
    FormTooLarge,
    ReceivedForm,
    content_disposition,
    read_multipart,
    sniff,
    sniff_table,
)
from followup.interfaces.web.i18n import LANGUAGE_NAMES, LANGUAGES, Translator, format_day, language_or_default
from followup.interfaces.web.security import (
    FailureLimiter,
    SecurityHeaders,
    csrf_ok,
    install_log_masking,
    new_csrf_token,
)
from followup.models.calendar import local_today
from followup.models.dates import parse_date
from followup.models.db import get_engine
from followup.models.domain import ReplyState
from followup.models.links import (
    BadLink,
    check_generation,
    confirm_token,
    confirm_url,
    read_confirm_token,
    read_ministry_token,
)
from followup.models.policy import REPLY_STATUSES
from followup.models.replies import (
    ClaimInput,
    EvidenceInput,
    ForeignItems,
    Reply,
    ReplyNotDraft,
    ReplyNotFound,
    ReplyProblem,
    ReplyRejected,
    check_reply,
    claimed_items,
    confirm_reply,
    create_draft_reply,
)
from followup.models.types import utcnow
from followup.notifications.outbox import queue
from followup.notifications.render import render
from followup.spreadsheets.ingest import RESPONSE_COLUMNS
from followup.spreadsheets.tabular import ImportFileError, read_table, write_table

logger = logging.getLogger("followup.web")

HERE = Path(__file__).resolve().parent
#: the most items one reply form lists (a larger answer goes through the spreadsheet)
MAX_FORM_ITEMS = 100
SESSION_COOKIE = "followup_session"
#: a session lasts a working day at most (and never past its link's expiry)
SESSION_SECONDS = 12 * 3600
#: the internal pages a language link may return to (never an address from outside)
_RETURN_PATHS = re.compile(r"^/(?:m/(?:items/\d{1,12}|replies(?:/\d{1,12})?|reply|upload)?|c/"
                           r"|office/(?:login|queues|letters|ministries|users|items/[^\s?#\\]{1,200})?)?$")
_KEPT_SALT = "followup.web-kept-evidence.v1"


class PageError(Exception):
    """A page that explains a refusal (403, 404, 429…) without any data or the address asked for."""

    def __init__(self, status: int, key: str) -> None:
        super().__init__(key)
        self.status, self.key = status, key


def _refuse(status: int, key: str) -> NoReturn:
    raise PageError(status, key)


@dataclass(frozen=True)
class MinistryScope:
    """What a ministry session may see: this ministry's rows, under this link generation."""

    info: portal.MinistryInfo
    generation: int

    @property
    def code(self) -> str:
        return self.info.code


@dataclass(frozen=True)
class ConfirmScope:
    """What the validating official's session may see: one draft reply of one ministry."""

    info: portal.MinistryInfo
    generation: int
    reply_id: int


def _templates() -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["d"] = format_day
    env.filters["size"] = _size
    return Jinja2Templates(env=env)


def _size(value: int) -> str:
    if value >= 1024 * 1024:
        return f"{value / (1024 * 1024):.1f} MB"
    return f"{max(1, round(value / 1024))} KB"


def _new_reply_values(request: Request, letter_reference: str) -> dict[str, str]:
    """A new reply's form, filled in: today, the letter, and who answered last time in this session."""
    author = request.session.get("author") or {}
    return {"responded_on": _today(request).isoformat(), "letter_reference": letter_reference,
            "author_name": author.get("name", ""), "author_position": author.get("position", ""),
            "author_email": author.get("email", "")}


def create_app(*, engine: Engine | None = None, policy: Policy | None = None,
               today: Callable[[], date] | None = None) -> FastAPI:
    """The portal's ASGI app. Refuses to start without a signing key (MissingSecretKey): it signs the
    links and the sessions. `engine`, `policy` and `today` default to the installation's."""
    settings = get_settings()
    key = settings.signing_key()  # raises MissingSecretKey, with what to set
    install_log_masking()
    app = FastAPI(title="followup: reply portal", docs_url=None, redoc_url=None, openapi_url=None,
                  redirect_slashes=False)
    app.state.engine = engine
    app.state.policy = policy or load_policy()
    app.state.today = today or local_today
    app.state.store = EvidenceStore(settings.evidence_dir)
    app.state.limiter = FailureLimiter()
    app.state.templates = _templates()
    app.state.kept = URLSafeSerializer(key, salt=_KEPT_SALT)
    if not events.prefect_configured():
        logger.info("PREFECT_API_URL is not set: confirmed replies wait for the record-responses schedule")
    session_key = hashlib.sha256(b"followup.web-session.v1:" + key.encode()).hexdigest()
    app.add_middleware(SessionMiddleware, secret_key=session_key, session_cookie=SESSION_COOKIE,
                       max_age=SESSION_SECONDS, same_site="lax", https_only=settings.public_url.startswith("https://"))
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _routes(app)
    from followup.interfaces.web import office  # the office's workspace, /office/ (imports this module)

    office.install(app)
    _error_handlers(app)
    return app


# --- helpers every page uses ------------------------------------------------------------------


def _engine(request: Request) -> Engine:
    engine: Engine | None = request.app.state.engine
    return engine if engine is not None else get_engine()


@contextmanager
def _reading(request: Request) -> Iterator[Connection]:
    with _engine(request).connect() as connection:
        yield connection


@contextmanager
def _writing(request: Request) -> Iterator[Session]:
    """One transaction: all of it commits, or nothing."""
    with Session(_engine(request), expire_on_commit=False) as session, session.begin():
        yield session


def _today(request: Request) -> date:
    day: date = request.app.state.today()
    return day


def _policy(request: Request) -> Policy:
    policy: Policy = request.app.state.policy
    return policy


def _store(request: Request) -> EvidenceStore:
    store: EvidenceStore = request.app.state.store
    return store


def _lang(request: Request) -> str:
    return language_or_default(request.session.get("lang"))


def _csrf(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = new_csrf_token()
        request.session["csrf"] = token
    return token


def _return_path(path: str) -> str:
    return path if _RETURN_PATHS.match(path) else "/"


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = _lang(request)
    t = Translator(lang)
    base = {
        "t": t, "lang": lang, "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        "here": _return_path(request.url.path), "csrf": _csrf(request) if request.session else "",
        "contact": office_contact(lang), "ministry_name": None, "nav": None, "flash": request.session.pop("flash", None),
    }
    response: HTMLResponse = request.app.state.templates.TemplateResponse(request, template, {**base, **context},
                                                                          status_code=status)
    return response


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _ministry_scope(request: Request, connection: Connection) -> MinistryScope:
    """The session's ministry, checked against the registry on every request: a revoked or expired
    session is dropped and refused."""
    data = request.session.get("m")
    if not isinstance(data, dict):
        _refuse(403, "no_session")
    try:
        code, generation, expires = str(data["ministry"]), int(data["generation"]), date.fromisoformat(data["expires"])
    except (KeyError, TypeError, ValueError):
        request.session.pop("m", None)
        _refuse(403, "no_session")
    info = portal.ministry(connection, code)
    if info is None or info.generation != generation or expires < _today(request):
        request.session.pop("m", None)
        _refuse(403, "invalid_link")
    return MinistryScope(info, generation)


def _confirm_scope(request: Request, connection: Connection) -> ConfirmScope:
    data = request.session.get("c")
    if not isinstance(data, dict):
        _refuse(403, "no_session")
    try:
        code, generation = str(data["ministry"]), int(data["generation"])
        reply_id, expires = int(data["reply"]), date.fromisoformat(data["expires"])
    except (KeyError, TypeError, ValueError):
        request.session.pop("c", None)
        _refuse(403, "no_session")
    info = portal.ministry(connection, code)
    if info is None or info.generation != generation or expires < _today(request):
        request.session.pop("c", None)
        _refuse(403, "invalid_link")
    return ConfirmScope(info, generation, reply_id)


def _ministry_page(request: Request, scope: MinistryScope, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = _lang(request)
    return page(request, template, status, ministry_name=scope.info.name(lang), nav="ministry",
                approval=scope.info.approval, **context)


def _check_csrf(request: Request, given: str | None) -> None:
    if not csrf_ok(request.session.get("csrf"), given):
        _refuse(403, "csrf")


def _int(value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if 0 < number < 10**12 else None


def _filters(request: Request) -> tuple[portal.Filters, int]:
    q = request.query_params
    due_before = None
    if q.get("due_before"):
        try:
            due_before = parse_date(q["due_before"])
        except ValueError:
            due_before = None
    letter = (q.get("letter") or "")[:80] or None
    region = (q.get("region") or "")[:100] or None
    filters = portal.Filters(facility=_int(q.get("facility")), region=region, due_before=due_before,
                             overdue=q.get("overdue") == "1", letter=letter)
    return filters, _int(q.get("page")) or 1


def _letter_label(t: Translator, letter: portal.Letter) -> str:
    if letter.kind == "individualized":
        return t("letters.individualized", reference=letter.reference or "", date=format_day(letter.on))
    if letter.kind == "reminder":
        return t("letters.reminder", reference=letter.reference or "", date=format_day(letter.on))
    return t("letters.none")


def _letter_reference(items: list[portal.Item]) -> str:
    """The letter a reply answers, when all its items appeared in one: prefilled on the form."""
    letters = {item.letter for item in items}
    if len(letters) != 1:
        return ""
    (letter,) = letters
    return letter.reference or ""


def _problem_text(t: Translator, problem: ReplyProblem) -> str:
    detail = problem.detail
    if problem.code == "not_open":
        detail = t.status(detail)
    elif problem.code == "not_allowed":
        before, _, after = detail.partition(" to ")
        detail = f"{t.status(before)} → {t.status(after)}"
    return t(f"problems.{problem.code}", detail=detail)


_FIELD_LABELS = {"name": "person.name", "position": "person.position", "email": "person.email",
                 "responded_on": "form.responded_on", "letter_reference": "form.letter_reference",
                 "evidence": "form.evidence", "table": "upload.table", "items": "form.items"}


def _summary(t: Translator, errors: dict[str, list[str]], items: list[portal.Item] | None = None) -> list[tuple[str, str]]:
    """The error summary above a form: each problem with the field (and item) it is about, and its anchor."""
    numbers = {str(item.id): item.external_id for item in items or []}
    lines = []
    for key, messages in errors.items():
        field, _, item_id = key.rpartition("_") if key.startswith(("status_", "measures_")) else (key, "", "")
        if item_id:
            label = f"{numbers.get(item_id, '')} — {t('form.' + field)}"
        else:
            label = t(_FIELD_LABELS.get(key.removeprefix("author_"), key))
        lines += [(key, f"{label}: {message}") for message in messages]
    return lines


# --- evidence carried over a form that had to be corrected ------------------------------------


def _kept_token(request: Request, ministry: str, files: list[EvidenceInput]) -> str:
    if not files:
        return ""
    serializer: URLSafeSerializer = request.app.state.kept
    return str(serializer.dumps([ministry, [[f.sha256, f.filename, f.content_type, f.size] for f in files]]))


def _kept_files(request: Request, ministry: str, token: str) -> list[EvidenceInput]:
    """Files received with an earlier, corrected submission of the same form (signed for this ministry)."""
    if not token:
        return []
    serializer: URLSafeSerializer = request.app.state.kept
    try:
        owner, files = serializer.loads(token)
        if owner != ministry:
            return []
        return [EvidenceInput(str(sha), str(name), str(kind), int(size)) for sha, name, kind, size in files]
    except (BadSignature, TypeError, ValueError):
        return []


def _take_evidence(request: Request, form: ReceivedForm, field: str, t: Translator,
                   errors: dict[str, list[str]]) -> list[EvidenceInput]:
    """The form's evidence files, typed from their content and kept by hash; the others explained."""
    limit_mb = _policy(request).replies.evidence_max_mb
    kept = []
    for received in form.files_of(field):
        if received.too_large:
            errors.setdefault("evidence", []).append(t("errors_form.too_large", name=received.filename, mb=f"{limit_mb:g}"))
            continue
        content_type = sniff(received)
        if content_type is None:
            errors.setdefault("evidence", []).append(t("errors_form.file_type", name=received.filename))
            continue
        kept.append(_store(request).keep(received, content_type))
    return kept


def _file_limit(request: Request) -> int:
    return int(_policy(request).replies.evidence_max_mb * 1024 * 1024)


async def _read_form(request: Request) -> ReceivedForm:
    try:
        return await read_multipart(request, incoming=_store(request).incoming, file_limit=_file_limit(request))
    except FormTooLarge:
        _refuse(413, "too_large")
    except BadForm:
        _refuse(400, "bad_request")


# --- after a draft is written: the validating official ---------------------------------------


def _ask_for_confirmation(request: Request, session: Session, scope: MinistryScope, reply: Reply,
                          claims: list[ClaimInput], items: dict[int, portal.Item]) -> list[str]:
    """Queue the validating official's message with the confirmation link (in the draft's transaction)."""
    assert reply.id is not None
    language = scope.info.language
    t = Translator(language)
    expires_on = _today(request) + timedelta(days=_policy(request).replies.confirm_days)
    url = confirm_url(confirm_token(reply.id, scope.code, scope.generation, expires_on))
    rendered = render("reply_confirm", language, {
        "ministry": scope.info.name(language), "reply_reference": reply.reference, "author_name": reply.author_name,
        "author_position": reply.author_position, "author_email": reply.author_email,
        "items": [{"external_id": items[c.recommendation_id].external_id, "facility": items[c.recommendation_id].facility,
                   "text": items[c.recommendation_id].text, "claimed_status": c.claimed_status,
                   "claimed_status_name": t.status(c.claimed_status), "measures": c.measures} for c in claims],
        "confirm_url": url, "expires_on": expires_on, "contact": office_contact(language),
    })
    key = f"reply_confirm:{reply.id}"
    inserted = queue(session, [{
        "recipient": f"ministry:{scope.code}:approver", "kind": "reply_confirm", "language": language,
        "subject": rendered.subject, "body_text": rendered.text, "body_html": rendered.html,
        "payload": {"reply_id": reply.id, "ministry": scope.code, "reference": reply.reference,
                    "expires_on": expires_on.isoformat()},
        "dedupe_key": key,
    }])
    return list(inserted)


def _write_draft(request: Request, scope: MinistryScope, *, claims: list[ClaimInput], items: dict[int, portal.Item],
                 responded_on: date, author: dict[str, str], letter_reference: str,
                 evidence: list[EvidenceInput]) -> tuple[int, bool]:
    """Write the draft (and, when the ministry has a validating official, their message) in one
    transaction; then wake the dispatcher. Returns the reply's id and whether it went for approval."""
    queued: list[str] = []
    with _writing(request) as session:
        reply = create_draft_reply(session=session, ministry=scope.code, generation=scope.generation, claims=claims,
                                   responded_on=responded_on, today=_today(request), author_name=author["name"],
                                   author_position=author["position"], author_email=author["email"],
                                   letter_reference=letter_reference, evidence=evidence)
        needs_approval = scope.info.approval == "required"
        if needs_approval:
            queued = _ask_for_confirmation(request, session, scope, reply, claims, items)
        assert reply.id is not None
        reply_id = reply.id
    if queued:
        events.notification_queued(keys=queued)
    request.session["author"] = author
    return reply_id, needs_approval


def _after_draft(request: Request, scope: MinistryScope, reply_id: int, needs_approval: bool) -> Response:
    if needs_approval:
        return _ministry_page(request, scope, "reply_sent.html", reference=f"REPLY-{reply_id}", reply_id=reply_id)
    request.session["flash"] = "draft_saved"
    return RedirectResponse(f"/m/replies/{reply_id}", status_code=303)


# --- the routes --------------------------------------------------------------------------------


def _routes(app: FastAPI) -> None:  # noqa: C901 - the route table reads best in one place
    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        if isinstance(request.session.get("m"), dict):
            return RedirectResponse("/m/", status_code=303)
        return page(request, "home.html")

    @app.get("/r/{token}")
    def exchange_ministry_link(request: Request, token: str) -> Response:
        limiter: FailureLimiter = request.app.state.limiter
        client = _client(request)
        if limiter.blocked(client):
            _refuse(429, "too_many")
        try:
            grant = read_ministry_token(token, today=_today(request))
            with _reading(request) as connection:
                check_generation_connection(connection, grant.ministry, grant.generation)
                info = portal.ministry(connection, grant.ministry)
        except BadLink:
            limiter.failed(client)
            request.session.clear()
            _refuse(403, "invalid_link")
        assert info is not None
        chosen = request.session.get("lang") if request.session.get("lang_chosen") else None
        request.session.clear()
        request.session.update({
            "m": {"ministry": grant.ministry, "generation": grant.generation, "expires": grant.expires_on.isoformat()},
            "csrf": new_csrf_token(), "lang": chosen or language_or_default(info.language),
            "lang_chosen": bool(chosen),
        })
        return RedirectResponse("/m/", status_code=303)

    @app.get("/c/{token}")
    def exchange_confirm_link(request: Request, token: str) -> Response:
        limiter: FailureLimiter = request.app.state.limiter
        client = _client(request)
        if limiter.blocked(client):
            _refuse(429, "too_many")
        try:
            grant = read_confirm_token(token, today=_today(request))
            with _reading(request) as connection:
                check_generation_connection(connection, grant.ministry, grant.generation)
                info = portal.ministry(connection, grant.ministry)
                found = portal.reply(connection, grant.ministry, grant.reply_id)
            if found is None or found[0].state != ReplyState.DRAFT or found[0].generation != grant.generation \
                    or info is None:
                raise BadLink("the reply is not waiting for confirmation")
        except BadLink:
            limiter.failed(client)
            request.session.pop("c", None)
            _refuse(403, "invalid_confirm_link")
        keep: dict[str, Any] = {k: request.session[k] for k in ("m", "lang", "lang_chosen", "author") if k in request.session}
        request.session.clear()
        request.session.update(keep)
        request.session.update({
            "c": {"reply": grant.reply_id, "ministry": grant.ministry, "generation": grant.generation,
                  "expires": grant.expires_on.isoformat()},
            "csrf": new_csrf_token(),
        })
        if not keep.get("lang_chosen"):
            request.session["lang"] = language_or_default(info.language)
        return RedirectResponse("/c/", status_code=303)

    @app.get("/lang/{code}")
    def choose_language(request: Request, code: str) -> Response:
        if code in LANGUAGES:
            request.session["lang"] = code
            request.session["lang_chosen"] = True
        return RedirectResponse(_return_path(request.query_params.get("to", "/")), status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=10)
        _check_csrf(request, str(form.get("csrf") or ""))
        request.session.clear()
        return page(request, "signed_out.html")

    @app.get("/m")
    def ministry_root() -> Response:
        return RedirectResponse("/m/", status_code=303)

    @app.get("/m/", response_class=HTMLResponse)
    def ministry_page(request: Request) -> Response:
        filters, page_number = _filters(request)
        with _reading(request) as connection:
            scope = _ministry_scope(request, connection)
            items, total = portal.open_items(connection, scope.code, filters, page=page_number)
            if not items and total:  # past the last page (the list shrank): show the last one
                page_number = -(-total // portal.PAGE_SIZE)
                items, total = portal.open_items(connection, scope.code, filters, page=page_number)
            choices = portal.choices(connection, scope.code)
        t = Translator(_lang(request))
        pages = max(1, -(-total // portal.PAGE_SIZE))
        groups: list[tuple[portal.Letter, str, list[portal.Item]]] = []
        for item in items:
            if not groups or groups[-1][0] != item.letter:
                groups.append((item.letter, _letter_label(t, item.letter), []))
            groups[-1][2].append(item)
        query = filters.as_query()
        return _ministry_page(
            request, scope, "ministry.html", groups=groups, total=total, page=min(page_number, pages), pages=pages,
            filters=filters, query=query, choices=choices,
            letter_options=[(letter.key, _letter_label(t, letter)) for letter in choices.letters],
            page_link=lambda n: "/m/?" + _urlencode({**query, "page": str(n)}),
            export_link="/m/items.xlsx" + ("?" + _urlencode(query) if query else ""),
            first=(min(page_number, pages) - 1) * portal.PAGE_SIZE + 1,
            last=(min(page_number, pages) - 1) * portal.PAGE_SIZE + len(items),
        )

    @app.get("/m/items/{item_id}", response_class=HTMLResponse)
    def item_page(request: Request, item_id: str) -> Response:
        number = _int(item_id)
        with _reading(request) as connection:
            scope = _ministry_scope(request, connection)
            found = portal.items_by_id(connection, scope.code, [number]) if number else {}
            if number is None or number not in found:
                _refuse(404, "not_found")
            item = found[number]
            entries = portal.history(connection, number)
            earlier = portal.item_replies(connection, scope.code, number)
        t = Translator(_lang(request))
        return _ministry_page(request, scope, "item.html", item=item, history=entries, replies=earlier,
                              letter_label=_letter_label(t, item.letter))

    @app.get("/m/reply", response_class=HTMLResponse)
    def reply_form(request: Request) -> Response:
        ids = [_int(v) for v in request.query_params.getlist("ids")]
        letter = request.query_params.get("letter")
        with _reading(request) as connection:
            scope = _ministry_scope(request, connection)
            if letter:
                chosen = portal.all_open_items(connection, scope.code, portal.Filters(letter=letter[:80]))
                items = portal.items_by_id(connection, scope.code, [i.id for i in chosen[: MAX_FORM_ITEMS * 2]])
                wanted = [i.id for i in chosen if i.id in items and items[i.id].answerable][:MAX_FORM_ITEMS]
            else:
                if any(i is None for i in ids):
                    _refuse(400, "bad_request")
                wanted = list(dict.fromkeys(i for i in ids if i is not None))
                if len(wanted) > MAX_FORM_ITEMS:
                    request.session["flash"] = "too_many_items"
                    return RedirectResponse("/m/", status_code=303)
                items = portal.items_by_id(connection, scope.code, wanted)
                if any(i not in items for i in wanted):
                    _refuse(403, "not_yours")
        answerable = [items[i] for i in wanted if items[i].answerable]
        skipped = [items[i] for i in wanted if not items[i].answerable]
        if not answerable:
            request.session["flash"] = "choose_items"
            return RedirectResponse("/m/", status_code=303)
        values = _new_reply_values(request, _letter_reference(answerable))
        return _reply_form(request, scope, answerable, values, {}, skipped=skipped)

    @app.post("/m/reply", response_class=HTMLResponse)
    async def submit_reply(request: Request) -> Response:
        await run_in_threadpool(_checked_ministry, request)
        form = await _read_form(request)
        try:
            _check_csrf(request, form.get("csrf"))
            return await run_in_threadpool(_submit_reply, request, form)
        finally:
            form.discard()

    @app.get("/m/replies", response_class=HTMLResponse)
    def replies_page(request: Request) -> Response:
        with _reading(request) as connection:
            scope = _ministry_scope(request, connection)
            found = portal.replies(connection, scope.code)
        return _ministry_page(request, scope, "replies.html", replies=found)

    @app.get("/m/replies/{reply_id}", response_class=HTMLResponse)
    def reply_page(request: Request, reply_id: str) -> Response:
        number = _int(reply_id)
        with _reading(request) as connection:
            scope = _ministry_scope(request, connection)
            found = portal.reply(connection, scope.code, number) if number else None
        if found is None:
            _refuse(404, "not_found")
        summary, claims = found
        return _ministry_page(request, scope, "reply.html", reply=summary, claims=claims,
                              evidence_base="/m/evidence/")

    @app.post("/m/replies/{reply_id}/confirm")
    async def confirm_own_reply(request: Request, reply_id: str) -> Response:
        form = await request.form(max_files=0, max_fields=10)
        return await run_in_threadpool(_confirm_own_reply, request, _int(reply_id), str(form.get("csrf") or ""))

    @app.get("/m/evidence/{evidence_id}")
    def ministry_evidence(request: Request, evidence_id: str) -> Response:
        number = _int(evidence_id)
        with _reading(request) as connection:
            scope = _ministry_scope(request, connection)
            stored = portal.evidence(connection, number) if number else None
        if stored is None or stored.ministry != scope.code:
            _refuse(404, "not_found")
        return _evidence_response(request, stored)

    @app.get("/m/items.xlsx")
    def export_items(request: Request) -> Response:
        filters, _ = _filters(request)
        with _reading(request) as connection:
            scope = _ministry_scope(request, connection)
            items = portal.all_open_items(connection, scope.code, filters)
        return _spreadsheet(request, scope, items)

    @app.get("/m/upload", response_class=HTMLResponse)
    def upload_form(request: Request) -> Response:
        with _reading(request) as connection:
            scope = _ministry_scope(request, connection)
        values = _new_reply_values(request, "")
        return _upload_page(request, scope, values, {}, [])

    @app.post("/m/upload", response_class=HTMLResponse)
    async def upload(request: Request) -> Response:
        await run_in_threadpool(_checked_ministry, request)
        form = await _read_form(request)
        try:
            _check_csrf(request, form.get("csrf"))
            return await run_in_threadpool(_submit_upload, request, form)
        finally:
            form.discard()

    @app.get("/c/", response_class=HTMLResponse)
    def confirm_page(request: Request) -> Response:
        with _reading(request) as connection:
            scope = _confirm_scope(request, connection)
            found = portal.reply(connection, scope.info.code, scope.reply_id)
        if found is None or found[0].state != ReplyState.DRAFT:
            request.session.pop("c", None)
            _refuse(403, "invalid_confirm_link")
        summary, claims = found
        return _confirm_form(request, scope, summary, claims, {}, {})

    @app.post("/c/", response_class=HTMLResponse)
    async def confirm(request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=20)
        fields = {k: str(form.get(k) or "") for k in ("csrf", "name", "position", "email")}
        return await run_in_threadpool(_confirm_by_official, request, fields)

    @app.get("/c/evidence/{evidence_id}")
    def confirm_evidence(request: Request, evidence_id: str) -> Response:
        number = _int(evidence_id)
        with _reading(request) as connection:
            scope = _confirm_scope(request, connection)
            stored = portal.evidence(connection, number) if number else None
        if stored is None or stored.reply_id != scope.reply_id or stored.ministry != scope.info.code:
            _refuse(404, "not_found")
        return _evidence_response(request, stored)


def check_generation_connection(connection: Connection, ministry: str, generation: int) -> None:
    """`models.links.check_generation` on a plain connection (the exchange only reads)."""
    with Session(bind=connection) as session:
        check_generation(session, ministry, generation)


def _urlencode(query: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(query)


def _checked_ministry(request: Request) -> MinistryScope:
    with _reading(request) as connection:
        return _ministry_scope(request, connection)


def _evidence_response(request: Request, stored: portal.StoredEvidence) -> Response:
    try:
        path = _store(request).path_of(stored.sha256)
    except ValueError:
        _refuse(404, "not_found")
    if not path.is_file():
        _refuse(404, "not_found")
    return FileResponse(path, media_type=stored.content_type,
                        headers={"Content-Disposition": content_disposition(stored.filename, stored.content_type)})


# --- the reply form ----------------------------------------------------------------------------


def _reply_form(request: Request, scope: MinistryScope, items: list[portal.Item], values: dict[str, str],
                errors: dict[str, list[str]], *, skipped: list[portal.Item] | None = None, kept: str = "",
                kept_files: list[EvidenceInput] | None = None, status: int = 200) -> HTMLResponse:
    return _ministry_page(
        request, scope, "reply_form.html", status, items=items, values=values, errors=errors, skipped=skipped or [],
        statuses=[s.value for s in REPLY_STATUSES], today=_today(request).isoformat(), kept=kept,
        kept_files=kept_files or [], accept=ACCEPT_ATTRIBUTE, max_mb=f"{_policy(request).replies.evidence_max_mb:g}",
        summary=_summary(Translator(_lang(request)), errors, items),
    )


def _author(form: ReceivedForm) -> dict[str, str]:
    return {"name": form.get("author_name").strip()[:300], "position": form.get("author_position").strip()[:300],
            "email": form.get("author_email").strip()[:300]}


def _parse_day(value: str, t: Translator, errors: dict[str, list[str]], key: str) -> date | None:
    if not value.strip():
        errors.setdefault(key, []).append(t("problems.required"))
        return None
    try:
        return parse_date(value.strip())
    except ValueError:
        errors.setdefault(key, []).append(t("errors_form.date", value=value.strip()[:40]))
        return None


def _add_problems(t: Translator, problems: list[ReplyProblem], errors: dict[str, list[str]],
                  items: dict[int, portal.Item]) -> None:
    for problem in problems:
        text = _problem_text(t, problem)
        if problem.recommendation_id is not None and problem.field in ("status", "measures"):
            key = f"{problem.field}_{problem.recommendation_id}"
        elif problem.recommendation_id is not None:
            key = problem.field
            text = f"{items[problem.recommendation_id].external_id}: {text}"
        else:
            key = problem.field
        errors.setdefault(key, []).append(text)


def _submit_reply(request: Request, form: ReceivedForm) -> Response:
    t = Translator(_lang(request))
    with _reading(request) as connection:
        scope = _ministry_scope(request, connection)
        raw_ids = form.getlist("ids")
        ids = list(dict.fromkeys(_int(v) for v in raw_ids))
        if not ids or None in ids or len(ids) > MAX_FORM_ITEMS:
            _refuse(400, "bad_request")
        wanted = [i for i in ids if i is not None]
        items = portal.items_by_id(connection, scope.code, wanted)
    if any(i not in items for i in wanted):
        _refuse(403, "not_yours")  # another body's item in the form: nothing is written
    values = {k: v[0] for k, v in form.fields.items() if v}
    errors: dict[str, list[str]] = {}
    common_status = form.get("common_status").strip()
    common_measures = form.get("common_measures").strip()
    claims = [ClaimInput(recommendation_id=i, claimed_status=form.get(f"status_{i}").strip() or common_status,
                         measures=form.get(f"measures_{i}").strip() or common_measures) for i in wanted]
    responded_on = _parse_day(form.get("responded_on"), t, errors, "responded_on")
    author = _author(form)
    letter_reference = form.get("letter_reference").strip()
    evidence = _kept_files(request, scope.code, form.get("kept"))
    evidence += _take_evidence(request, form, "evidence", t, errors)
    listed = [items[i] for i in wanted]
    if len(claims) == 1:  # a single item's form has no "same answer for all" block to show it in
        only = claims[0]
        values[f"status_{only.recommendation_id}"] = only.claimed_status
        values[f"measures_{only.recommendation_id}"] = only.measures
    try:
        with _reading(request) as connection, Session(bind=connection) as session:
            problems = check_reply(session=session, ministry=scope.code, claims=claims,
                                   responded_on=responded_on or _today(request), today=_today(request),
                                   author_name=author["name"], author_position=author["position"],
                                   author_email=author["email"], letter_reference=letter_reference)
    except ForeignItems:
        _refuse(403, "not_yours")
    _add_problems(t, problems, errors, items)
    if errors or responded_on is None:
        return _reply_form(request, scope, listed, values, errors, kept=_kept_token(request, scope.code, evidence),
                           kept_files=evidence, status=400)
    try:
        reply_id, needs_approval = _write_draft(request, scope, claims=claims, items=items, responded_on=responded_on,
                                                author=author, letter_reference=letter_reference, evidence=evidence)
    except BadLink:
        request.session.pop("m", None)
        _refuse(403, "invalid_link")
    except ForeignItems:
        _refuse(403, "not_yours")
    except ReplyRejected as exc:  # the registry changed between the check and the write
        _add_problems(t, exc.problems, errors, items)
        return _reply_form(request, scope, listed, values, errors, kept=_kept_token(request, scope.code, evidence),
                           kept_files=evidence, status=400)
    return _after_draft(request, scope, reply_id, needs_approval)


# --- the spreadsheet round trip ---------------------------------------------------------------

#: read-only context beside the `followup import responses` columns; ignored when uploaded
CONTEXT_COLUMNS = ("text", "facility", "region", "due_on", "current_status", "letter")


def _spreadsheet(request: Request, scope: MinistryScope, items: list[portal.Item]) -> Response:
    import pandas as pd

    t = Translator(_lang(request))
    frame = pd.DataFrame({
        "external_id": [i.external_id for i in items], "status": [""] * len(items), "responded_on": [""] * len(items),
        "note": [""] * len(items), "evidence": [""] * len(items), "text": [i.text for i in items],
        "facility": [i.facility or "" for i in items], "region": [i.region or "" for i in items],
        "due_on": [i.due_on for i in items], "current_status": [t.status(i.status) for i in items],
        "letter": [_letter_label(t, i.letter) for i in items],
    }, columns=list(RESPONSE_COLUMNS + CONTEXT_COLUMNS), dtype=object)
    folder = Path(tempfile.mkdtemp(prefix="export-", dir=_store(request).incoming))
    try:
        path = folder / "items.xlsx"
        write_table(frame, path, date_columns=("due_on",))
        content = path.read_bytes()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    name = f"{scope.code}-{_today(request).isoformat()}.xlsx"
    return Response(content, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _upload_page(request: Request, scope: MinistryScope, values: dict[str, str], errors: dict[str, list[str]],
                 rows: list[tuple[int, str, str]], *, kept: str = "", kept_files: list[EvidenceInput] | None = None,
                 status: int = 200) -> HTMLResponse:
    return _ministry_page(request, scope, "upload.html", status, values=values, errors=errors, row_errors=rows,
                          kept=kept, kept_files=kept_files or [], accept=ACCEPT_ATTRIBUTE,
                          statuses=[s.value for s in REPLY_STATUSES], today=_today(request).isoformat(),
                          max_mb=f"{_policy(request).replies.evidence_max_mb:g}",
                          summary=_summary(Translator(_lang(request)), errors))


def _read_sheet(request: Request, form: ReceivedForm, t: Translator, errors: dict[str, list[str]]) -> Any:
    tables = form.files_of("table")
    if not tables:
        errors.setdefault("table", []).append(t("problems.required"))
        return None
    received = tables[0]
    if received.too_large:
        errors.setdefault("table", []).append(t("errors_form.too_large", name=received.filename,
                                                 mb=f"{_policy(request).replies.evidence_max_mb:g}"))
        return None
    suffix = sniff_table(received)
    if suffix is None or received.path is None:
        errors.setdefault("table", []).append(t("errors_form.table_type", name=received.filename))
        return None
    folder = Path(tempfile.mkdtemp(prefix="table-", dir=_store(request).incoming))
    try:
        path = folder / f"replies{suffix}"
        received.path.replace(path)
        received.path = None
        return read_table(path)
    except ImportFileError as exc:
        errors.setdefault("table", []).append(t("errors_form.table_unreadable", reason=str(exc)))
        return None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _sheet_claims(t: Translator, frame: Any, items: dict[str, portal.Item],
                  rows: set[tuple[int, str, str]]) -> tuple[list[ClaimInput], dict[int, int], dict[int, date]]:
    """The claims of the rows with a status, and every row's problem as (row, column, text)."""
    claims: list[ClaimInput] = []
    row_of: dict[int, int] = {}
    days: dict[int, date] = {}
    claimable = {s.value for s in REPLY_STATUSES}
    for number, row in frame.iterrows():
        line = int(str(number))
        external_id = str(row["external_id"]).strip()
        status = str(row["status"]).strip().lower()
        item = items.get(external_id)
        if not external_id:
            rows.add((line, "external_id", t("problems.required")))
            continue
        if item is None:
            rows.add((line, "external_id", t("errors_form.unknown_item", external_id=external_id[:60])))
            continue
        if item.id in row_of:
            rows.add((line, "external_id", t("problems.duplicate")))
            continue
        if status not in claimable:
            rows.add((line, "status", t("problems.status", detail=status[:40])))
        text_day = str(row.get("responded_on", "") or "").strip()
        if text_day:
            try:
                days[line] = parse_date(text_day)
            except ValueError:
                rows.add((line, "responded_on", t("errors_form.date", value=text_day[:40])))
        note = str(row.get("note", "") or "").strip()
        proof = str(row.get("evidence", "") or "").strip()
        row_of[item.id] = line
        claims.append(ClaimInput(recommendation_id=item.id, claimed_status=status,
                                 measures=note + (f"\n{t('rows.evidence')}: {proof}" if proof else "")))
    return claims, row_of, days


def _submit_upload(request: Request, form: ReceivedForm) -> Response:
    """A filled-in spreadsheet becomes a draft reply like the form's: the rows with a status, checked
    row by row (each problem names its row and column), all of them or nothing."""
    t = Translator(_lang(request))
    scope = _checked_ministry(request)
    values = {k: v[0] for k, v in form.fields.items() if v}
    errors: dict[str, list[str]] = {}
    rows: set[tuple[int, str, str]] = set()
    author = _author(form)
    letter_reference = form.get("letter_reference").strip()
    evidence = _kept_files(request, scope.code, form.get("kept"))
    evidence += _take_evidence(request, form, "evidence", t, errors)
    frame = _read_sheet(request, form, t, errors)

    def again() -> HTMLResponse:
        return _upload_page(request, scope, values, errors, sorted(rows), kept=_kept_token(request, scope.code, evidence),
                            kept_files=evidence, status=400)

    if frame is None:
        return again()
    missing = [c for c in ("external_id", "status") if c not in frame.columns]
    if missing:
        errors.setdefault("table", []).append(t("errors_form.table_columns", columns=", ".join(missing)))
        return again()
    filled = frame[frame["status"].str.strip() != ""]
    if filled.empty:
        errors.setdefault("table", []).append(t("errors_form.no_rows"))
        return again()
    with _reading(request) as connection:
        items = portal.item_by_external_id(connection, scope.code, [str(x).strip() for x in filled["external_id"]])
    claims, row_of, days = _sheet_claims(t, filled, items, rows)
    # one upload is one reply, with one date: the rows' (all the same), else the form's
    distinct = sorted(set(days.values()))
    responded_on: date | None = None
    if len(distinct) > 1:
        for line in sorted(days):
            if days[line] != days[min(days)]:
                rows.add((line, "responded_on", t("errors_form.one_date")))
    elif distinct:
        responded_on = distinct[0]
    else:
        responded_on = _parse_day(form.get("responded_on"), t, errors, "responded_on")
    if claims and responded_on is not None:
        try:
            with _reading(request) as connection, Session(bind=connection) as session:
                problems = check_reply(session=session, ministry=scope.code, claims=claims, responded_on=responded_on,
                                       today=_today(request), author_name=author["name"],
                                       author_position=author["position"], author_email=author["email"],
                                       letter_reference=letter_reference)
        except ForeignItems:
            _refuse(403, "not_yours")
        columns = {"status": "status", "measures": "note", "responded_on": "responded_on"}
        for problem in problems:
            if problem.recommendation_id in row_of:
                rows.add((row_of[problem.recommendation_id], columns.get(problem.field, problem.field),
                          _problem_text(t, problem)))
            else:
                errors.setdefault(problem.field, []).append(_problem_text(t, problem))
    if rows or errors or responded_on is None:
        return again()
    by_id = {i.id: i for i in items.values()}
    try:
        reply_id, needs_approval = _write_draft(request, scope, claims=claims, items=by_id, responded_on=responded_on,
                                                author=author, letter_reference=letter_reference, evidence=evidence)
    except BadLink:
        request.session.pop("m", None)
        _refuse(403, "invalid_link")
    except ReplyRejected as exc:
        for problem in exc.problems:
            errors.setdefault(problem.field, []).append(_problem_text(t, problem))
        return again()
    return _after_draft(request, scope, reply_id, needs_approval)


# --- confirming ---------------------------------------------------------------------------------


def _confirm_own_reply(request: Request, reply_id: int | None, csrf: str) -> Response:
    """A ministry without a second official (approval: none): the author confirms their own draft."""
    with _reading(request) as connection:
        scope = _ministry_scope(request, connection)
    _check_csrf(request, csrf)
    if reply_id is None:
        _refuse(404, "not_found")
    if scope.info.approval != "none":
        _refuse(403, "approval_required")
    try:
        with _writing(request) as session:
            draft = session.get(Reply, reply_id)
            if draft is None or draft.ministry_code != scope.code:
                raise ReplyNotFound(str(reply_id))
            reply = confirm_reply(session=session, reply_id=reply_id, confirmed_by_name=draft.author_name,
                                  confirmed_by_position=draft.author_position, confirmed_by_email=draft.author_email,
                                  at=utcnow(), ministry=scope.code, generation=scope.generation)
            items = claimed_items(session=session, reply_id=reply_id)
    except ReplyNotFound:
        _refuse(404, "not_found")
    except BadLink:
        request.session.pop("m", None)
        _refuse(403, "invalid_link")
    except ReplyNotDraft:
        request.session["flash"] = "already_confirmed"
        return RedirectResponse(f"/m/replies/{reply_id}", status_code=303)
    events.reply_confirmed(reply_id=reply_id, reference=reply.reference, ministry=scope.code, items=items)
    request.session["flash"] = "confirmed"
    return RedirectResponse(f"/m/replies/{reply_id}", status_code=303)


def _confirm_form(request: Request, scope: ConfirmScope, summary: portal.ReplySummary, claims: list[portal.ClaimView],
                  values: dict[str, str], errors: dict[str, list[str]], status: int = 200) -> HTMLResponse:
    lang = _lang(request)
    return page(request, "confirm.html", status, ministry_name=scope.info.name(lang), nav="confirm", reply=summary,
                claims=claims, values=values, errors=errors, evidence_base="/c/evidence/",
                summary=_summary(Translator(lang), errors))


def _confirm_by_official(request: Request, fields: dict[str, str]) -> Response:
    t = Translator(_lang(request))
    with _reading(request) as connection:
        scope = _confirm_scope(request, connection)
    _check_csrf(request, fields["csrf"])
    values = {"name": fields["name"].strip()[:300], "position": fields["position"].strip()[:300],
              "email": fields["email"].strip()[:300]}
    try:
        with _writing(request) as session:
            reply = confirm_reply(session=session, reply_id=scope.reply_id, confirmed_by_name=values["name"],
                                  confirmed_by_position=values["position"], confirmed_by_email=values["email"],
                                  at=utcnow(), ministry=scope.info.code, generation=scope.generation)
            items = claimed_items(session=session, reply_id=scope.reply_id)
    except (BadLink, ReplyNotFound, ReplyNotDraft):
        request.session.pop("c", None)
        _refuse(403, "invalid_confirm_link")
    except ReplyRejected as exc:
        errors: dict[str, list[str]] = {}
        for problem in exc.problems:
            errors.setdefault(problem.field.removeprefix("confirmed_by_"), []).append(_problem_text(t, problem))
        with _reading(request) as connection:
            found = portal.reply(connection, scope.info.code, scope.reply_id)
        if found is None:
            _refuse(403, "invalid_confirm_link")
        return _confirm_form(request, scope, found[0], found[1], values, errors, status=400)
    events.reply_confirmed(reply_id=scope.reply_id, reference=reply.reference, ministry=scope.info.code, items=items)
    request.session.pop("c", None)
    lang = _lang(request)
    return page(request, "confirmed.html", ministry_name=scope.info.name(lang), reference=reply.reference,
                confirmed_at=datetime.now(get_settings().tz))


# --- errors -------------------------------------------------------------------------------------

_STATUS_KEYS = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "not_found", 413: "too_large",
                429: "too_many"}


def _error_page(request: Request, status: int, key: str) -> Response:
    """A refusal: what happened, in a sentence, and whom to call. Never the address asked for, never data."""
    try:
        office = request.url.path.startswith("/office/")
        response = page(request, "office/error.html" if office else "error.html", status, key=key, officer=None,
                        oflash=None, section="")
    except Exception:  # noqa: BLE001 - the error page itself must not fail
        logger.exception("the error page failed")
        response = HTMLResponse("<!doctype html><title>Error</title><p>Error.</p>", status_code=status)
    if status == 429:
        response.headers["Retry-After"] = "600"
    return response


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PageError)
    async def page_error(request: Request, exc: PageError) -> Response:
        return _error_page(request, exc.status, exc.key)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error_page(request, exc.status_code, _STATUS_KEYS.get(exc.status_code, "bad_request"))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, _exc: RequestValidationError) -> Response:
        return _error_page(request, 400, "bad_request")

    @app.exception_handler(Exception)
    async def server_error(_request: Request, exc: Exception) -> Response:
        logger.error("a request failed: %s", exc.__class__.__name__, exc_info=exc)
        return HTMLResponse(
            "<!doctype html><html><head><meta charset=utf-8><title>Error</title></head><body>"
            "<p>Произошла ошибка. Попробуйте ещё раз позже. · Қате орын алды. · An error occurred; please try again later.</p>"
            "</body></html>", status_code=500)
