"""The office's workspace (/office/): the registry with its filters, an item's page with its
timeline and actions, the queues, the individualized recommendations, the ministries' scorecards
and the users. Same app, same security model as the ministries' portal (app.py): a signed session
cookie, a CSRF token on every form (the sign-in form too), strict headers, escaped text.

An office session is its own: signing in clears whatever ministry session the browser had, and
a ministry's link clears the office's (app.py), so neither ever reaches the other's pages. Every
request reads the user again: a disabled user, or one whose password changed (the session
generation moved on), is signed out at once. Roles are checked on the server for every action
(clerk ⊂ head ⊂ admin); the buttons a role may not use are not shown, and refused if sent anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session
from sqlmodel import Session as UserSession
from starlette.concurrency import run_in_threadpool

from followup.interfaces.web import app as web
from followup.interfaces.web import events, portal, workspace
from followup.interfaces.web.i18n import Translator
from followup.interfaces.web.security import FailureLimiter, new_csrf_token
from followup.models.dates import parse_date
from followup.models.domain import Source, Status
from followup.models.policy import LATE_STATUSES, REPLY_STATUSES
from followup.models.transitions import TRANSITIONS
from followup.models.types import utcnow
from followup.models.users import LoginRefused, OfficeUser, Role, check_login, create_user, disable_user, may
from followup.models.users import UserError as AccountError
from followup.steps.office import NEEDED_ROLE

logger = logging.getLogger("followup.web")

router = APIRouter(prefix="/office")
#: an office session lasts a working day; the cookie's own limit (app.py) is the same
OFFICE_SESSION_HOURS = 12
#: the actions of an item's page, the role each needs, and the status it moves to (None: several)
ACTIONS: dict[str, tuple[Role, Status | None]] = {
    "assign": (NEEDED_ROLE["assign"], None),
    "hold": (NEEDED_ROLE["hold"], Status.ON_HOLD),
    "resume": (NEEDED_ROLE["resume"], None),
    "withdraw": (NEEDED_ROLE["withdraw"], Status.WITHDRAWN),
    "reply": (NEEDED_ROLE["reply"], None),
    "grade": (NEEDED_ROLE["grade"], None),
    "decide": (NEEDED_ROLE["decide"], None),
}
TEXT_LIMIT = 2000


class SignIn(Exception):
    """No office session (or an ended one): the sign-in page."""


@dataclass(frozen=True)
class Officer:
    """The signed-in office user, as every page and action sees them."""

    name: str
    role: str
    full_name: str | None
    position: str | None

    def may(self, needed: str) -> bool:
        return may(self.role, Role(needed))

    @property
    def label(self) -> str:
        return self.full_name or self.name


def install(app: FastAPI) -> None:
    """Add the workspace to the portal's app (create_app calls it)."""
    app.state.login_limiter = FailureLimiter(limit=30, window=600)
    app.include_router(router)

    @app.exception_handler(SignIn)
    async def sign_in(request: Request, _exc: SignIn) -> Response:
        request.session.pop("o", None)
        return RedirectResponse("/office/login", status_code=303)


# --- the session ------------------------------------------------------------------------------------


def _officer(request: Request, connection: Connection, needed: Role = Role.CLERK) -> Officer:
    """The session's user, read again from the registry: active, same session generation, within
    the working day; else SignIn. A role below `needed` is refused (403)."""
    data = request.session.get("o")
    if not isinstance(data, dict):
        raise SignIn
    try:
        name, generation, since = str(data["user"]), int(data["generation"]), datetime.fromisoformat(data["since"])
    except (KeyError, TypeError, ValueError):
        raise SignIn from None
    if utcnow() - since > timedelta(hours=OFFICE_SESSION_HOURS):
        raise SignIn
    u = OfficeUser.__table__.c  # type: ignore[attr-defined]
    row = connection.execute(select(u.name, u.role, u.full_name, u.position, u.active, u.session_generation)
                             .where(u.name == name)).first()
    if row is None or not row.active or int(row.session_generation) != generation:
        raise SignIn
    officer = Officer(row.name, row.role, row.full_name, row.position)
    if not officer.may(needed):
        web._refuse(403, "forbidden")
    return officer


