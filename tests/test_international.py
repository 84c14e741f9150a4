"""The office follows what UN mechanisms recommended to Kazakhstan, in the same registry.

The scenarios: the office imports the Human Rights Committee's and the Committee against
Torture's concluding observations from a Universal Human Rights Index export and the UPR
matrix; the recommendations wait in the triage queue until a ministry is assigned (by hand or
by the rules); the committee's follow-up recommendations get its deadline, the ministry is
reminded, and the committee grades the reply round after round. Registry tests run on SQLite
and PostgreSQL; the business rules are also tested as plain functions.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.exc import NoResultFound

from followup.config.loader import ConfigError
from followup.config.policy import load_policy
from followup.config.triage import TriageRule, load_triage
from followup.models.db import session_scope
from followup.models.domain import FOLLOW_UP_GRADES, Status
from followup.models.international import (
    committee_of,
    derive_external_id,
    detect_format,
    is_kazakhstan,
    parse_tag_filter,
    parse_upr_text,
    source_of,
    split_symbol,
    split_tags,
    tag_matches,
    to_project_frame,
)
from followup.models.procedure import FollowUpError, parse_grade
from followup.models.registry import Facility, FollowUpGrade, Recommendation, RecommendationTag, StatusChange
from followup.models.triage import suggest
from followup.notifications.digest import build_digest
from followup.reports.annual import compute, read_year
from followup.steps.deadlines import check_deadlines
from tests.test_deadlines import notifications
from tests.test_import import import_json, run_cli

GUARDHOUSE = "Гауптвахта гарнизона г. Алматы"
TORTURE = "Torture and other cruel, inhuman or degrading treatment or punishment"
UHRI_HEADER = "Symbol,Paragraph,Text,PublicationDate,Body,Themes,AffectedPersons,Sdgs,Countries,Annotation,FollowUp"


def uhri_file(tmp_path, *rows: list[str], name: str = "uhri-kaz.csv"):
    """A UHRI export as the site writes it: a CSV whose multi-value cells are separated by ';'."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(UHRI_HEADER.split(","))
    writer.writerows(rows)
    path = tmp_path / name
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


CCPR_ROWS = [
    ["CCPR/C/KAZ/CO/2", "8", "The State party should conduct a full, impartial and effective investigation into the events "
     "in Zhanaozen in December 2011 and bring the perpetrators to justice.", "2016-08-09", "CCPR",
     "Administration of justice; Right to life", "General", "16.3 - Rule of law and equal access to justice", "Kazakhstan", "", "yes"],
    ["CCPR/C/KAZ/CO/2", "24", "The State party should ensure that all allegations of torture and ill-treatment in places of "
     "detention are promptly investigated by an independent body.", "2016-08-09", "CCPR",
     f"{TORTURE}; Conditions of detention", "Persons deprived of their liberty", "16 - Peace, justice and strong institutions",
     "Kazakhstan", "priority", "yes"],
    ["CCPR/C/KAZ/CO/2", "50", "The State party should bring its legislation on public associations into line with article 22 "
     "of the Covenant.", "2016-08-09", "CCPR", "Freedom of association", "Human rights defenders", "16.10 - Public access to "
     "information and fundamental freedoms", "Kazakhstan", "", "yes"],
    ["CAT/C/KAZ/CO/3, para. 9", "", "The State party should ensure that the psychiatric examination of detainees is "
     "carried out by independent experts.", "09.12.2014", "CAT", TORTURE, "Persons with disabilities; Persons deprived of "
     "their liberty", "", "Kazakhstan", "", ""],
    ["CCPR/C/KGZ/CO/2", "12", "The State party should investigate the June 2010 events.", "2014-04-23", "CCPR",
     "Administration of justice", "", "", "Kyrgyzstan", "", ""],
]


def rec(engine, external_id: str) -> Recommendation:
    with engine.connect() as c:
        row = c.execute(select(Recommendation.__table__).where(Recommendation.external_id == external_id)).one()
    return Recommendation.model_validate(row._mapping)


