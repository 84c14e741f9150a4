"""The office's workspace (/office/), as a clerk, a head, an administrator and an intruder use it.

Every test runs on SQLite and on PostgreSQL (the `registry` fixture: NPM-1 and NPM-2 to the Ministry
of Internal Affairs, NPM-3 to Health, issued 05.01.2026, due 10.03.2026). The office's "today" is
20.04.2026: the deadline check of 20.03 made the three overdue, and escalation drafts the Ministry
of Internal Affairs' individualized recommendation (policy: approval required) for a head to approve.
Prefect events are recorded, never sent.
"""

from __future__ import annotations

import io
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, func, select
from sqlmodel import Session
from sqlmodel import select as orm_select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from followup.config.policy import Policy, copy_with_approval, load_policy
from followup.interfaces.cli import app as cli
from followup.interfaces.web.app import create_app
from followup.models.db import session_scope
from followup.models.domain import IndividualizedStatus, Status
from followup.models.followup import IndividualizedRecommendation
from followup.models.registry import Recommendation, StatusChange, table_of
from followup.models.transitions import TransitionRequest, transition_many
from followup.models.types import utcnow
from followup.models.users import (
    MAX_FAILED_LOGINS,
    LoginRefused,
    OfficeUser,
    check_login,
    create_user,
    disable_user,
)
from followup.steps.deadlines import check_deadlines, escalate_ministry
from tests.test_international import GUARDHOUSE, unassigned_npm_item
from tests.test_web_portal import link

TODAY = date(2026, 4, 20)
PASSWORD = "correct horse battery"
XSS = "<script>alert('x')</script>"


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    """The shipped policy with `individualized.approval: required`: escalation drafts, a head approves."""
    return load_policy(copy_with_approval(tmp_path / "policy-required.yaml", "required"))


@pytest.fixture
def office(registry: Engine, policy: Policy, emitted: list[dict[str, Any]]) -> Engine:  # noqa: ARG001
    return prepare_office(registry, policy)


def prepare_office(registry: Engine, policy: Policy) -> Engine:
    """The registry with three users (clerk, head, admin), a draft for the Ministry of Internal
    Affairs (NPM-1, NPM-2 escalated) and NPM-3 awaiting the Commissioner's decision."""
    with session_scope(registry) as session:
        create_user(session=session, name="anna", role="clerk", password=PASSWORD, full_name="Анна Клеркова")
        create_user(session=session, name="head", role="head", password=PASSWORD, full_name="Е. Азимова",
                    position="Уполномоченный по правам человека")
        create_user(session=session, name="root", role="admin", password=PASSWORD)
    check_deadlines(date(2026, 3, 20), engine=registry, policy=policy)
    to_level2(registry, "NPM-3")
    escalate_ministry("interior", TODAY, engine=registry, policy=policy)
    return registry


def to_level2(engine: Engine, external_id: str) -> None:
    """An item along the table to awaiting_decision, as escalation and level 2 would move it."""
    with Session(engine) as session, session.begin():
        rec = session.exec(orm_select(Recommendation).where(Recommendation.external_id == external_id)).one()
        assert rec.id is not None
        steps = [Status.ESCALATED, Status.AWAITING_DECISION]
        current = Status(rec.status)
        for step in steps:
            transition_many(session, [TransitionRequest(rec.id, current, step, external_id)], actor="system",
                            reason="the test's way to level 2", at=utcnow())
            current = step


def client_for(engine: Engine, policy: Policy) -> TestClient:
    return TestClient(create_app(engine=engine, policy=policy, today=lambda: TODAY))


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    page = client.get("/office/login")
    return client.post("/office/login", data={"csrf": csrf_of(page.text), "name": name, "password": password},
                       follow_redirects=False)


def signed_in(engine: Engine, policy: Policy, name: str) -> TestClient:
    client = client_for(engine, policy)
    response = sign_in(client, name)
    assert response.status_code == 303 and response.headers["location"] == "/office/", response.text
    return client


def status_of(engine: Engine, external_id: str) -> str:
    r = table_of(Recommendation)
    with engine.connect() as c:
        return str(c.execute(select(r.c.status).where(r.c.external_id == external_id)).scalar_one())


def history_count(engine: Engine) -> int:
    with engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(table_of(StatusChange))).scalar_one())