def _checked(request: Request, csrf: str, needed: Role = Role.CLERK) -> Officer:
    """For an action: the user (signed in, with the role), then the form's CSRF token."""
    with web._reading(request) as connection:
        officer = _officer(request, connection, needed)
    web._check_csrf(request, csrf)
    return officer


def _page(request: Request, officer: Officer | None, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    flash = request.session.pop("oflash", None)
    lang = web._lang(request)
    if officer is not None and "ministries" not in context:
        with web._reading(request) as connection:
            context["ministries"] = workspace.ministries(connection)
    from followup.notifications.render import strings

    listed = context.get("ministries", ())
    names = {m.code: m.name(lang) for m in (listed.values() if isinstance(listed, dict) else listed)}
    types = strings(lang).get("report", {}).get("facility_types", {})
    return web.page(request, f"office/{template}", status, officer=officer, oflash=flash, section=context.pop("section", ""),
                    body_name=lambda code: names.get(code, code) if code else "—",
                    type_name=lambda code: types.get(code, code) if code else "", **context)


def _flash(request: Request, key: str, kind: str = "success", **params: str) -> None:
    request.session["oflash"] = {"key": key, "kind": kind, "params": params}


def _flash_text(request: Request, text: str) -> None:
    """An error in the domain's own words (steps' one-sentence errors)."""
    request.session["oflash"] = {"key": "", "kind": "error", "text": text[:500]}


async def _form(request: Request, max_fields: int = 30) -> dict[str, str]:
    form = await request.form(max_files=0, max_fields=max_fields)
    return {k: str(v)[:TEXT_LIMIT] for k, v in form.items() if isinstance(v, str)}


def _day(value: str) -> date | None:
    try:
        return parse_date(value.strip()) if value.strip() else None
    except ValueError:
        return None


@contextmanager
def _session(request: Request) -> Iterator[UserSession]:
    """One transaction (sqlmodel's Session, which models/users.py takes): all of it commits, or nothing."""
    with UserSession(web._engine(request), expire_on_commit=False) as session, session.begin():
        yield session


def _engine(request: Request) -> Any:
    return web._engine(request)


# --- signing in and out ----------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    if isinstance(request.session.get("o"), dict):
        return RedirectResponse("/office/", status_code=303)
    web._csrf(request)  # the sign-in form has its token too (no signing in someone else's browser)
    return _page(request, None, "login.html", values={}, error=None)


def _login(request: Request, fields: dict[str, str]) -> Response:
    limiter: FailureLimiter = request.app.state.login_limiter
    client = web._client(request)
    if limiter.blocked(client):
        web._refuse(429, "too_many")
    web._check_csrf(request, fields.get("csrf"))
    name = fields.get("name", "").strip()[:100]
    now = utcnow()
    refused: LoginRefused | None = None
    with _session(request) as session:  # commits a failure too: the count that locks the account
        try:
            user = check_login(session=session, name=name, password=fields.get("password", ""), now=now)
            grant = {"user": user.name, "generation": user.session_generation, "since": now.isoformat()}
        except LoginRefused as exc:
            refused = exc
    if refused is not None:
        limiter.failed(client)
        t = Translator(web._lang(request))
        # a locked account reads like a wrong password: otherwise five guesses at a name would tell
        # whether it exists (the page says that five failures close an account; the log says which)
        error = t("office.login.disabled" if refused.reason == "disabled" else "office.login.wrong")
        if refused.reason == "locked":
            logger.warning("office sign-in refused: account %s is locked until %s", name, refused.until)
        return _page(request, None, "login.html", 400, values={"name": name}, error=error)
    keep: dict[str, Any] = {k: request.session[k] for k in ("lang", "lang_chosen") if k in request.session}
    request.session.clear()
    request.session.update({**keep, "o": grant, "csrf": new_csrf_token()})
    logger.info("office user %s signed in", grant["user"])
    return RedirectResponse("/office/", status_code=303)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    fields = await _form(request, 10)
    return await run_in_threadpool(_login, request, fields)


@router.post("/logout")
async def logout(request: Request) -> Response:
    fields = await _form(request, 10)
    web._check_csrf(request, fields.get("csrf"))
    keep: dict[str, Any] = {k: request.session[k] for k in ("lang", "lang_chosen") if k in request.session}
    request.session.clear()
    request.session.update(keep)
    _flash(request, "signed_out")
    return RedirectResponse("/office/login", status_code=303)


# --- the registry ------------------------------------------------------------------------------------

#: the registry's columns a header link sorts by (models/listing.py SORTS, without the direction)
SORTABLE = ("external_id", "ministry", "issued_on", "due_on", "status")
FILTER_KEYS = ("q", "ministry", "facility", "facility_type", "region", "status", "source", "tag", "category", "overdue",
               "due_within", "issued_from", "issued_to", "sort", "page")


def _registry_filter(request: Request, *, page_size: int = 50) -> tuple[Any, dict[str, str], str | None]:
    """The query string as a RegistryFilter (models/listing.py), the query to keep in links, and
    the filter's own one-sentence complaint when a value is wrong (the list is then unfiltered by it)."""
    from followup.models.listing import RegistryFilter

    q = request.query_params
    kept = {k: q[k][:200] for k in FILTER_KEYS if q.get(k)}
    sort = kept.get("sort", "due_on")
    values: dict[str, Any] = {
        "search": kept.get("q"), "ministry": kept.get("ministry"), "facility": kept.get("facility"),
        "facility_type": kept.get("facility_type"), "region": kept.get("region"),
        "statuses": tuple(s for s in q.getlist("status") if s)[:20], "source": kept.get("source"), "tag": kept.get("tag"),
        "category": kept.get("category"), "overdue": kept.get("overdue") == "1",
        "due_within_days": web._int(kept.get("due_within")) if kept.get("due_within") != "0" else 0,
        "issued_from": _day(kept.get("issued_from", "")), "issued_to": _day(kept.get("issued_to", "")),
        "sort": sort if sort.lstrip("-") in SORTABLE else "due_on", "page": web._int(kept.get("page")) or 1,
        "page_size": page_size,
    }
    try:
        return RegistryFilter(**values), kept, None
    except ValueError as exc:
        for name in ("statuses", "tag"):
            values[name] = RegistryFilter.__dataclass_fields__[name].default
        return RegistryFilter(**values), kept, str(exc)


@router.get("", include_in_schema=False)
def office_root() -> Response:
    return RedirectResponse("/office/", status_code=303)


@router.get("/", response_class=HTMLResponse)
def registry(request: Request) -> Response:
    from followup.models.listing import ItemPage, list_items

    today = web._today(request)
    with web._reading(request) as connection:
        officer = _officer(request, connection)
        filters, kept, problem = _registry_filter(request)
        try:
            found = list_items(connection, filters, today=today)
        except ValueError as exc:  # an unknown ministry, a tag of no known kind…
            problem, found = str(exc), ItemPage(rows=[], total=0, page=1, page_size=filters.page_size, pages=1)
        ministries = workspace.ministries(connection)
    query = {k: v for k, v in kept.items() if k != "page"}

    def sort_link(column: str) -> str:
        wanted = f"-{column}" if kept.get("sort", "due_on") == column else column
        return "/office/?" + urlencode({**query, "sort": wanted})

    return _page(request, officer, "registry.html", section="registry", found=found, kept=kept, ministries=ministries,
                 statuses=[s.value for s in Status], sources=[s.value for s in Source], sort_link=sort_link,
                 sorted_by=kept.get("sort", "due_on"), sortable=SORTABLE, problem=problem,
                 late={s.value for s in LATE_STATUSES},
                 page_link=lambda n: "/office/?" + urlencode({**query, "page": str(n)}),
                 export_link="/office/export.xlsx" + ("?" + urlencode(query) if query else ""))


@router.get("/export.xlsx")
def export(request: Request) -> Response:
    """The registry as filtered (every matching row, not one page), as an Excel workbook."""
    from followup.spreadsheets.export import export_items_xlsx

    with web._reading(request) as connection:
        _officer(request, connection)
        filters, _, _ = _registry_filter(request)
        try:
            content = export_items_xlsx(connection, filters, today=web._today(request))
        except ValueError:
            web._refuse(400, "bad_request")
    name = f"registry-{web._today(request).isoformat()}.xlsx"
    return Response(content, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# --- one item ------------------------------------------------------------------------------------------


def _item_page(request: Request, officer: Officer, external_id: str, *, status: int = 200, error: str | None = None,
               values: dict[str, str] | None = None, open_action: str = "") -> Response:
    from followup.models.listing import get_item, timeline

    with web._reading(request) as connection:
        item = get_item(connection, external_id)
        if item is None:
            web._refuse(404, "not_found")
        entries = timeline(connection, item.id)
        ministries = workspace.ministries(connection)
    actions = available_actions(item.status, officer, treaty_body=_treaty_item(item))
    return _page(request, officer, "item.html", status, section="registry", item=item, timeline=entries,
                 ministries=ministries, actions=actions, error=error, values=values or {}, open_action=open_action,
                 reply_statuses=[s.value for s in REPLY_STATUSES], decisions=_decisions(),
                 today=web._today(request).isoformat())


def _treaty_item(item: Any) -> bool:
    from followup.models.international import TREATY_BODIES

    source = str(getattr(item, "source", "") or "")
    return bool(getattr(item, "follow_up", False)) or source == "treaty_body" or any(
        str(getattr(item, "mechanism_ref", "") or "").upper().startswith(body) for body in TREATY_BODIES)


def _decisions() -> list[str]:
    from followup.steps.office import Decision

    return [d.value for d in Decision]


def available_actions(status: str, officer: Officer, *, treaty_body: bool = False) -> list[str]:
    """The actions the transition table allows from `status` that the user's role may take."""
    try:
        current = Status(status)
    except ValueError:
        return []
    following = TRANSITIONS.get(current, frozenset())
    found = []
    if current is not Status.WITHDRAWN:
        found.append("assign")
    if Status.ON_HOLD in following:
        found.append("hold")
    if current is Status.ON_HOLD:
        found.append("resume")
    if any(s in following for s in REPLY_STATUSES):
        found.append("reply")
    if current is Status.AWAITING_DECISION:
        found.append("decide")
    if treaty_body:
        found.append("grade")
    if Status.WITHDRAWN in following:
        found.append("withdraw")
    return [a for a in found if officer.may(ACTIONS[a][0].value)]


@router.get("/items/{external_id:path}", response_class=HTMLResponse)
def item_page(request: Request, external_id: str) -> Response:
    with web._reading(request) as connection:
        officer = _officer(request, connection)
    return _item_page(request, officer, external_id[:200])


def _act(request: Request, external_id: str, fields: dict[str, str]) -> Response:
    action = fields.get("action", "")
    if action not in ACTIONS:
        web._refuse(400, "bad_request")
    officer = _checked(request, fields.get("csrf", ""), ACTIONS[action][0])
    t = Translator(web._lang(request))
    reason = fields.get("reason", "").strip()
    back = "/office/items/" + external_id
    try:
        done = _do(request, officer, action, external_id, reason, fields, t)
    except ActionProblem as exc:
        return _item_page(request, officer, external_id, status=400, error=str(exc), values=fields, open_action=action)
    _flash(request, f"done_{action}", **done)
    return RedirectResponse(back, status_code=303)


class ActionProblem(ValueError):
    """An action that could not be done, in a sentence shown above its form; nothing was written."""


def _do(request: Request, officer: Officer, action: str, external_id: str, reason: str, fields: dict[str, str],
        t: Translator) -> dict[str, str]:
    """Carry out one item action through the steps' functions (the same the CLI uses)."""
    from followup.steps import office as steps

    if action not in ("grade",) and not reason:
        raise ActionProblem(t("office.action.reason_required"))
    try:
        if action == "assign":
            from followup.models.triage import AssignmentError, assign

            ministry = fields.get("ministry", "").strip()
            if not ministry:
                raise ActionProblem(t("office.action.ministry_required"))
            try:
                with _session(request) as session:
                    assign(session=session, assignments={external_id: ministry}, actor=officer.name, reason=reason)
            except AssignmentError as exc:
                raise ActionProblem(str(exc)) from None
            return {"ministry": ministry}
        if action in ("hold", "resume", "withdraw"):
            move = {"hold": steps.hold, "resume": steps.resume, "withdraw": steps.withdraw}[action]
            move(engine=_engine(request), external_id=external_id, actor=officer.name, reason=reason,
                 today=web._today(request))
        elif action == "reply":
            on = _day(fields.get("responded_on", ""))
            if on is None:
                raise ActionProblem(t("office.action.date_required"))
            steps.record_reply(engine=_engine(request), external_id=external_id, status=fields.get("status", ""),
                               responded_on=on, note=reason, actor=officer.name, today=web._today(request))
        elif action == "decide":
            due = _day(fields.get("due_on", ""))
            steps.record_decision(engine=_engine(request), key=external_id, decision=fields.get("decision", ""), due=due,
                         reason=reason, actor=officer.name, today=web._today(request))
        elif action == "grade":
            _grade(request, officer, external_id, fields, t)
    except steps.OfficeError as exc:
        raise ActionProblem(str(exc)) from None
    return {}


def _grade(request: Request, officer: Officer, external_id: str, fields: dict[str, str], t: Translator) -> None:
    """`followup grade` from the item's page: a treaty body's grade of the follow-up reply."""
    from followup.models.procedure import record_grade

    graded_on = _day(fields.get("graded_on", "")) or web._today(request)
    try:
        round_ = int(fields.get("round", "1") or "1")
    except ValueError:
        raise ActionProblem(t("office.action.round")) from None
    try:
        with _session(request) as session:
            record_grade(session=session, external_id=external_id, grade=fields.get("grade", ""), round=round_,
                         graded_on=graded_on, actor=officer.name, document=fields.get("document", "").strip() or None,
                         note=fields.get("reason", "").strip() or None, next_due=_day(fields.get("next_due", "")))
    except ValueError as exc:
        raise ActionProblem(str(exc)) from None


@router.post("/items/{external_id:path}", response_class=HTMLResponse)
async def act_on_item(request: Request, external_id: str) -> Response:
    fields = await _form(request)
    return await run_in_threadpool(_act, request, external_id[:200], fields)


@router.get("/evidence/{evidence_id}")
def evidence(request: Request, evidence_id: str) -> Response:
    """A reply's evidence file, for the office (any ministry's)."""
    number = web._int(evidence_id)
    with web._reading(request) as connection:
        _officer(request, connection)
        stored = portal.evidence(connection, number) if number else None
    if stored is None:
        web._refuse(404, "not_found")
    return web._evidence_response(request, stored)


# --- the queues --------------------------------------------------------------------------------------------


@dataclass
class Level2Letter:
    """The level-2 queue, by the letter its items went unanswered in."""

    reference: str | None
    ministry_code: str | None
    since: date | None
    items: list[Any]


@dataclass
class ReviewReply:
    reply_id: int
    reference: str
    ministry_code: str
    responded_on: date
    lines: list[Any]
    summary: Any = None


@router.get("/queues", response_class=HTMLResponse)
def queues(request: Request) -> Response:
    from followup.config.triage import load_triage
    from followup.models.triage import triage_queue
    from followup.steps.replies import list_claims_under_review

    with web._reading(request) as connection:
        officer = _officer(request, connection)
    engine = _engine(request)
    review: dict[int, ReviewReply] = {}
    for line in list_claims_under_review(engine=engine):
        review.setdefault(line.reply_id, ReviewReply(line.reply_id, line.reference, line.ministry_code,
                                                     line.responded_on, [])).lines.append(line)
    drafts, level2, draft_error = _head_queues(request)
    with Session(engine) as session:
        try:
            rules = load_triage()
        except Exception as exc:  # noqa: BLE001 - a broken rules file must not hide the queue itself
            logger.warning("triage rules not loaded: %s", exc)
            rules = []
        unassigned = triage_queue(session=session, rules=rules).head(50)
        connection = session.connection()
        for found in review.values():
            got = portal.reply(connection, found.ministry_code, found.reply_id)
            found.summary = got[0] if got else None
        unsent, unsent_total = workspace.unsent_messages(connection)
        ministries = workspace.ministries(connection)
    return _page(request, officer, "queues.html", section="queues", review=list(review.values())[:30],
                 review_total=len(review), drafts=drafts, level2=level2, draft_error=draft_error,
                 unassigned=unassigned.to_dict("records"), unassigned_total=len(unassigned), unsent=unsent,
                 # the facility types' names as the annual report words them (else the code shows)
                 unsent_total=unsent_total, ministries=ministries, decisions=_decisions(),
                 today=web._today(request).isoformat())


def _head_queues(request: Request) -> tuple[list[Any], list[Any], str | None]:
    """Drafts to approve and level-2 decisions (steps/office.py)."""
    from followup.steps import office as steps

    drafts = steps.pending_drafts(engine=_engine(request), today=web._today(request), policy=web._policy(request))
    letters: dict[str, Level2Letter] = {}
    for line in steps.level2_queue(engine=_engine(request)):
        key = line.reference or ""
        letters.setdefault(key, Level2Letter(line.reference, line.ministry_code, line.since, [])).items.append(line)
    return list(drafts), list(letters.values()), None


def _review(request: Request, reply_id: str, fields: dict[str, str], accept: bool) -> Response:
    from followup.steps.replies import ReviewError, accept_claims, return_claims

    officer = _checked(request, fields.get("csrf", ""))
    number = web._int(reply_id)
    if number is None:
        web._refuse(404, "not_found")
    try:
        if accept:
            result = accept_claims(engine=_engine(request), reply_id=number, actor=officer.name, today=web._today(request))
        else:
            result = return_claims(engine=_engine(request), reply_id=number, actor=officer.name,
                                   comment=fields.get("comment", ""), today=web._today(request))
    except (ReviewError, ValueError) as exc:
        _flash_text(request, str(exc))
        return RedirectResponse("/office/queues#review", status_code=303)
    if result.notifications:
        events.notification_queued(keys=result.notifications)
    _flash(request, "accepted" if accept else "returned", reference=result.reference)
    return RedirectResponse("/office/queues#review", status_code=303)


@router.post("/replies/{reply_id}/accept")
async def accept_reply(request: Request, reply_id: str) -> Response:
    fields = await _form(request)
    return await run_in_threadpool(_review, request, reply_id, fields, True)


@router.post("/replies/{reply_id}/return")
async def return_reply(request: Request, reply_id: str) -> Response:
    fields = await _form(request)
    return await run_in_threadpool(_review, request, reply_id, fields, False)


def _approve(request: Request, reference: str, fields: dict[str, str]) -> Response:
    from followup.steps import office as steps

    officer = _checked(request, fields.get("csrf", ""), NEEDED_ROLE["approve"])
    t = Translator(web._lang(request))
    number = fields.get("number", "").strip()[:60]
    on = _day(fields.get("outgoing_on", ""))
    if not number or on is None:
        _flash_text(request, t("office.queues.approve_needs"))
        return RedirectResponse("/office/queues#drafts", status_code=303)
    try:
        approved = steps.approve(engine=_engine(request), reference=reference, outgoing_number=number, outgoing_date=on,
                                 actor=officer.name, today=web._today(request), policy=web._policy(request))
    except steps.OfficeError as exc:
        _flash_text(request, str(exc))
        return RedirectResponse("/office/queues#drafts", status_code=303)
    events.notification_queued(keys=[steps.letter_key(approved)])
    _flash(request, "approved", reference=number)
    return RedirectResponse("/office/queues#drafts", status_code=303)


@router.post("/drafts/{reference:path}")
async def approve_draft(request: Request, reference: str) -> Response:
    fields = await _form(request)
    return await run_in_threadpool(_approve, request, reference[:80], fields)


# --- individualized recommendations, ministries, users --------------------------------------------------


@router.get("/letters", response_class=HTMLResponse)
def letters(request: Request) -> Response:
    page_number = web._int(request.query_params.get("page")) or 1
    ministry = (request.query_params.get("ministry") or "")[:32] or None
    pending = request.query_params.get("pending") == "1"
    with web._reading(request) as connection:
        officer = _officer(request, connection)
        found, total = workspace.letters(connection, page=page_number, ministry=ministry, pending_only=pending)
        ministries = workspace.ministries(connection)
    pages = max(1, -(-total // workspace.LETTERS_PAGE))
    query = {k: v for k, v in (("ministry", ministry or ""), ("pending", "1" if pending else "")) if v}
    return _page(request, officer, "letters.html", section="letters", letters=found, total=total,
                 page=min(page_number, pages), pages=pages, ministries=ministries, ministry=ministry, pending=pending,
                 page_link=lambda n: "/office/letters?" + urlencode({**query, "page": str(n)}))


@router.get("/ministries", response_class=HTMLResponse)
def scorecards(request: Request) -> Response:
    from followup.reports.picture import current_picture

    today = web._today(request)
    with web._reading(request) as connection:
        officer = _officer(request, connection)
        ministries = {m.code: m for m in workspace.ministries(connection)}
        trend = workspace.trend(connection, today)
    picture = current_picture(_engine(request), today)
    t = Translator(web._lang(request))
    charts = {code: workspace.trend_svg(points, label_open=t("office.ministries.open"),
                                        label_late=t("office.ministries.late")) for code, points in trend.items()}
    return _page(request, officer, "ministries.html", section="ministries", rows=picture, ministries=ministries,
                 charts=charts)


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request) -> Response:
    with web._reading(request) as connection:
        officer = _officer(request, connection, Role.ADMIN)
        found = workspace.users(connection, utcnow())
    return _page(request, officer, "users.html", section="users", users=found, roles=[r.value for r in Role],
                 values={}, error=None)


def _add_user(request: Request, fields: dict[str, str]) -> Response:
    officer = _checked(request, fields.get("csrf", ""), Role.ADMIN)
    password = fields.get("password", "")
    try:
        if password != fields.get("password2", ""):
            raise AccountError(Translator(web._lang(request))("office.users.mismatch"))
        with _session(request) as session:
            create_user(session=session, name=fields.get("name", ""), role=fields.get("role", ""), password=password,
                        full_name=fields.get("full_name"), position=fields.get("position"))
    except AccountError as exc:
        with web._reading(request) as connection:
            found = workspace.users(connection, utcnow())
        values = {k: fields.get(k, "") for k in ("name", "role", "full_name", "position")}
        return _page(request, officer, "users.html", 400, section="users", users=found, roles=[r.value for r in Role],
                     values=values, error=str(exc))
    _flash(request, "user_added", name=fields.get("name", "").strip())
    return RedirectResponse("/office/users", status_code=303)


@router.post("/users", response_class=HTMLResponse)
async def add_user(request: Request) -> Response:
    fields = await _form(request)
    return await run_in_threadpool(_add_user, request, fields)


def _disable_user(request: Request, name: str, fields: dict[str, str]) -> Response:
    _checked(request, fields.get("csrf", ""), Role.ADMIN)
    try:
        with _session(request) as session:
            disable_user(session=session, name=name)
    except AccountError as exc:
        _flash_text(request, str(exc))
        return RedirectResponse("/office/users", status_code=303)
    _flash(request, "user_disabled", name=name)
    return RedirectResponse("/office/users", status_code=303)


@router.post("/users/{name}/disable")
async def disable(request: Request, name: str) -> Response:
    fields = await _form(request)
    return await run_in_threadpool(_disable_user, request, name[:100], fields)