def tags(engine, external_id: str) -> dict[str, list[str]]:
    r, t = Recommendation.__table__, RecommendationTag.__table__
    with engine.connect() as c:
        rows = c.execute(select(t.c.kind, t.c.value).join(r, r.c.id == t.c.recommendation_id)
                         .where(r.c.external_id == external_id).order_by(t.c.id)).all()
    found: dict[str, list[str]] = {}
    for kind, value in rows:
        found.setdefault(kind, []).append(value)
    return found


def history(engine, external_id: str) -> list[tuple]:
    r, h = Recommendation.__table__, StatusChange.__table__
    with engine.connect() as c:
        return [tuple(x) for x in c.execute(
            select(h.c.from_status, h.c.to_status, h.c.actor, h.c.reason, h.c.changes).join(r, r.c.id == h.c.recommendation_id)
            .where(r.c.external_id == external_id).order_by(h.c.id)
        ).all()]


# --- the business rules, without a database ----------------------------------------------------------


@pytest.mark.parametrize(("symbol", "expected"), [
    ("CCPR/C/KAZ/CO/2", ("CCPR/C/KAZ/CO/2", None)),
    ("CCPR/C/KAZ/CO/2, para. 24", ("CCPR/C/KAZ/CO/2", "24")),
    ("CAT/C/KAZ/CO/3 para 9", ("CAT/C/KAZ/CO/3", "9")),
    ("CAT/C/KAZ/CO/3 (para. 9 (b))", ("CAT/C/KAZ/CO/3", "9(b)")),
    ("A/HRC/44/10, paragraph 136.12", ("A/HRC/44/10", "136.12")),
    ("CAT/OP/KAZ/1 § 45", ("CAT/OP/KAZ/1", "45")),
])
def test_a_symbol_may_carry_its_paragraph(symbol, expected):
    assert split_symbol(symbol) == expected


def test_a_upr_text_starts_with_its_paragraph_and_ends_with_the_recommending_state():
    assert parse_upr_text("136.12 Ratify the Optional Protocol to the International Covenant on Civil and Political Rights (Norway);") == ("136.12", "Norway")
    assert parse_upr_text("136.45 Consider establishing (as recommended before) a national preventive mechanism (Chile, France).") == ("136.45", "Chile, France")
    assert parse_upr_text("Ensure independent investigations") == (None, None)


def test_external_ids_come_from_symbol_and_paragraph_only():
    assert derive_external_id("CCPR/C/KAZ/CO/2", "24") == "CCPR-C-KAZ-CO-2-24"
    assert derive_external_id("A/HRC/44/10", "136.12") == "A-HRC-44-10-136.12"
    assert derive_external_id("CAT/C/KAZ/CO/3", "9(b)") == "CAT-C-KAZ-CO-3-9b"
    assert derive_external_id(" ccpr/c/kaz/co/2 ", "24") == "CCPR-C-KAZ-CO-2-24"


def test_the_mechanism_decides_the_source():
    assert [source_of(committee_of(s)) for s in ("CCPR/C/KAZ/CO/2", "CAT/C/KAZ/CO/3", "CAT/OP/KAZ/1", "A/HRC/44/10")] == [
        "treaty_body", "treaty_body", "spt", "upr"]
    assert committee_of("A/HRC/44/10", "UPR") == "UPR" and source_of("Special Procedures".upper()) == "other"


def test_formats_are_told_apart_by_the_header():
    assert detect_format(["external_id", "text", "issued_on"]) == "followup"
    assert detect_format(["symbol", "text", "publicationdate", "body"]) == "uhri"
    assert detect_format(["recommendation", "response"]) == "upr"


def test_an_export_with_only_a_header_or_only_other_states_maps_to_nothing():
    import pandas as pd

    empty = pd.DataFrame(columns=["symbol", "text", "publicationdate", "countries"], dtype=str)
    mapped = to_project_frame(empty)
    assert (len(mapped.frame), mapped.skipped, mapped.errors) == (0, 0, [])
    other = pd.DataFrame([["CCPR/C/KGZ/CO/2, para. 12", "Investigate", "2014-04-23", "Kyrgyzstan"]],
                         columns=empty.columns, index=[2])
    mapped = to_project_frame(other)
    assert (len(mapped.frame), mapped.skipped) == (0, 1)


