"""Getting recommendations and ministries' replies into the registry.

The whole file is validated first (pandas, column by column, a slice of rows at a time); only
a file with no bad row is written, in one transaction, in a handful of set-based statements
per slice (`import_recommendations` says why it reads a CSV twice). A re-import
of the same file changes nothing; a changed row updates the recommendation and its history
says what changed, who imported it and from which file.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from enum import Enum
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
from sqlalchemy import Column, Connection, Engine, String, bindparam, insert, select, update
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session

from followup.config.loader import normalize_name
from followup.config.settings import get_settings
from followup.models.dates import as_date
from followup.models.db import bulk_insert, get_engine, one_of, text_index_in_one_pass, tuples
from followup.models.domain import FacilityType, Grade, Priority, ReplyChannel, Source, Status
from followup.models.international import (
    FOLLOWUP,
    TAG_COLUMNS,
    detect_format,
    join_tags,
    parse_response,
    parse_yes_no,
    split_tags,
    to_project_frame,
)
from followup.models.policy import CLOCK_MARKS, REPLY_STATUSES
from followup.models.procedure import follow_up_due
from followup.models.registry import (
    Facility,
    Ministry,
    Recommendation,
    RecommendationTag,
    StatusChange,
    Visit,
    table_of,
)
from followup.models.search import fold
from followup.models.transitions import (
    TransitionRequest,
    illegal_move,
    path_between,
    record_edits,
    transition_many,
)
from followup.models.types import utcnow
from followup.spreadsheets.tabular import (
    ImportFileError,
    ImportRejected,
    RowError,
    parse_days,
    read_slices,
    read_table,
    some_of,
    write_table,
)

if TYPE_CHECKING:  # loaded when an import needs it (_policy)
    from followup.config.policy import Policy

REQUIRED = ("external_id", "text", "issued_on")
OPTIONAL = (
    "due_on", "ministry", "facility", "facility_type", "region", "category",
    "source", "mechanism_ref", "priority", "visit_id",
)
#: written by `followup export` so that an export re-imports unchanged
EXPORTED = ("status", "grade", "updated_at")
#: what UN mechanisms' recommendations carry besides (README, "International recommendations"):
#: tags separated by `;`, the UPR's recommending state and response, the treaty body's follow-up selection
INTERNATIONAL = ("themes", "affected_persons", "sdgs", "recommending_state", "response", "follow_up")
#: written by `--quarantine` next to each rejected row; ignored on import, so that the clerk
#: can correct the quarantine file and import it as it is
QUARANTINE_NOTE = "error"
EXPORT_COLUMNS = REQUIRED + OPTIONAL + EXPORTED + INTERNATIONAL
COLUMNS = EXPORT_COLUMNS + (QUARANTINE_NOTE,)

RESPONSE_REQUIRED = ("external_id", "status", "responded_on")
RESPONSE_COLUMNS = RESPONSE_REQUIRED + ("note", "evidence")

#: registry fields an import compares and may update (file column -> table column)
COMPARED = {
    "text": "text", "issued_on": "issued_on", "due_on": "due_on", "ministry": "ministry_code",
    "facility": "facility_id", "category": "category", "source": "source",
    "mechanism_ref": "mechanism_ref", "priority": "priority", "visit_id": "visit_id", "grade": "grade",
    "recommending_state": "recommending_state", "response": "response", "follow_up": "follow_up",
}
CHUNK = 20_000  # rows per statement batch: bounds memory on 500,000-row files

#: per file row whose tags changed: {tag column: [old "a; b", new]} (None for no tags)
TagChanges = dict[Hashable, dict[str, list[str | None]]]
_T = TypeVar("_T")


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list, repr=False)
    dry_run: bool = False
    #: the file's shape: followup (the project's columns), uhri or upr
    format: str = FOLLOWUP
    #: rows of a UHRI export about other states, left out
    skipped: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    #: the replies a response file recorded, one per ministry (REPLY-<id>); not among the counts
    replies: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        keys = ("created", "updated", "unchanged", "rejected") + (("skipped",) if self.format != FOLLOWUP else ())
        return {k: v for k, v in asdict(self).items() if k in keys}


def default_actor() -> str:
    """Who the history names for a command-line action: FOLLOWUP_ACTOR, else the OS user."""
    actor = get_settings().actor
    if actor:
        return actor
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return "followup"


# --- validation: pure functions over frames --------------------------------------------------


def check_columns(frame: pd.DataFrame, path: Path, *, allowed_columns: tuple[str, ...], required: tuple[str, ...]) -> None:
    known = set(allowed_columns)
    unknown = [c for c in frame.columns if c not in known]
    if unknown:
        raise ImportFileError(
            f"{path.name}: {f'{len(unknown):,} unknown columns' if len(unknown) > 1 else 'unknown column'} {some_of(unknown)}; "
            f"known columns: {', '.join(allowed_columns)}"
        )
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ImportFileError(f"{path.name}: missing required column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")


def _errors_where(mask: pd.Series, field_name: str, problem: pd.Series | str | Callable[[Any], str], values: pd.Series | None = None) -> list[RowError]:
    """One RowError per row where `mask` holds; `problem` is a text, a text per row, or a
    function of the row's value in `values` (called for the bad rows only: a 500,000-row
    file should not format 500,000 messages to report three)."""
    rows = mask[mask].index
    if isinstance(problem, str):
        return [RowError(int(r), field_name, problem) for r in rows]
    if callable(problem):
        assert values is not None
        return [RowError(int(r), field_name, problem(values.loc[r])) for r in rows]
    return [RowError(int(r), field_name, str(problem.loc[r])) for r in rows]


def _enum_column(frame: pd.DataFrame, name: str, values: type[Enum], default: str | None, *, upper: bool = False) -> tuple[pd.Series, list[RowError]]:
    # each distinct text normalized once and shared: 500,000 lower-cased copies of "npm_visit"
    # cost 30 MB and nothing else
    forms = {v: (v.strip().upper() if upper else v.strip().lower()) for v in frame[name].unique()}
    raw = frame[name].map(forms)
    known = {v.value for v in values}
    bad = (raw != "") & ~raw.isin(known)
    cleaned = raw.where(raw != "", default)
    return cleaned, _errors_where(bad, name, lambda v: f"unknown value {v!r} (known: {', '.join(sorted(known))})", raw)


def _parsed_column(values: pd.Series, name: str, parse: Callable[[str], Any]) -> tuple[pd.Series, list[RowError]]:
    """Parse each distinct text once; (values or None, an error per row whose text does not parse)."""
    parsed: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for text in values.unique():
        try:
            result = parse(text)
            parsed[text] = None if result is None else (result.value if hasattr(result, "value") else result)
        except ValueError as exc:
            parsed[text] = None
            problems[text] = str(exc)
    bad = values.isin(list(problems))
    return values.map(parsed), _errors_where(bad, name, lambda v: problems[v], values)


def ministry_lookup(ministries: list[Ministry]) -> dict[str, str]:
    """Every way a file may name a ministry (code, names, aliases), normalized -> code."""
    lookup: dict[str, str] = {}
    for m in ministries:
        for label in [m.code, m.name_kk, m.name_ru, m.name_en, *m.aliases]:
            lookup[normalize_name(label)] = m.code
    return lookup


def duplicate_errors(keys: pd.Series, field_name: str, seen: dict[str, int] | None = None) -> list[RowError]:
    """An error for every row whose key an earlier row has (empty keys are not compared).

    `seen` (key -> first row) carries the keys of the file's earlier slices, so that a file read
    a slice at a time is checked as a whole; it is filled with this slice's first rows. Given
    the whole file's keys already, it finds the same rows again.
    """
    seen = {} if seen is None else seen
    errors = []
    for row, key in zip(keys.index.tolist(), keys.tolist(), strict=True):
        if key == "":
            continue
        first = seen.setdefault(key, row)
        if first != row:
            errors.append(RowError(int(row), field_name, f"{key!r} is also on row {first}"))
    return errors


def validate_recommendations(frame: pd.DataFrame, *, ministries: dict[str, str],
                             seen: dict[str, int] | None = None) -> tuple[pd.DataFrame, list[RowError]]:
    """Check every rule that needs only the file; returns typed columns and every bad row.

    `frame` may be a slice of the file: `seen` then carries the external ids of the slices
    before it (`duplicate_errors`)."""
    errors: list[RowError] = []
    out = pd.DataFrame(index=frame.index)
    out["external_id"] = frame["external_id"].str.strip()
    errors += _errors_where(out["external_id"] == "", "external_id", "empty")
    errors += duplicate_errors(out["external_id"], "external_id", seen)
    out["text"] = frame["text"]  # kept byte for byte
    errors += _errors_where(frame["text"].str.strip() == "", "text", "empty")
    issued, problems = parse_days(frame["issued_on"])
    errors += _errors_where(frame["issued_on"].str.strip() == "", "issued_on", "empty")
    errors += _errors_where(problems != "", "issued_on", problems)
    out["issued_on"] = issued
    if "due_on" in frame:
        due, problems = parse_days(frame["due_on"].str.strip())
        errors += _errors_where(problems != "", "due_on", problems)
        before = due.notna() & issued.notna()
        before[before] = due[before] < issued[before]
        # the message for the bad rows only: one per row of the file was 200 MB at 1,000,000 rows
        errors += _errors_where(
            before, "due_on",
            lambda row: f"{frame.at[row, 'due_on'].strip()} is before the issue date {frame.at[row, 'issued_on'].strip()}",
            pd.Series(frame.index, index=frame.index),
        )
        out["due_on"] = due
    if "ministry" in frame:
        names = frame["ministry"].str.strip()
        codes = names.map({v: ministries.get(normalize_name(v)) for v in names.unique() if v})
        examples = ", ".join(sorted(set(ministries.values()))[:4])
        errors += _errors_where(
            (names != "") & codes.isna(), "ministry",
            lambda v: f"unknown ministry {v!r} (a code such as {examples}…, a name or an alias from config/ministries.yaml)", names,
        )
        out["ministry"] = codes
    for name, values, default in (
        ("source", Source, Source.NPM_VISIT.value),
        ("priority", Priority, Priority.NORMAL.value),
        ("facility_type", FacilityType, None),
        ("status", Status, None),
    ):
        if name in frame:
            out[name], found = _enum_column(frame, name, values, default)
            errors += found
    if "grade" in frame:
        out["grade"], found = _enum_column(frame, "grade", Grade, None, upper=True)
        errors += found
    if "response" in frame:
        out["response"], found = _parsed_column(frame["response"], "response", lambda v: parse_response(v))
        errors += found
    if "follow_up" in frame:
        out["follow_up"], found = _parsed_column(frame["follow_up"], "follow_up", parse_yes_no)
        errors += found
    for name in TAG_COLUMNS:
        if name in frame:  # one spelling of a tag list: "a; b", each value once
            out[name] = frame[name].map({v: join_tags(split_tags(v)) for v in frame[name].unique()})
    for name in ("facility", "region", "category", "mechanism_ref", "visit_id", "recommending_state"):
        if name in frame:
            stripped = frame[name].str.strip()
            out[name] = stripped.where(stripped != "", None)
    # PostgreSQL refuses a value longer than its column (SQLite stores it): refuse it here, by row
    for name, column in (
        ("external_id", table_of(Recommendation).c.external_id), ("facility", table_of(Facility).c.name),
        ("region", table_of(Facility).c.region), ("category", table_of(Recommendation).c.category),
        ("mechanism_ref", table_of(Recommendation).c.mechanism_ref), ("visit_id", table_of(Visit).c.external_id),
        ("recommending_state", table_of(Recommendation).c.recommending_state),
    ):
        if name in out:
            limit = _max_length(column)
            errors += _errors_where(out[name].str.len().fillna(0) > limit, name, f"longer than {limit} characters")
    if "facility" not in frame:
        for name in ("facility_type", "region"):
            if name in frame:
                errors += _errors_where(out[name].notna(), name, "given without a facility column")
    errors.sort(key=lambda e: (e.row, COLUMNS.index(e.field) if e.field in COLUMNS else 99))
    # one representation of "no value" downstream: None in object columns (never NaN)
    out = out.astype(object)
    return out.where(out.notna(), None), errors


def _max_length(column: Column[Any]) -> int:
    """The declared length of a VARCHAR(n) column (SQLModel's AutoString wraps a String)."""
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    if not isinstance(kind, String) or kind.length is None:
        raise TypeError(f"{column} has no declared length")
    return kind.length


# --- writing: set-based, in the caller's transaction ----------------------------------------


def _chunks(items: list[_T], size: int = CHUNK) -> Iterator[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class _Named:
    """What the write needs from the whole file before its first row, gathered from the good rows
    slice by slice: the first row naming each facility and the earliest row of each visit."""

    #: normalized name -> (name, facility_type, region, ministry) of the first row naming it
    facilities: dict[str, tuple[str, Any, Any, Any]] = field(default_factory=dict)
    #: visit_id -> (issued_on, row, facility name) of its earliest row (the first of equals)
    visits: dict[str, tuple[date, int, str | None]] = field(default_factory=dict)

    def add(self, good: pd.DataFrame) -> None:
        if "facility" in good:
            named = good[good["facility"].notna()]
            norms = {n: normalize_name(n) for n in named["facility"].unique()}
            firsts = named.assign(name_key=named["facility"].map(norms)).drop_duplicates("name_key")
            for key, name, kind, region, ministry in zip(
                firsts["name_key"], firsts["facility"], *(firsts[c] if c in firsts else [None] * len(firsts) for c in ("facility_type", "region", "ministry")),
                strict=True,
            ):
                self.facilities.setdefault(key, (name, kind, region, ministry))
        if "visit_id" in good:
            dated = good[good["visit_id"].notna()]
            earliest = dated.sort_values("issued_on", kind="stable").drop_duplicates("visit_id")
            facilities = earliest["facility"] if "facility" in earliest else [None] * len(earliest)
            for row, key, day, facility in zip(earliest.index.tolist(), earliest["visit_id"], earliest["issued_on"], facilities, strict=True):
                if key not in self.visits or day < self.visits[key][0]:
                    self.visits[key] = (day, row, facility)


def _resolve_facilities(session: Session, firsts: dict[str, tuple[str, Any, Any, Any]]) -> dict[str, int]:
    """Facility ids by normalized name, creating the file's unknown facilities (with the type,
    region and ministry of the first row naming each)."""
    facilities = table_of(Facility)
    known = {normalize_name(name): fid for fid, name in session.connection().execute(select(facilities.c.id, facilities.c.name)).all()}
    rows = [
        {"name": name, "facility_type": kind, "region": region, "ministry_code": ministry}
        for key, (name, kind, region, ministry) in firsts.items()
        if key not in known
    ]
    if rows:
        result = session.connection().execute(insert(facilities).returning(facilities.c.id, facilities.c.name, sort_by_parameter_order=True), rows)
        known.update({normalize_name(name): fid for fid, name in result.all()})
    return known


def _resolve_visits(session: Session, earliest: dict[str, tuple[date, int, str | None]], facility_ids: dict[str, int]) -> dict[str, int]:
    """Visit ids for the file's visit_id values; an unknown visit is created, dated by its earliest item."""
    known: dict[str, int] = {}
    visits = table_of(Visit)
    for chunk in _chunks(list(earliest)):
        found = session.connection().execute(select(visits.c.id, visits.c.external_id).where(one_of(session.connection(), visits.c.external_id, chunk)))
        known.update({k: i for i, k in found.all()})
    new = sorted((k for k in earliest if k not in known), key=lambda k: earliest[k][:2])
    if new:
        rows = [
            {
                "external_id": key,
                "visited_on": earliest[key][0],
                "kind": "planned",
                "facility_id": facility_ids.get(normalize_name(earliest[key][2] or "")) if earliest[key][2] else None,
                "team": None,
            }
            for key in new
        ]
        result = session.connection().execute(insert(visits).returning(visits.c.id, visits.c.external_id, sort_by_parameter_order=True), rows)
        known.update({k: i for i, k in result.all()})
    return known


def _existing(session: Session, external_ids: list[str], *, compared: bool = True) -> pd.DataFrame:
    """The registry's current values for the file's external ids (only those that exist).

    With `compared=False` only id and status: what validation needs, without holding the texts
    (an import reads them a slice of its file at a time, to compare).
    """
    table = table_of(Recommendation)
    columns = [table.c.id, table.c.external_id, table.c.status]
    if compared:
        columns += [table.c[c] for c in COMPARED.values()]
    parts = [
        pd.DataFrame(tuples(session.connection().execute(select(*columns).where(one_of(session.connection(), table.c.external_id, chunk)))), columns=[c.name for c in columns])
        for chunk in _chunks(external_ids)
    ]
    frame = pd.concat(parts) if parts else pd.DataFrame(columns=[c.name for c in columns])
    return frame.set_index("external_id")


def _same(a: Any, b: Any) -> bool:
    a = None if a is None or (isinstance(a, float) and pd.isna(a)) else a
    b = None if b is None or (isinstance(b, float) and pd.isna(b)) else b
    if isinstance(a, datetime):
        a = a.date()
    if isinstance(b, datetime):
        b = b.date()
    return bool(a == b)


def _display(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def import_recommendations(
    path: Path,
    *,
    engine: Engine | None = None,
    actor: str | None = None,
    dry_run: bool = False,
    quarantine: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    symbol: str | None = None,
    issued_on: str | None = None,
) -> ImportResult:
    """Import a .csv or .xlsx of recommendations: all of it, or (with errors) nothing.

    The file is the project's own columns, a Universal Human Rights Index export or a UPR
    matrix, told apart by its header (`models.international`); `symbol` and `issued_on` fill in
    a UPR matrix without those columns. With `quarantine`, bad rows are written to that file
    with their problems and the good rows are imported. Raises ImportFileError for a file that
    is not a usable table, ImportRejected for bad rows.

    The file is read twice, a slice at a time (`read_slices`), so that its texts are never all
    in memory at once: the first pass checks every slice and keeps only what the whole file's
    rules need (each external id's first row, for duplicates; the facilities and visits to
    create; the bad rows); the second checks each slice again, by the same functions, and writes
    it. A file read in one slice (an XLSX, a small CSV) is read once. The whole import is one
    transaction: a file that changed between the two readings is refused, nothing written.
    """
    path = Path(path)
    engine = engine or get_engine()
    actor = actor or default_actor()
    step = progress or (lambda *_: None)
    step("reading", 0, 1)
    reading = read_slices(path)
    # a file that is not a usable table is refused before the registry is opened
    slices: Iterator[pd.DataFrame] = chain([next(reading)], reading)
    with Session(engine) as session, session.begin():
        check = _SliceCheck(session, path, ministries=ministry_lookup(list(session.scalars(select(Ministry)))), symbol=symbol, issued_on=issued_on)
        # pass 1: the errors in the order the whole file was checked in (its own rules, then
        # follow-up deadlines, then statuses), the bad rows as read for a quarantine
        errors: list[RowError] = []
        late: list[RowError] = []
        moves: list[RowError] = []
        bad: set[int] = set()
        rejected: list[pd.DataFrame] = []
        named = _Named()
        first: pd.DataFrame | None = None
        count = good_rows = 0
        for raw in slices:
            checked = check(raw)
            count += 1
            first = raw if count == 1 else None
            errors += checked.errors
            late += checked.late
            moves += checked.moves
            rows = checked.bad_rows()
            if rows:
                bad |= rows
                if quarantine is not None:
                    rejected.append(raw.loc[sorted(rows)])
            good = checked.good(rows)
            named.add(good)
            good_rows += len(good)
        del slices, raw, checked, good
        step("reading", 1, 1)
        found = errors + late + moves
        if bad and quarantine is None:
            raise ImportRejected(path, found)
        result = ImportResult(rejected=len(bad), errors=[str(e) for e in found], dry_run=dry_run, format=check.format,
                              skipped=check.skipped, ignored_columns=check.ignored_columns)
        if good_rows:
            # pass 2: the file's one slice again, or the file read again
            again = check.again([first] if first is not None else read_slices(path))
            _write(session, path, again, bad, named, result, rows=good_rows, actor=actor, reason=f"import of {path.name}", step=step)
            if check.rereads_changed() or check.bad != bad:
                raise _changed(path)
        if bad and not dry_run and quarantine is not None:
            _write_quarantine(pd.concat(rejected), found, quarantine)
        if dry_run:
            session.rollback()
    return result


@dataclass
class _Checked:
    """One slice of the file, checked."""

    frame: pd.DataFrame  # typed columns, bad rows included
    errors: list[RowError]  # the file's own rules (`validate_recommendations`, a UN format's mapping)
    late: list[RowError]  # follow-up deadlines
    moves: list[RowError]  # statuses the item cannot reach from where it stands
    #: the registry's items among the slice's (`_existing`): every compared column when the
    #: slice is to be written, else id and status, only when the file has a status column
    existing: pd.DataFrame | None

    def bad_rows(self) -> set[int]:
        return {e.row for e in self.errors} | {e.row for e in self.late} | {e.row for e in self.moves}

    def good(self, bad: set[int]) -> pd.DataFrame:
        """The typed rows that are not in `bad`."""
        if not bad:
            return self.frame
        return self.frame[[row not in bad for row in self.frame.index.tolist()]]


class _SliceCheck:
    """Every check of one slice of a recommendations file, called on each slice of both passes:
    the rules themselves are the functions it calls, once each. It carries what a slice's checks
    need from the slices before it: each external id's first row (duplicates)."""

    def __init__(self, session: Session, path: Path, *, ministries: dict[str, str], symbol: str | None, issued_on: str | None):
        self.session, self.path, self.ministries = session, path, ministries
        self.symbol, self.issued_on = symbol, issued_on
        self.seen: dict[str, int] = {}
        self.format = FOLLOWUP
        self.skipped = 0
        self.ignored_columns: list[str] = []
        self.bad: set[int] = set()  # the bad rows of the second pass
        self.writing = False  # the second pass
        self.rows = [0, 0]  # rows read by each pass
        self._keys = 0
        self._policy: Policy | None = None

    def __call__(self, raw: pd.DataFrame) -> _Checked:
        self.rows[self.writing] += len(raw)
        fmt = detect_format(list(raw.columns))
        mapped = None
        if fmt == FOLLOWUP:
            check_columns(raw, self.path, allowed_columns=COLUMNS, required=REQUIRED)
            table = raw
        else:
            try:
                mapped = to_project_frame(raw, symbol=self.symbol, issued_on=self.issued_on)
            except ValueError as exc:
                raise ImportFileError(f"{self.path.name}: {exc}") from None
            table = mapped.frame
        if not self.writing:
            self.format = fmt
            self.ignored_columns = mapped.ignored_columns if mapped else []
            self.skipped += mapped.skipped if mapped else 0
        frame, errors = validate_recommendations(table, ministries=self.ministries, seen=self.seen) if len(table.columns) else (table, [])
        if mapped is not None:
            # name the file's own columns in errors (PublicationDate, not issued_on)
            errors = [RowError(e.row, mapped.columns.get(e.field, e.field), e.problem) for e in errors]
            errors = sorted(errors + [RowError(r, f, p) for r, f, p in mapped.errors], key=lambda e: e.row)
        late: list[RowError] = []
        if len(frame):
            if self._policy is None:
                self._policy = _policy()
            frame, late = _follow_up_deadlines(frame, self._policy)
        existing = None
        if self.writing or "status" in frame:
            # what the registry holds of the slice's items: their status for the status rule, and
            # when the slice is written, what the file is compared with (one read for both)
            keys = frame["external_id"][frame["external_id"] != ""].unique().tolist() if len(frame) else []
            existing = _existing(self.session, keys, compared=self.writing)
        checked = _Checked(frame, errors, late, _status_errors(frame, existing) if existing is not None else [], existing)
        if self.writing:
            self.bad |= checked.bad_rows()
        return checked

    def again(self, slices: Iterable[pd.DataFrame]) -> Iterator[_Checked]:
        """The second pass: the file's slices again, checked again, to be written."""
        self._keys = len(self.seen)
        self.writing = True
        for raw in slices:
            yield self(raw)

    def rereads_changed(self) -> bool:
        """Whether the second pass read another number of rows, or an external id the first did not."""
        return self.writing and (self.rows[0] != self.rows[1] or len(self.seen) != self._keys)


def _policy() -> Policy:
    from followup.config.policy import load_policy

    return load_policy()


def _follow_up_deadlines(frame: pd.DataFrame, policy: Policy) -> tuple[pd.DataFrame, list[RowError]]:
    """A recommendation a treaty body selected for its follow-up procedure is due when the
    committee expects the state's follow-up report: issued_on + the committee's term in
    policy.yaml `follow_up` (CCPR two years, CAT one…). A deadline in the file wins."""
    if "follow_up" not in frame:
        return frame, []
    selected = frame["follow_up"].map(lambda v: v is True)
    if not selected.any():
        return frame, []
    source = frame["source"] if "source" in frame else pd.Series(Source.NPM_VISIT.value, index=frame.index)
    errors = _errors_where(
        selected & (source != Source.TREATY_BODY.value), "follow_up",
        lambda s: f"only treaty-body recommendations have a follow-up procedure (source is {s})", source,
    )
    due = frame["due_on"] if "due_on" in frame else pd.Series(None, index=frame.index, dtype=object)
    refs = frame["mechanism_ref"] if "mechanism_ref" in frame else pd.Series(None, index=frame.index, dtype=object)
    want = selected & (source == Source.TREATY_BODY.value) & due.isna() & frame["issued_on"].notna()
    if want.any():
        due = due.copy()
        due[want] = [follow_up_due(issued_on=day, mechanism_ref=ref, policy=policy) for ref, day in zip(refs[want], frame["issued_on"][want], strict=True)]
        frame = frame.assign(due_on=due)
    return frame, errors


def _status_errors(frame: pd.DataFrame, existing: pd.DataFrame) -> list[RowError]:
    """A status in the file must be reachable, through the transition table, from where the item stands."""
    if "status" not in frame:
        return []
    errors = []
    wanted = frame[frame["status"].notna()]
    for row, ext, status, ministry in zip(
        wanted.index, wanted["external_id"], wanted["status"],
        wanted["ministry"] if "ministry" in wanted else [None] * len(wanted),
        strict=True,
    ):
        if ext in existing.index:
            current = existing.at[ext, "status"]
        else:
            current = Status.ISSUED if ministry else Status.UNASSIGNED
        if status != current and path_between(current, status) is None:
            errors.append(RowError(int(row), "status", f"cannot go from {current} to {status}"))
    return errors


def _write_quarantine(raw: pd.DataFrame, errors: list[RowError], path: Path) -> None:
    """The rejected rows with the file's own columns plus `error`: correct them, import the file again."""
    problems: dict[int, list[str]] = {}
    for e in errors:
        problems.setdefault(e.row, []).append(str(e))
    rejected = raw.loc[sorted(problems)].copy()
    rejected[QUARANTINE_NOTE] = ["; ".join(problems[row]) for row in rejected.index]
    write_table(rejected, Path(path))


def _write(
    session: Session,
    path: Path,
    slices: Iterable[_Checked],
    bad: set[int],
    named: _Named,
    result: ImportResult,
    *,
    rows: int,
    actor: str,
    reason: str,
    step: Callable[[str, int, int], None],
) -> None:
    """Write the good rows of each checked slice: the new items created, the known ones compared
    and updated. Rows bad in either pass are left out (a difference refuses the file after)."""
    facility_ids = _resolve_facilities(session, named.facilities) if named.facilities else {}
    visit_ids = _resolve_visits(session, named.visits, facility_ids) if named.visits else {}
    now = utcnow()
    written = 0
    indexed = False

    def writing(phase: str, done: int, _total: int) -> None:
        step(phase, written + done, rows)

    with ExitStack() as indexing:
        for checked in slices:
            frame = checked.good(bad | checked.bad_rows())
            if not len(frame):
                continue
            assert checked.existing is not None  # read for the writing pass
            frame = frame.copy(deep=False)  # its columns are replaced, not changed in place
            if "facility" in frame:
                frame["facility"] = _ids(path, frame["facility"], facility_ids, normalize_name)
            if "visit_id" in frame:
                frame["visit_id"] = _ids(path, frame["visit_id"], visit_ids, str)
            is_new = ~frame["external_id"].isin(checked.existing.index)
            if is_new.any() and not indexed:
                # from the first new item on (a re-import that creates nothing changes no index)
                indexing.enter_context(text_index_in_one_pass(session.connection()))
                indexed = True
            _create(session, frame[is_new], result, actor=actor, reason=reason, now=now, step=writing)
            _update(session, frame[~is_new], checked.existing, result, actor=actor, reason=reason, now=now)
            written += len(frame)
            step("writing", written, rows)


def _ids(path: Path, values: pd.Series, ids: dict[str, int], key: Callable[[str], str]) -> pd.Series:
    """A column of names as the ids `ids` gives their `key` (None stays None). A name the first
    pass did not see can only come from a file changed since: the import stops there."""
    found = {}
    for value in values.dropna().unique():
        if key(value) not in ids:
            raise _changed(path)
        found[value] = ids[key(value)]
    return values.map(lambda v: found.get(v) if v else None)


def _changed(path: Path) -> ImportFileError:
    return ImportFileError(f"{path.name}: the file changed while it was being imported; nothing was written, import it again")


def _none(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA else value


def _column(values: pd.Series, *, integer: bool = False) -> list[Any]:
    """A frame column as the list a driver takes: None for every kind of missing value."""
    missing = pd.NA
    if integer:
        return [None if v is None or v is missing or v != v else int(v) for v in values.tolist()]
    return [None if v is None or v is missing or v != v else v for v in values.tolist()]


def _create(session: Session, new: pd.DataFrame, result: ImportResult, *, actor: str, reason: str, now: datetime,
                  step: Callable[[str, int, int], None]) -> None:
    table = table_of(Recommendation)
    columns = [c for c in COMPARED if c in new.columns]
    done = 0
    total = len(new)
    for start in range(0, total, CHUNK):
        part = new.iloc[start : start + CHUNK]
        n = len(part)
        ministry = part["ministry"] if "ministry" in part else pd.Series(None, index=part.index, dtype=object)
        initial = [Status.ISSUED.value if _none(m) is not None else Status.UNASSIGNED.value for m in ministry.tolist()]
        keys = part["external_id"].tolist()
        values: dict[str, list[Any]] = {"external_id": keys, "status": initial, "created_at": [now] * n, "updated_at": [now] * n}
        for name in columns:
            values[COMPARED[name]] = _column(part[name], integer=name in ("facility", "visit_id"))
        for name, default in (("source", Source.NPM_VISIT.value), ("priority", Priority.NORMAL.value)):
            values[name] = [v or default for v in values[name]] if name in values else [default] * n
        if "follow_up" in values:
            values["follow_up"] = [bool(v) for v in values["follow_up"]]
        values["search_text"] = [fold(t) for t in values.get("text", [None] * n)]  # what the full-text index holds
        if "text" in values:
            # the driver keeps the UTF-8 form of every text it binds inside the text object, for as
            # long as the text lives: a CSV slice's texts die with the slice, but a file read in one
            # slice (an XLSX) lives to the end of the import, so hand it copies that die with the chunk
            values["text"] = [None if t is None else t.encode().decode() for t in values["text"]]
        # a plain executemany, then the ids by external_id: RETURNING with parameter order
        # degrades to one statement per row on SQLite (4x slower on a 500,000-row file)
        connection = session.connection()
        bulk_insert(connection, table, values)
        id_of = dict(connection.execute(select(table.c.external_id, table.c.id).where(one_of(connection, table.c.external_id, keys))).all())
        ids = [id_of[k] for k in keys]
        _insert_tags(connection, ids, part)
        as_status = {s: Status(s) for s in set(initial)}
        requests = [TransitionRequest(i, None, as_status[s]) for i, s in zip(ids, initial, strict=True)]
        transition_many(session, requests, actor=actor, reason=f"created by {reason}", at=now)
        if "status" in part:
            _walk(session, zip(ids, initial, part["status"], part["external_id"], strict=True), actor=actor, reason=f"status given by {reason}", at=now)
        done += n
        step("writing", done, total)
    result.created += total


def _file_tags(rows: pd.DataFrame) -> dict[str, list[list[str]]]:
    """The file's tags per tag column present: file column -> a list of values per row."""
    return {name: [split_tags(v) if v else [] for v in rows[name].tolist()] for name in TAG_COLUMNS if name in rows}


def _insert_tags(connection: Connection, ids: list[int], rows: pd.DataFrame) -> None:
    columns: dict[str, list[Any]] = {"recommendation_id": [], "kind": [], "value": []}
    for name, per_row in _file_tags(rows).items():
        for rec_id, values in zip(ids, per_row, strict=True):
            for value in values:
                columns["recommendation_id"].append(int(rec_id))
                columns["kind"].append(TAG_COLUMNS[name])
                columns["value"].append(value)
    bulk_insert(connection, table_of(RecommendationTag), columns)


def tags_of(connection: Connection, ids: list[int]) -> dict[int, dict[str, list[str]]]:
    """The recommendations' tags: id -> kind -> values (in the order they were written)."""
    t = table_of(RecommendationTag)
    found: dict[int, dict[str, list[str]]] = {}
    for chunk in _chunks(ids):
        rows = connection.execute(
            select(t.c.recommendation_id, t.c.kind, t.c.value).where(one_of(connection, t.c.recommendation_id, chunk)).order_by(t.c.id)
        ).all()
        for rec_id, kind, value in rows:
            found.setdefault(rec_id, {}).setdefault(kind, []).append(value)
    return found


def _tag_changes(session: Session, rows: pd.DataFrame, ids: list[int]) -> TagChanges:
    """Per file row whose tags differ from the registry's: {column: [old "a; b", new]}."""
    wanted = _file_tags(rows)
    if not wanted:
        return {}
    current = tags_of(session.connection(), ids)
    changes: TagChanges = {}
    for name, per_row in wanted.items():
        kind = TAG_COLUMNS[name]
        for row, rec_id, values in zip(rows.index, ids, per_row, strict=True):
            old = current.get(rec_id, {}).get(kind, [])
            if set(old) != set(values):
                changes.setdefault(row, {})[name] = [join_tags(old) or None, join_tags(values) or None]
    return changes


def _replace_tags(session: Session, rows: pd.DataFrame, ids: pd.Series, changes: TagChanges) -> None:
    """Write the file's tags for the rows and tag columns that changed (delete the old set, insert the new)."""
    t = table_of(RecommendationTag)
    connection = session.connection()
    for name, kind in TAG_COLUMNS.items():
        changed = [row for row, diff in changes.items() if name in diff]
        if not changed:
            continue
        for chunk in _chunks([int(ids[row]) for row in changed]):
            connection.execute(t.delete().where(t.c.kind == kind, one_of(connection, t.c.recommendation_id, chunk)))
        _insert_tags(connection, [int(ids[row]) for row in changed], rows.loc[changed, [name]])


def _update(session: Session, rows: pd.DataFrame, existing: pd.DataFrame, result: ImportResult, *, actor: str, reason: str, now: datetime) -> None:
    """Compare the file's known items with the registry's (`existing`) chunk by chunk; write what changed."""
    for start in range(0, len(rows), CHUNK):
        _update_part(session, rows.iloc[start : start + CHUNK], existing, result, actor=actor, reason=reason, now=now)


def _update_part(session: Session, rows: pd.DataFrame, existing: pd.DataFrame, result: ImportResult, *, actor: str, reason: str, now: datetime) -> None:
    if rows.empty:
        return
    old = existing.loc[rows["external_id"]]
    old.index = rows.index
    columns = [c for c in COMPARED if c in rows.columns]
    changed = pd.Series(False, index=rows.index)
    if "due_on" in columns:
        # an empty deadline cell never removes a deadline (given earlier, or derived from the
        # policy): without one an item would silently drop out of the follow-up
        rows = rows.assign(due_on=[n if _none(n) is not None else o for n, o in zip(rows["due_on"], old["due_on"], strict=True)])
    if "follow_up" in columns:
        # nor does an empty follow-up cell undo a committee's selection
        rows = rows.assign(follow_up=[n if _none(n) is not None else bool(o) for n, o in zip(rows["follow_up"], old["follow_up"], strict=True)])
    for name in columns:
        # `!=` settles almost every pair; _same only looks at the ones that differ in form
        differs = [a != b and not _same(a, b) for a, b in zip(rows[name].tolist(), old[COMPARED[name]].tolist(), strict=True)]
        changed |= pd.Series(differs, index=rows.index)
    wants_status = pd.Series(False, index=rows.index)
    if "status" in rows:
        wants_status = rows["status"].notna() & (rows["status"] != old["status"])
    tag_changes = _tag_changes(session, rows, [int(i) for i in old["id"]])
    tagged = pd.Series([row in tag_changes for row in rows.index], index=rows.index, dtype=bool)
    touched = changed | wants_status | tagged
    result.unchanged += int((~touched).sum())
    result.updated += int(touched.sum())
    if not touched.any():
        return
    edits, updates, moves = [], [], []
    for row in rows.index[changed]:
        new_values = {COMPARED[c]: _none(rows.at[row, c]) for c in columns}
        diff = {
            column: [_display(old.at[row, column]), _display(value)]
            for column, value in new_values.items()
            if not _same(old.at[row, column], value)
        }
        rec_id = int(old.at[row, "id"])
        edits.append((rec_id, str(old.at[row, "status"]), diff | tag_changes.get(row, {})))
        updates.append({"b_id": rec_id, **{f"v_{k}": v for k, v in new_values.items()}})
        if "text" in new_values:  # the folded copy the full-text index holds follows the text
            updates[-1]["v_search_text"] = fold(new_values["text"])
        if "ministry_code" in diff and not wants_status[row]:
            status = old.at[row, "status"]
            if status == Status.UNASSIGNED and new_values["ministry_code"]:
                moves.append(TransitionRequest(rec_id, Status.UNASSIGNED, Status.ISSUED, rows.at[row, "external_id"]))
            elif status == Status.ISSUED and not new_values["ministry_code"]:
                moves.append(TransitionRequest(rec_id, Status.ISSUED, Status.UNASSIGNED, rows.at[row, "external_id"]))
    edits += [(int(old.at[row, "id"]), str(old.at[row, "status"]), tag_changes[row]) for row in rows.index[tagged & ~changed]]
    walks = [(int(old.at[row, "id"]), old.at[row, "status"], rows.at[row, "status"], rows.at[row, "external_id"]) for row in rows.index[wants_status]]
    table = table_of(Recommendation)
    if updates:
        for record in updates:
            for key in ("v_facility_id", "v_visit_id"):
                if record.get(key) is not None:
                    record[key] = int(record[key])
        set_columns = [k.removeprefix("v_") for k in updates[0] if k != "b_id"]
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values({c: bindparam(f"v_{c}") for c in set_columns} | {"updated_at": now})
        )
        for chunk in _chunks(updates):
            session.connection().execute(stmt, chunk)
    if edits:
        _replace_tags(session, rows, old["id"], tag_changes)
        record_edits(session, edits, actor=actor, reason=f"edited by {reason}", at=now)
    transition_many(session, moves, actor=actor, reason=f"status changed by {reason}", at=now)
    _walk(session, walks, actor=actor, reason=f"status changed by {reason}", at=now)


def _walk(session: Session, items: Iterable[tuple[int, str, Any, str]], *, actor: str, reason: str, at: datetime) -> None:
    """Move each (id, current, target, external_id) to its target along the table's shortest path
    (target is the file's cell: a status, or a missing value for none).

    One `transition_many` per step number, so 10,000 items moving two steps cost two batches.
    """
    steps: list[list[TransitionRequest]] = []
    for rec_id, current, target, external_id in items:
        if not _none(target) or target == current:
            continue
        previous = current
        for depth, status in enumerate(path_between(current, target) or []):
            if depth == len(steps):
                steps.append([])
            steps[depth].append(TransitionRequest(int(rec_id), Status(previous), status, external_id))
            previous = status
    for batch in steps:
        transition_many(session, batch, actor=actor, reason=reason, at=at)


# --- ministries' replies ----------------------------------------------------------------------



def import_responses(
    path: Path,
    *,
    engine: Engine | None = None,
    actor: str | None = None,
    dry_run: bool = False,
    today: date | None = None,
) -> ImportResult:
    """Record ministries' replies (external_id, status, responded_on, note, evidence) as state changes.

    Same rules as the recommendations import: everything is checked first, then all of it is
    written or nothing. A reply that repeats the current status changes nothing, so the same
    file imported twice is harmless.

    The file is recorded as the reply portal records a reply: one `Reply` per ministry whose
    rows move something (channel `paper`, typed and confirmed by `actor`, already `recorded`),
    with a claim per row (applied, or unchanged when the item already stood there), and each
    move's history names it ("reply REPLY-12 of 20.02.2024 (paper, file replies.csv): note").
    Paper replies are never put under the office's review (`replies.review`): the office typed
    them from the ministry's letter, so it is the reviewer already, and the statuses move at once.
    Items of individualized recommendations still waiting for an answer are marked answered.
    """
    # the replies' tables and rules (models.answers) are loaded by this import only: a
    # recommendations import does not define them
    from followup.models.answers import PaperRow as _PaperRow
    from followup.models.answers import paper_replies as _paper_replies
    from followup.models.answers import reply_reason

    path = Path(path)
    engine = engine or get_engine()
    actor = actor or default_actor()
    today = today or datetime.now(get_settings().tz).date()
    raw = read_table(path)
    check_columns(raw, path, allowed_columns=RESPONSE_COLUMNS, required=RESPONSE_REQUIRED)
    errors: list[RowError] = []
    ext = raw["external_id"].str.strip()
    errors += _errors_where(ext == "", "external_id", "empty")
    errors += duplicate_errors(ext, "external_id")
    status = raw["status"].str.strip().str.lower()
    known = {s.value for s in Status}
    errors += _errors_where(status == "", "status", "empty")
    errors += _errors_where(
        (status != "") & ~status.isin(known), "status",
        status.map(lambda v: f"unknown status {v!r} (replies: {', '.join(s.value for s in REPLY_STATUSES)})"),
    )
    responded, problems = parse_days(raw["responded_on"])
    errors += _errors_where(raw["responded_on"].str.strip() == "", "responded_on", "empty")
    errors += _errors_where(problems != "", "responded_on", problems)
    future = responded.map(lambda d: d is not None and d > today)
    errors += _errors_where(future, "responded_on", f"in the future (today is {today:%d.%m.%Y})")
    note = raw["note"].str.strip() if "note" in raw else pd.Series("", index=raw.index)
    evidence = raw["evidence"].str.strip() if "evidence" in raw else pd.Series("", index=raw.index)
    result = ImportResult(dry_run=dry_run)
    with Session(engine) as session, session.begin():
        current = _existing(session, ext[ext != ""].unique().tolist())
        recorded, last_dated = _dated_history(session, [int(i) for i in current["id"]])
        moves: list[_PaperRow] = []
        repeats: list[_PaperRow] = []
        for row in raw.index:
            key, wanted, day = ext[row], status[row], responded[row]
            if not key or wanted not in known:
                continue
            if key not in current.index:
                errors.append(RowError(int(row), "external_id", f"no recommendation {key!r} in the registry"))
                continue
            issued = current.at[key, "issued_on"]
            if day is not None and issued is not None and day < as_date(issued):
                errors.append(RowError(int(row), "responded_on", f"{day:%d.%m.%Y} is before the recommendation was issued ({as_date(issued):%d.%m.%Y})"))
            now_status = current.at[key, "status"]
            paper = _PaperRow(int(current.at[key, "id"]), key, now_status, wanted, day, note[row], evidence[row] or None,
                              _none(current.at[key, "ministry_code"]))
            if wanted == now_status or (paper.recommendation_id, wanted, day) in recorded:
                # already where the reply puts it, or this very reply was recorded before (the
                # item may have moved on since: an old file must not move it back)
                result.unchanged += 1
                repeats.append(paper)
                continue
            problem = illegal_move(now_status, wanted)
            if problem:
                errors.append(RowError(int(row), "status", problem))
            last = last_dated.get(paper.recommendation_id)
            too_early = False
            if day is not None and last is not None and day < last[0]:
                too_early = True
                # the history is read in the order it was recorded (the annual report too): a reply
                # dated before the item's last dated answer (an earlier reply, a decision) would
                # count after it and undo the newer answer, so the file is refused
                errors.append(RowError(int(row), "responded_on", f"{day:%d.%m.%Y} is before the last recorded change of {key} "
                                       f"({last[1]} on {last[0]:%d.%m.%Y}); a reply can only follow it"))
            if problem or too_early:
                continue
            moves.append(paper)
        if errors:
            errors.sort(key=lambda e: (e.row, RESPONSE_COLUMNS.index(e.field)))
            raise ImportRejected(path, errors)
        replies = _paper_replies(session, moves, repeats, actor=actor)
        transition_many(
            session, [TransitionRequest(m.recommendation_id, Status(m.current), Status(m.wanted), m.external_id) for m in moves],
            actor=actor, reason="reply",
            reasons=[reply_reason(reference=replies.get(m.ministry_code, ""), responded_on=m.responded_on, channel=ReplyChannel.PAPER.value,
                                  source=f"file {path.name}", measures=m.note) if m.ministry_code in replies
                     else (f"reply of {m.responded_on:%d.%m.%Y}" + (f": {m.note}" if m.note else "")) for m in moves],
            evidences=[m.evidence for m in moves], effective_on=[m.responded_on for m in moves],
        )
        result.updated = len(moves)
        result.replies = sorted(replies.values())
        if dry_run:
            session.rollback()
    return result


def _dated_history(session: Session, ids: list[int]) -> tuple[set[tuple[int, str, date]], dict[int, tuple[date, str]]]:
    """The items' dated history entries: every (recommendation, status, date) recorded, and per
    item its latest dated answer (date, status): a reply or the office's decision. The clock's
    marks (overdue, escalated, level 2) do not count: a letter dated before the deadline that
    arrives after the overdue mark is an answer in time, and the report, which lets the last
    recorded entry win from the day it is dated, counts it so. Entries without a date (creation
    by an import, edits) are the registry's bookkeeping."""
    h = table_of(StatusChange)
    found: set[tuple[int, str, date]] = set()
    latest: dict[int, tuple[date, str]] = {}
    for chunk in _chunks(ids):
        rows = session.connection().execute(
            select(h.c.recommendation_id, h.c.to_status, h.c.effective_on)
            .where(one_of(session.connection(), h.c.recommendation_id, chunk), h.c.effective_on.is_not(None))
            .order_by(h.c.id)
        ).all()
        for rec_id, status, day in rows:
            day = as_date(day)
            found.add((rec_id, status, day))
            if status in CLOCK_MARKS:
                continue
            if rec_id not in latest or day >= latest[rec_id][0]:
                latest[rec_id] = (day, status)
    return found, latest