def letter_status(engine: Engine) -> str:
    ir = table_of(IndividualizedRecommendation)
    with engine.connect() as c:
        return str(c.execute(select(ir.c.status).where(ir.c.ministry_code == "interior")).scalar_one())


# --- signing in ---------------------------------------------------------------------------------------


def test_a_clerk_signs_in_sees_the_registry_and_signs_out(office: Engine, policy: Policy):
    client = signed_in(office, policy, "anna")
    page = client.get("/office/")
    assert page.status_code == 200
    assert "NPM-1" in page.text and "NPM-3" in page.text and "Анна Клеркова" in page.text
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert page.headers["Cache-Control"] == "no-store"
    assert "/office/users" not in page.text  # a clerk has no users page to go to
    filtered = client.get("/office/?ministry=health")
    assert "NPM-3" in filtered.text and "NPM-1" not in filtered.text
    export = client.get("/office/export.xlsx?ministry=interior")
    assert export.status_code == 200 and export.content[:2] == b"PK"
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(export.content)).active
    assert sheet is not None
    numbers = {row[0] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert numbers == {"NPM-1", "NPM-2"}
    out = client.post("/office/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/office/login"
    again = client.get("/office/", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/office/login"


def test_a_wrong_password_and_an_unknown_user_read_the_same(office: Engine, policy: Policy):
    client = client_for(office, policy)
    wrong = sign_in(client, "anna", "not the password")
    unknown = sign_in(client, "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 400
    assert "Неверное имя пользователя или пароль." in wrong.text and "Неверное имя пользователя или пароль." in unknown.text
    assert client.get("/office/", follow_redirects=False).status_code == 303


def _message(page: str) -> str:
    """The sign-in page's error, as the user reads it."""
    found = re.search(r'<div class="error-summary" role="alert"><p>(.*?)</p>', page, re.S)
    assert found, page
    return found.group(1).strip()


def test_five_failures_lock_the_account_for_fifteen_minutes(office: Engine, policy: Policy):
    client = client_for(office, policy)
    for _ in range(MAX_FAILED_LOGINS - 1):
        assert "Неверное" in sign_in(client, "anna", "guess").text
    locked = sign_in(client, "anna", "guess")
    # the page reads as for a name that does not exist: five guesses do not tell who has an account
    unknown = sign_in(client, "nobody", "guess")
    assert locked.status_code == unknown.status_code == 400
    assert _message(locked.text) == _message(unknown.text) and "15 минут" in _message(locked.text)
    # the right password does not open a locked account either
    still = sign_in(client, "anna")
    assert still.status_code == 400 and _message(still.text) == _message(unknown.text)
    with Session(office) as session:
        user = session.exec(orm_select(OfficeUser).where(OfficeUser.name == "anna")).one()
        assert user.locked_until is not None
        later = user.locked_until.replace(tzinfo=user.locked_until.tzinfo) if user.locked_until.tzinfo else user.locked_until
    # fifteen minutes on, it opens again (the model's clock, not the test's)
    with Session(office) as session, session.begin():
        from datetime import UTC, timedelta

        moment = (later if later.tzinfo else later.replace(tzinfo=UTC)) + timedelta(seconds=1)
        assert check_login(session=session, name="anna", password=PASSWORD, now=moment).name == "anna"
        with pytest.raises(LoginRefused):
            check_login(session=session, name="anna", password="guess", now=moment)


def test_a_disabled_user_cannot_sign_in_and_their_session_ends(office: Engine, policy: Policy):
    client = signed_in(office, policy, "anna")
    assert client.get("/office/").status_code == 200
    with session_scope(office) as session:
        disable_user(session=session, name="anna")
    assert client.get("/office/", follow_redirects=False).headers["location"] == "/office/login"
    refused = sign_in(client_for(office, policy), "anna")
    assert refused.status_code == 400 and "отключена" in refused.text


def test_the_sign_in_form_needs_its_csrf_token(office: Engine, policy: Policy):
    client = client_for(office, policy)
    client.get("/office/login")
    for token in ("", "forged"):
        response = client.post("/office/login", data={"csrf": token, "name": "anna", "password": PASSWORD},
                               follow_redirects=False)
        assert response.status_code == 403
    assert client.get("/office/", follow_redirects=False).status_code == 303


def test_ministry_and_office_sessions_never_cross(office: Engine, policy: Policy):
    ministry = client_for(office, policy)
    assert ministry.get(link()).status_code == 200  # followed to /m/
    refused = ministry.get("/office/", follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == "/office/login"
    assert ministry.get("/office/items/NPM-1", follow_redirects=False).status_code == 303
    clerk = signed_in(office, policy, "anna")
    assert clerk.get("/m/").status_code == 403
    assert clerk.get("/m/items/1").status_code == 403
    # signing in to the office ends the browser's ministry session
    assert sign_in(ministry, "anna").status_code == 303
    assert ministry.get("/m/").status_code == 403
    # and a ministry's link ends the office's
    assert clerk.get(link()).status_code == 200
    assert clerk.get("/office/", follow_redirects=False).status_code == 303


# --- roles and actions ------------------------------------------------------------------------------------


def test_a_clerk_puts_an_item_on_hold_with_a_reason_and_the_history_names_them(office: Engine, policy: Policy):
    client = signed_in(office, policy, "anna")
    page = client.get("/office/items/NPM-3")
    assert page.status_code == 200 and "Обеспечить пациентов питьевой водой" in page.text
    item = client.get("/office/items/NPM-1")
    done = client.post("/office/items/NPM-1", data={"csrf": csrf_of(item.text), "action": "hold",
                                                  "reason": "ждём результатов проверки прокуратуры"}, follow_redirects=False)
    assert done.status_code == 303, done.text
    assert status_of(office, "NPM-1") == Status.ON_HOLD.value
    h = table_of(StatusChange)
    with office.connect() as c:
        actor, reason = c.execute(select(h.c.actor, h.c.reason).order_by(h.c.id.desc()).limit(1)).one()
    assert actor == "anna" and "прокуратуры" in reason
    after = client.get("/office/items/NPM-1")
    assert "приостановлена" in after.text.lower() and "ждём результатов проверки прокуратуры" in after.text


def test_an_action_without_a_reason_is_refused_inline(office: Engine, policy: Policy):
    client = signed_in(office, policy, "anna")
    item = client.get("/office/items/NPM-1")
    before = history_count(office)
    refused = client.post("/office/items/NPM-1", data={"csrf": csrf_of(item.text), "action": "withdraw", "reason": " "})
    assert refused.status_code == 400 and "Укажите основание" in refused.text
    assert history_count(office) == before


def test_a_clerk_cannot_approve_or_decide(office: Engine, policy: Policy):
    client = signed_in(office, policy, "anna")
    page = client.get("/office/queues")
    assert page.status_code == 200
    assert "IR-20260420-INTERIOR" in page.text and "NPM-3" in page.text
    assert 'action="/office/drafts/' not in page.text  # no approve form for a clerk
    token = csrf_of(page.text)
    before = history_count(office)
    approve = client.post("/office/drafts/IR-20260420-INTERIOR",
                          data={"csrf": token, "number": "04-1/77", "outgoing_on": "20.04.2026"})
    decide = client.post("/office/items/NPM-3", data={"csrf": token, "action": "decide", "decision": "closed",
                                                    "reason": "закрыть"})
    assert approve.status_code == 403 and decide.status_code == 403
    assert letter_status(office) == IndividualizedStatus.DRAFT.value
    assert status_of(office, "NPM-3") == Status.AWAITING_DECISION.value
    assert history_count(office) == before
    assert client.get("/office/users").status_code == 403


def test_the_unassigned_queue_shows_the_facility_its_type_and_the_rules_suggestion(office: Engine, policy: Policy):
    unassigned_npm_item(office, "NPM-G-1", "Обеспечить камеры естественным освещением", GUARDHOUSE, "military_guardhouse")
    page = signed_in(office, policy, "anna").get("/office/queues")
    assert page.status_code == 200
    row = page.text[page.text.index('id="unassigned"'):page.text.index('id="unsent"')]
    assert "NPM-G-1" in row and GUARDHOUSE in row and "гауптвахты" in row  # the type in the page's language
    assert "facility type &#39;military_guardhouse&#39;" in row and '<option value="defence" selected>' in row


def test_a_head_approves_a_draft_and_decides_level_two(office: Engine, policy: Policy, emitted: list[dict[str, Any]]):
    client = signed_in(office, policy, "head")
    page = client.get("/office/queues")
    token = csrf_of(page.text)
    approved = client.post("/office/drafts/IR-20260420-INTERIOR",
                           data={"csrf": token, "number": "04-1/77", "outgoing_on": "20.04.2026"}, follow_redirects=False)
    assert approved.status_code == 303
    assert letter_status(office) == IndividualizedStatus.ISSUED.value
    assert any(e["event"] == "followup.notification.queued" for e in emitted)
    decided = client.post("/office/items/NPM-3", data={"csrf": token, "action": "decide", "decision": "parliament_report",
                                                     "reason": "включить в ежегодный доклад"}, follow_redirects=False)
    assert decided.status_code == 303, decided.text
    assert status_of(office, "NPM-3") == Status.REPORTED_TO_PARLIAMENT.value
    item = client.get("/office/items/NPM-3")
    assert "включить в ежегодный доклад" in item.text and "head" in item.text


def test_an_admin_adds_and_disables_a_user(office: Engine, policy: Policy):
    client = signed_in(office, policy, "root")
    page = client.get("/office/users")
    assert page.status_code == 200 and "anna" in page.text
    added = client.post("/office/users", data={"csrf": csrf_of(page.text), "name": "bota", "role": "clerk",
                                               "password": PASSWORD, "password2": PASSWORD}, follow_redirects=False)
    assert added.status_code == 303
    assert signed_in(office, policy, "bota").get("/office/").status_code == 200
    gone = client.post("/office/users/bota/disable", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert gone.status_code == 303
    assert sign_in(client_for(office, policy), "bota").status_code == 400


# --- every form: CSRF; every page: escaping -----------------------------------------------------------------

#: every office form: (who posts it, the address, its fields without the token)
FORMS = [
    ("anna", "/office/logout", {}),
    ("anna", "/office/items/NPM-1", {"action": "hold", "reason": "r"}),
    ("anna", "/office/items/NPM-1", {"action": "withdraw", "reason": "r"}),
    ("anna", "/office/items/NPM-1", {"action": "assign", "ministry": "health", "reason": "r"}),
    ("anna", "/office/items/NPM-1", {"action": "reply", "status": "in_progress", "responded_on": "01.04.2026",
                                     "reason": "r"}),
    ("anna", "/office/items/NPM-1", {"action": "grade", "grade": "B"}),
    ("anna", "/office/replies/1/accept", {}),
    ("anna", "/office/replies/1/return", {"comment": "c"}),
    ("head", "/office/items/NPM-3", {"action": "decide", "decision": "closed", "reason": "r"}),
    ("head", "/office/drafts/IR-20260420-INTERIOR", {"number": "1", "outgoing_on": "20.04.2026"}),
    ("root", "/office/users", {"name": "x", "role": "clerk", "password": PASSWORD, "password2": PASSWORD}),
    ("root", "/office/users/anna/disable", {}),
]


def test_every_office_form_rejects_a_missing_or_wrong_csrf_token(office: Engine, policy: Policy):
    clients = {name: signed_in(office, policy, name) for name in ("anna", "head", "root")}
    before = history_count(office)
    for who, address, fields in FORMS:
        for token in (None, "", "forged-token"):
            data = fields if token is None else {**fields, "csrf": token}
            response = clients[who].post(address, data=data, follow_redirects=False)
            assert response.status_code == 403, (who, address, token, response.status_code)
    assert history_count(office) == before
    assert letter_status(office) == IndividualizedStatus.DRAFT.value
    assert all(client.get("/office/", follow_redirects=False).status_code == 200 for client in clients.values())


def test_user_text_is_escaped_on_every_office_page(office: Engine, policy: Policy):
    r = table_of(Recommendation)
    with office.begin() as c:
        c.execute(r.update().where(r.c.external_id == "NPM-1").values(text=f"Текст {XSS}"))
    client = signed_in(office, policy, "anna")
    item = client.get("/office/items/NPM-1")
    held = client.post("/office/items/NPM-1", data={"csrf": csrf_of(item.text), "action": "hold", "reason": f"причина {XSS}"})
    assert held.status_code == 200
    with session_scope(office) as session:
        create_user(session=session, name="evil", role="clerk", password=PASSWORD, full_name=XSS, position=XSS)
    admin = signed_in(office, policy, "root")
    pages = [client.get(p) for p in ("/office/", "/office/?q=Текст", "/office/items/NPM-1", "/office/queues",
                                     "/office/letters", "/office/ministries", f"/office/?region={XSS}")]
    pages.append(admin.get("/office/users"))
    pages.append(client.post("/office/items/NPM-2", data={"csrf": csrf_of(item.text), "action": "assign",
                                                          "ministry": XSS, "reason": XSS}))
    for page in pages:
        assert "<script>" not in page.text, page.url
    assert "&lt;script&gt;" in pages[2].text


# --- the command line ------------------------------------------------------------------------------------


def test_users_add_reads_the_password_from_standard_input_and_keeps_an_argon2_hash(registry: Engine):
    runner = CliRunner()
    added = runner.invoke(cli, ["users", "add", "dana", "--role", "head", "--full-name", "Дана Ахметова",
                                "--position", "заместитель"], input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    assert PASSWORD not in added.output
    with Session(registry) as session:
        user = session.exec(orm_select(OfficeUser).where(OfficeUser.name == "dana")).one()
    assert user.role == "head" and user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert PasswordHasher().verify(user.password_hash, PASSWORD)
    listed = runner.invoke(cli, ["users", "list"], env={"COLUMNS": "200"})
    assert "dana" in listed.output and "head" in listed.output
    assert runner.invoke(cli, ["users", "disable", "dana"]).exit_code == 0
    with Session(registry) as session:
        user = session.exec(orm_select(OfficeUser).where(OfficeUser.name == "dana")).one()
    assert not user.active and user.session_generation == 2
    empty = runner.invoke(cli, ["users", "add", "eve", "--role", "clerk"], input="\n")
    assert empty.exit_code == 2
    wrong_role = runner.invoke(cli, ["users", "add", "eve", "--role", "boss"], input=PASSWORD + "\n")
    assert wrong_role.exit_code == 2 and "not a role" in wrong_role.output


def test_the_scorecards_trend_counts_items_open_at_each_month_end(session):
    """An item settled two years ago is not read at all; one settled in the window counts until
    its month; one still waiting counts from the month it was issued; late ones are counted apart."""
    from datetime import UTC, datetime

    from followup.interfaces.web.workspace import trend
    from followup.models.domain import Status as S
    from followup.models.registry import Recommendation
    from followup.models.transitions import TransitionRequest, transition_many

    def item(external_id: str, issued: date, *moves: tuple[S, S, date]) -> None:
        rec = Recommendation(external_id=external_id, text="Обеспечить питьевой водой", issued_on=issued, ministry_code="interior")
        session.add(rec)
        session.flush()
        at = datetime.combine(issued, datetime.min.time(), UTC)
        transition_many(session, [TransitionRequest(rec.id, None, S.ISSUED)], actor="clerk", reason="created", at=at,
                        effective_on=[issued])
        for before, after, day in moves:
            transition_many(session, [TransitionRequest(rec.id, before, after)], actor="clerk", reason="moved",
                            at=datetime.combine(day, datetime.min.time(), UTC), effective_on=[day])

    item("OLD", date(2024, 1, 10), (S.ISSUED, S.IMPLEMENTED, date(2024, 6, 1)))
    item("SETTLED", date(2026, 1, 15), (S.ISSUED, S.IMPLEMENTED, date(2026, 5, 20)))
    item("LATE", date(2026, 3, 2), (S.ISSUED, S.OVERDUE, date(2026, 8, 3)))
    session.commit()
    with session.connection() as connection:
        points = trend(connection, date(2026, 11, 30))["interior"]
    by_month = {day.month: (open_, late) for day, open_, late in points}
    # the line starts at the first month end with an item issued (December 2025 had none left open)
    assert points[0][0] == date(2026, 1, 31) and points[-1][0] == date(2026, 11, 30) and len(points) == 11
    assert by_month[1] == (1, 0) and by_month[4] == (2, 0)  # SETTLED from January, LATE from March
    assert by_month[5] == (1, 0)  # SETTLED implemented on 20 May
    assert by_month[8] == (1, 1) and by_month[11] == (1, 1)  # LATE overdue since August