def test_uhri_lists_split_on_semicolons_never_on_commas():
    assert split_tags(f"{TORTURE}; Conditions of detention;\n{TORTURE}") == [TORTURE, "Conditions of detention"]
    assert is_kazakhstan("Kazakhstan") and is_kazakhstan("Kyrgyzstan; Kazakhstan") and not is_kazakhstan("Kyrgyzstan")


def test_tag_filters_match_words_and_sdg_numbers():
    assert parse_tag_filter("theme:torture") == ("theme", "torture")
    assert tag_matches("theme", TORTURE, "torture")
    assert tag_matches("sdg", "16.3 - Rule of law", "16") and tag_matches("sdg", "16 - Peace", "16")
    assert not tag_matches("sdg", "1 - No poverty", "16") and not tag_matches("sdg", "16 - Peace", "1")
    with pytest.raises(ValueError, match="theme, affected_persons, sdg"):
        parse_tag_filter("colour:red")


def test_the_first_triage_rule_that_matches_wins():
    rules = [
        TriageRule(ministry="foreign", keywords=["ratify"]),
        TriageRule(ministry="interior", themes=["torture"], affected_persons=["deprived of their liberty"]),
        TriageRule(ministry="health", keywords=["psychiatric"], sources=["npm_visit"]),
    ]
    found = suggest(text="Ratify the Optional Protocol", source="upr", tags={"theme": [TORTURE]}, rules=rules)
    assert (found.ministry, found.rule) == ("foreign", 0)
    found = suggest(text="psychiatric examination", source="treaty_body", tags={"theme": [TORTURE]}, rules=rules)
    assert (found.ministry, found.because) == ("interior", f"theme {TORTURE!r}")
    assert suggest(text="psychiatric examination", source="treaty_body", tags={}, rules=rules) is None  # rule limited to NPM


def test_a_triage_rule_may_go_by_the_facility_and_its_type():
    rules = [
        TriageRule(ministry="health", keywords=["psychiatric"]),
        TriageRule(ministry="defence", facility_types=["military_guardhouse"]),
        TriageRule(ministry="education", facilities=["спецшкола"]),
    ]
    found = suggest(text="Provide daylight in the cells", source="npm_visit", tags={}, rules=rules,
                    facility=GUARDHOUSE, facility_type="military_guardhouse")
    assert (found.ministry, found.rule, found.because) == ("defence", 1, "facility type 'military_guardhouse'")
    # the name as the search folds it: case, ё/е, Kazakh letters, punctuation
    found = suggest(text="Repair the showers", source="npm_visit", tags={}, rules=rules, facility="СПЕЦШКОЛА №2 г. Шымкент")
    assert (found.ministry, found.because) == ("education", "facility 'СПЕЦШКОЛА №2 г. Шымкент'")
    assert suggest(text="Repair the showers", source="npm_visit", tags={}, rules=rules, facility_type="prison") is None
    assert suggest(text="Repair the showers", source="npm_visit", tags={}, rules=rules) is None  # no facility, no match


def test_a_triage_rule_with_an_unknown_facility_type_names_file_and_key(tmp_path):
    path = tmp_path / "triage.yaml"
    path.write_text("rules:\n  - ministry: defence\n    facility_types: [guardhouse]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"triage.yaml: rules\[0\].facility_types\[0\]: .*'military_guardhouse'"):
        load_triage(path)
    path.write_text("rules:\n  - ministry: defence\n    facilities: ['№']\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"triage.yaml: rules\[0\]: .*facilities: an entry without a letter or digit"):
        load_triage(path)


def test_grades_keep_their_meaning_and_the_hrc_sub_grades():
    assert parse_grade(" b1 ") == "B1" and FOLLOW_UP_GRADES["A"] == "reply/action largely satisfactory"
    assert FOLLOW_UP_GRADES["E"].startswith("information or measures contrary")
    with pytest.raises(FollowUpError, match="A: reply/action largely satisfactory"):
        parse_grade("F")


def test_the_follow_up_term_is_per_committee():
    policy = load_policy()
    assert policy.follow_up.term_for("CCPR").after(date(2016, 8, 9)) == date(2018, 8, 9)
    assert policy.follow_up.term_for("CAT").after(date(2014, 12, 9)) == date(2015, 12, 9)


def test_a_triage_rule_for_an_unknown_ministry_names_file_and_key(tmp_path):
    path = tmp_path / "triage.yaml"
    path.write_text("rules:\n  - ministry: interior\n    themes: [Torture]\n  - ministry: finance\n    keywords: [budget]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"triage.yaml: rules\[1\].ministry: no such ministry 'finance'"):
        load_triage(path, ministry_codes={"interior", "health"})
    path.write_text("rules:\n  - ministry: interior\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"triage.yaml: rules\[0\]: .*give at least one of themes"):
        load_triage(path)
    assert load_triage()  # the shipped file is valid


# --- importing what the mechanisms publish -----------------------------------------------------------


@pytest.mark.usefixtures("db_url")
def test_the_office_imports_a_uhri_export_of_the_concluding_observations(engine, tmp_path):
    path = uhri_file(tmp_path, *CCPR_ROWS)
    result = run_cli("import", "recommendations", path)
    assert result.exit_code == 0, result.output
    assert "rows about other states left out" in result.output and "ignored columns: annotation" in result.output
    assert import_json(path) == {"created": 0, "updated": 0, "unchanged": 4, "rejected": 0, "skipped": 1}

    torture = rec(engine, "CCPR-C-KAZ-CO-2-24")
    assert (torture.source, torture.mechanism_ref, torture.issued_on, torture.status, torture.ministry_code) == (
        "treaty_body", "CCPR/C/KAZ/CO/2, para. 24", date(2016, 8, 9), "unassigned", None)
    assert torture.text == CCPR_ROWS[1][2]
    assert tags(engine, "CCPR-C-KAZ-CO-2-24") == {
        "theme": [TORTURE, "Conditions of detention"], "affected_persons": ["Persons deprived of their liberty"],
        "sdg": ["16 - Peace, justice and strong institutions"],
    }
    cat = rec(engine, "CAT-C-KAZ-CO-3-9")
    assert (cat.mechanism_ref, cat.issued_on, cat.follow_up) == ("CAT/C/KAZ/CO/3, para. 9", date(2014, 12, 9), False)
    assert tags(engine, "CAT-C-KAZ-CO-3-9")["affected_persons"] == ["Persons with disabilities", "Persons deprived of their liberty"]
    with pytest.raises(NoResultFound):
        rec(engine, "CCPR-C-KGZ-CO-2-12")  # another state's

    # a newer export of the same document: the texts and themes are updated, not duplicated
    rows = [list(r) for r in CCPR_ROWS]
    rows[1][5] = TORTURE
    rows[2][2] = rows[2][2].replace("article 22", "articles 21 and 22")
    assert import_json(uhri_file(tmp_path, *rows, name="uhri-2.csv")) == {
        "created": 0, "updated": 2, "unchanged": 2, "rejected": 0, "skipped": 1}
    assert tags(engine, "CCPR-C-KAZ-CO-2-24")["theme"] == [TORTURE]
    changes = history(engine, "CCPR-C-KAZ-CO-2-24")[-1]
    assert changes[2] == "test-clerk" and changes[4] == {"themes": [f"{TORTURE}; Conditions of detention", TORTURE]}
    assert "articles 21 and 22" in rec(engine, "CCPR-C-KAZ-CO-2-50").text


@pytest.mark.usefixtures("db_url")
def test_the_upr_matrix_keeps_the_recommending_state_and_the_response(engine, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["Recommendation", "Response", "Themes", "Affected persons"])
    sheet.append(["136.12 Ratify the Optional Protocol to the International Covenant on Civil and Political Rights (Norway);",
                  "Supported", "International instruments", ""])
    sheet.append(["136.45 Ensure that all places of deprivation of liberty are visited by the national preventive mechanism "
                  "without prior notice (Denmark);", "Noted", TORTURE, "Persons deprived of their liberty"])
    path = tmp_path / "upr-matrix.xlsx"
    book.save(path)
    counts = import_json(path, "--symbol", "A/HRC/44/10", "--issued-on", "13.03.2020")
    assert counts == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 0, "skipped": 0}
    first = rec(engine, "A-HRC-44-10-136.12")
    assert (first.source, first.mechanism_ref, first.recommending_state, first.response, first.issued_on) == (
        "upr", "A/HRC/44/10, para. 136.12", "Norway", "supported", date(2020, 3, 13))
    assert (rec(engine, "A-HRC-44-10-136.45").recommending_state, rec(engine, "A-HRC-44-10-136.45").response) == ("Denmark", "noted")
    # without the symbol the matrix cannot be placed: one sentence, nothing written
    result = run_cli("import", "recommendations", path)
    assert result.exit_code == 2 and "missing columns Symbol (or --symbol), PublicationDate (or --issued-on)" in result.output


@pytest.mark.usefixtures("db_url")
def test_a_bad_uhri_row_names_file_row_and_column_and_nothing_is_written(engine, tmp_path):
    rows = [list(r) for r in CCPR_ROWS]
    rows[0][3] = "31.02.2016"  # row 2
    rows[2][1] = ""  # row 4: no paragraph anywhere
    result = run_cli("import", "recommendations", uhri_file(tmp_path, *rows))
    assert result.exit_code == 1
    assert "uhri-kaz.csv: 2 bad rows, nothing was written" in result.output
    assert "row 2: publicationdate: impossible date '31.02.2016'" in result.output
    assert "row 4: paragraph: no paragraph number" in result.output
    with engine.connect() as c:
        assert c.execute(select(Recommendation.id)).first() is None


# --- triage ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("db_url")
def test_unassigned_recommendations_are_triaged_by_hand_and_by_rules(engine, tmp_path):
    import_json(uhri_file(tmp_path, *CCPR_ROWS))
    # the digest lists what still has no owner, with the committee's document
    queue = build_digest(engine, date(2026, 11, 23)).section("unassigned")
    assert sorted(zip(queue["external_id"], queue["mechanism_ref"], strict=True)) == [
        ("CAT-C-KAZ-CO-3-9", "CAT/C/KAZ/CO/3, para. 9"), ("CCPR-C-KAZ-CO-2-24", "CCPR/C/KAZ/CO/2, para. 24"),
        ("CCPR-C-KAZ-CO-2-50", "CCPR/C/KAZ/CO/2, para. 50"), ("CCPR-C-KAZ-CO-2-8", "CCPR/C/KAZ/CO/2, para. 8"),
    ]
    assert set(queue["source"]) == {"treaty_body"}

    # Zhanaozen goes to the Prosecutor General's Office, by hand
    result = run_cli("assign", "CCPR-C-KAZ-CO-2-8", "Генпрокуратура")
    assert result.exit_code == 0, result.output
    assert "assigned to prosecutor" in result.output
    item = rec(engine, "CCPR-C-KAZ-CO-2-8")
    assert (item.ministry_code, item.status) == ("prosecutor", "issued")
    assert [(h[0], h[1], h[2], h[4]) for h in history(engine, "CCPR-C-KAZ-CO-2-8")[-2:]] == [
        ("unassigned", "unassigned", "test-clerk", {"ministry_code": [None, "prosecutor"]}),
        ("unassigned", "issued", "test-clerk", None),
    ]
    missing = run_cli("assign", "CCPR-C-KAZ-CO-2-99", "interior")
    assert missing.exit_code == 2 and "no recommendation 'CCPR-C-KAZ-CO-2-99'" in missing.output
    assert "unknown ministry 'Минфин'" in run_cli("assign", "CCPR-C-KAZ-CO-2-24", "Минфин").output

    # the rules: a dry run shows what would be assigned and writes nothing
    before = history(engine, "CCPR-C-KAZ-CO-2-24")
    dry = run_cli("triage", "--apply", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would assign 2; 1 left for the office" in dry.output and "interior" in dry.output
    assert history(engine, "CCPR-C-KAZ-CO-2-24") == before
    done = run_cli("triage", "--apply")
    assert "assigned 2; 1 left" in done.output
    assert rec(engine, "CCPR-C-KAZ-CO-2-24").ministry_code == "interior"  # theme Torture
    assert rec(engine, "CAT-C-KAZ-CO-3-9").ministry_code == "interior"  # Torture before psychiatric: the first rule wins
    assert history(engine, "CCPR-C-KAZ-CO-2-24")[-1][3] == "assigned by the triage rules"
    # freedom of association: no rule settles it; it stays in the queue and in the digest
    assert list(build_digest(engine, date(2026, 11, 23)).section("unassigned")["external_id"]) == ["CCPR-C-KAZ-CO-2-50"]
    listing = run_cli("triage")
    assert "1 recommendations without a ministry" in listing.output and "CCPR/C/KAZ/CO/2, para. 50" in listing.output
    # in an 80-column terminal the number stays whole (the text is what folds)
    from typer.testing import CliRunner

    from followup.interfaces.cli import app

    narrow = CliRunner().invoke(app, ["triage"], env={"COLUMNS": "80"})
    assert "CCPR-C-KAZ-CO-2-50" in narrow.output and max(map(len, narrow.output.splitlines())) <= 80


def unassigned_npm_item(engine, external_id: str, text: str, facility: str, facility_type: str | None) -> None:
    """An NPM recommendation that came without a responsible ministry, from a facility of that type."""
    with session_scope(engine) as session:
        place = Facility(name=facility, facility_type=facility_type, region="Алматы")
        session.add(place)
        session.flush()
        session.add(Recommendation(external_id=external_id, text=text, issued_on=date(2026, 2, 2), status=Status.UNASSIGNED.value,
                                   facility_id=place.id))


@pytest.mark.usefixtures("db_url")
def test_the_triage_rules_settle_a_guardhouse_by_its_type(engine):
    unassigned_npm_item(engine, "NPM-G-1", "Обеспечить камеры естественным освещением", GUARDHOUSE, "military_guardhouse")
    listing = run_cli("triage")
    assert listing.exit_code == 0, listing.output
    assert GUARDHOUSE in listing.output and "(military_guardhouse)" in listing.output
    assert "defence" in listing.output and "facility type 'military_guardhouse'" in listing.output  # the shipped rule
    done = run_cli("triage", "--apply")
    assert "assigned 1; 0 left" in done.output, done.output
    item = rec(engine, "NPM-G-1")
    assert (item.ministry_code, item.status) == ("defence", "issued")
    assert history(engine, "NPM-G-1")[-1][3] == "assigned by the triage rules"


# --- the follow-up procedure -------------------------------------------------------------------------


@pytest.mark.usefixtures("db_url")
def test_a_follow_up_round_from_selection_to_grade(engine, tmp_path):
    # the export marks the three paragraphs the Human Rights Committee selected (FollowUp = yes)
    import_json(uhri_file(tmp_path, *CCPR_ROWS))
    torture = rec(engine, "CCPR-C-KAZ-CO-2-24")
    assert (torture.follow_up, torture.due_on) == (True, date(2018, 8, 9))  # CCPR: two years
    # the Committee against Torture's selection is recorded by hand: one year
    selected = run_cli("follow-up", "select", "CAT-C-KAZ-CO-3-9")
    assert "CAT-C-KAZ-CO-3-9: follow-up report due 09.12.2015" in selected.output
    assert "nothing changed" in run_cli("follow-up", "select", "CAT-C-KAZ-CO-3-9").output
    assert run_cli("follow-up", "select", "A-HRC-44-10-1").exit_code == 2

    # assigned to the Ministry of Internal Affairs, which is reminded to prepare the reply
    run_cli("assign", "CCPR-C-KAZ-CO-2-24", "interior")
    check_deadlines(date(2018, 8, 9) - timedelta(days=14), engine=engine)
    letters = [n for n in notifications(engine) if n.kind == "reminder"]
    assert [n.recipient for n in letters] == ["ministry:interior"]
    assert "CCPR-C-KAZ-CO-2-24" in letters[0].body_text and "CCPR-C-KAZ-CO-2-8" not in letters[0].body_text  # unassigned

    # round 1: partially satisfactory, further information requested; round 2: largely satisfactory
    first = run_cli("grade", "CCPR-C-KAZ-CO-2-24", "B", "--round", "1", "--on", "2019-04-05", "--document", "CCPR/C/125/2",
                    "--note", "additional information requested on the independent investigation body", "--next-due", "2020-04-05")
    assert first.exit_code == 0, first.output
    assert "round 1 grade B (reply/action partially satisfactory) recorded" in first.output
    item = rec(engine, "CCPR-C-KAZ-CO-2-24")
    assert (item.grade, item.due_on) == ("B", date(2020, 4, 5))
    assert "already recorded" in run_cli("grade", "CCPR-C-KAZ-CO-2-24", "b", "--round", "1", "--on", "2019-04-05").output
    refused = run_cli("grade", "CCPR-C-KAZ-CO-2-24", "A", "--round", "1")
    assert refused.exit_code == 2 and "round 1 was graded B on 05.04.2019; a new assessment is round 2" in refused.output
    run_cli("grade", "CCPR-C-KAZ-CO-2-24", "A", "--round", "2", "--on", "2021-03-26", "--document", "CCPR/C/131/2")
    assert rec(engine, "CCPR-C-KAZ-CO-2-24").grade == "A"
    with engine.connect() as c:
        rounds = c.execute(select(FollowUpGrade.round, FollowUpGrade.grade, FollowUpGrade.document, FollowUpGrade.actor)
                           .order_by(FollowUpGrade.round)).all()
    assert [tuple(r) for r in rounds] == [(1, "B", "CCPR/C/125/2", "test-clerk"), (2, "A", "CCPR/C/131/2", "test-clerk")]
    last = history(engine, "CCPR-C-KAZ-CO-2-24")[-1]
    assert last[3].startswith("CCPR follow-up round 2: grade A (reply/action largely satisfactory), 26.03.2021, CCPR/C/131/2")
    assert last[4] == {"grade": ["B", "A"], "follow_up_round": [None, 2]}
    shown = run_cli("history", "CCPR-C-KAZ-CO-2-24").output
    assert "follow-up procedure" in shown and "partially satisfactory" in shown and "CCPR/C/125/2" in shown
    # an item the committee did not select has no grade to record
    not_selected = run_cli("grade", "A-HRC-44-10-1", "A")
    assert not_selected.exit_code == 2
    listing = run_cli("follow-up", "list").output
    assert "CCPR-C-KAZ-CO-2-24" in listing and "CAT-C-KAZ-CO-3-9" in listing


# --- tags as filters ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("db_url")
def test_export_and_annual_report_filter_by_tag(engine, tmp_path):
    import_json(uhri_file(tmp_path, *CCPR_ROWS))
    result = run_cli("export", "recommendations", tmp_path / "torture.csv", "--tag", "theme:torture")
    assert result.exit_code == 0 and "exported 2 recommendations" in result.output
    rows = list(csv.DictReader(io.StringIO((tmp_path / "torture.csv").read_bytes().decode("utf-8-sig"))))
    assert [r["external_id"] for r in rows] == ["CAT-C-KAZ-CO-3-9", "CCPR-C-KAZ-CO-2-24"]
    assert rows[1]["themes"] == f"{TORTURE}; Conditions of detention" and rows[1]["follow_up"] == "yes"
    # several filters must all hold
    both = run_cli("export", "recommendations", tmp_path / "b.csv", "--tag", "theme:torture", "--tag", "affected_persons:disabilities")
    assert "exported 1 recommendations" in both.output
    assert "exported 3 recommendations" in run_cli("export", "recommendations", tmp_path / "s.csv", "--tag", "sdg:16").output
    bad = run_cli("export", "recommendations", tmp_path / "x.csv", "--tag", "colour:red")
    assert bad.exit_code == 2 and "KIND:VALUE" in bad.output
    # the exported file re-imports unchanged
    assert import_json(tmp_path / "torture.csv") == {"created": 0, "updated": 0, "unchanged": 2, "rejected": 0}
    # the annual report of 2016 about torture only
    report = compute(read_year(engine, 2016, tags=["theme:torture"]))
    assert report.headline["issued"] == 1
    assert compute(read_year(engine, 2016)).headline["issued"] == 3
