"""Message templates: subject, plain text and HTML of every message the pipeline sends.

    render(kind, language, context) -> Rendered(subject, text, html)

Templates live in `notifications/templates/<lang>/<kind>.txt|.html`; the shared HTML page
(`_base.html`) and the table/list macros (`_macros.html`, `_macros.txt`) sit in the templates
folder itself. Each language's `strings.yaml` holds the subject lines (Jinja strings rendered
with the same context), the default sender (`office`), the labels, the digest's section
headings and the translation of DataFrame column names (`columns:`).

Jinja2 runs with StrictUndefined (a missing context key raises `jinja2.UndefinedError`),
autoescape on for .html and off for .txt and for subjects. Besides the caller's context, every
template sees `lang`, `strings` (that language's strings.yaml), `subject` (the rendered subject
line), the filters `d` (DD.MM.YYYY, for tables and lists) and `dd` (the date in running text and
headings, with the language's year mark: "23.11.2026 г.", "23.11.2026 ж.") and the function
`period(since, until)`. The digest also
gets `counts` ({section key: row count}) and its `sections` are prepared for display (see
`_digest_section`).

Nothing here keeps state between calls except the parsed strings.yaml (reloaded when the
file changes) and Jinja's template cache.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    UndefinedError,
    pass_context,
    select_autoescape,
)

from followup.models.cells import readable_csv_rows
from followup.models.dates import LOCAL_TZ, as_date_or_none

__all__ = ["ADMIN_KINDS", "KINDS", "LANGUAGES", "Rendered", "by_deadline", "deadline_order", "format_date", "is_item_list", "items_csv", "natural_key",
           "render", "render_report", "strings"]

LANGUAGES = ("ru", "kk", "en")  # ru is the default / fallback
KINDS = ("reminder", "individualized", "level2", "digest", "acknowledgement", "reply_returned", "reply_confirm")
#: messages to the administrator (Apprise tag admin), not letters: no items, no reply link
ADMIN_KINDS = ("alert",)
DEFAULT_LANGUAGE = "ru"
TEMPLATES_DIR = Path(__file__).parent / "templates"
EMPTY = "—"
TEXT_CELL_MAX = 80  # digest plain-text tables: longer cells are cut with "…"
# identifiers are never cut: every message names every recommendation by its external_id
NO_TRUNCATE = frozenset({"external_id", "external_ids", "reference", "items", "recipient"})

# what each kind needs from the caller (office is optional: it defaults from strings.yaml)
REQUIRED: dict[str, tuple[str, ...]] = {
    # a letter to a ministry says how to answer it: its reply link, the link's last day, the
    # reference to quote and the office's contact ({name, position, phone, email})
    "reminder": ("as_of", "reference", "ministry", "due_soon", "overdue", "reply_link", "link_expires_on", "contact"),
    "individualized": ("as_of", "reference", "issued_on", "ministry", "legal_basis", "items", "response_due_on",
                       "reply_link", "link_expires_on", "contact"),
    # items: the silent ones (no reply); answered: the others, each with status, awaiting_review, answered_on
    "level2": ("as_of", "reference", "ministry", "issued_on", "response_due_on", "items", "answered"),
    "digest": ("since", "as_of", "sections"),
    # ministries' replies. items: {external_id, facility, text, claimed_status, measures} and, in an
    # acknowledgement, outcome (a ClaimOutcome); contact: the office's executor (config/office.py)
    "acknowledgement": ("as_of", "ministry", "reference", "responded_on", "letter_reference", "items", "contact"),
    "reply_returned": ("as_of", "ministry", "reference", "responded_on", "letter_reference", "comment", "items", "contact"),
    # to the ministry's validating official, sent by the reply portal: no as_of, the link's last day instead
    "reply_confirm": ("ministry", "reply_reference", "author_name", "author_position", "author_email", "items",
                      "confirm_url", "expires_on", "contact"),
    # to the admin: a flow run failed (flows/alerts.py); link: the run in the Prefect UI, or its id
    "alert": ("run", "flow", "message", "link"),
}
_ALIASES = {"kz": "kk", "kaz": "kk", "rus": "ru", "eng": "en"}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str  # plain text body
    html: str  # a complete HTML document (<!doctype html>…), inline CSS only, printable


def format_date(value: Any) -> str:
    """DD.MM.YYYY from a date, a datetime (aware ones are shown in Asia/Almaty), an ISO string; None -> "—"."""
    if type(value) is date:  # the common case, hundreds of thousands per long letter, few distinct days
        return _day(value)
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return EMPTY
    if isinstance(value, str):
        if not value.strip():
            return EMPTY
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"not a date: {value!r} (expected an ISO date such as 2026-11-23)") from None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(LOCAL_TZ)
        value = value.date()
    if isinstance(value, date):
        return f"{value.day:02d}.{value.month:02d}.{value.year:04d}"
    raise TypeError(f"not a date: {value!r}")


@lru_cache(maxsize=4096)
def _day(value: date) -> str:
    return f"{value.day:02d}.{value.month:02d}.{value.year:04d}"


@pass_context
def dated(context: Any, value: Any) -> str:
    """`dd`: the date as a letter's text writes it, DD.MM.YYYY and the year mark of the language
    (strings.yaml `year_mark`: "г." in Russian, "ж." in Kazakh, none in English)."""
    text = format_date(value)
    mark = str(context.get("strings", {}).get("year_mark") or "")
    return f"{text} {mark}" if mark and text != EMPTY else text


def period(since: Any, until: Any) -> str:
    """16.11–23.11.2026, or 28.12.2026–04.01.2027 across a new year."""
    start, end = as_date_or_none(since, tz=LOCAL_TZ), as_date_or_none(until, tz=LOCAL_TZ)
    if start is None or end is None:
        return f"{format_date(since)}–{format_date(until)}"
    if start.year == end.year:
        return f"{start.day:02d}.{start.month:02d}–{format_date(end)}"
    return f"{format_date(start)}–{format_date(end)}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        undefined=StrictUndefined,
        # on for .html, off for .txt and for the subject strings from strings.yaml
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["d"] = format_date
    env.filters["dd"] = dated
    env.globals["period"] = period
    return env


_ENV = _environment()


@lru_cache(maxsize=16)
def _load_strings(language: str, _mtime_ns: int) -> dict[str, Any]:
    path = TEMPLATES_DIR / language / "strings.yaml"
    with path.open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise TypeError(f"{path}: expected a mapping")
    return data


def strings(language: str | None) -> dict[str, Any]:
    """The parsed strings.yaml of a language (after fallback). Treat it as read-only."""
    lang = _language(language)
    return _load_strings(lang, (TEMPLATES_DIR / lang / "strings.yaml").stat().st_mtime_ns)


def _language(language: str | None) -> str:
    if not language:
        return DEFAULT_LANGUAGE
    code = re.split(r"[-_]", str(language).strip().lower(), maxsplit=1)[0]
    code = _ALIASES.get(code, code)
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _tidy_text(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return out + "\n"


def render(kind: str, language: str | None, context: dict[str, Any]) -> Rendered:
    """Subject, plain text and HTML of one message. Unknown language -> ru; unknown kind -> ValueError."""
    if kind not in KINDS + ADMIN_KINDS:
        raise ValueError(f"unknown message kind {kind!r}; known kinds: {', '.join(KINDS + ADMIN_KINDS)}")
    missing = [key for key in REQUIRED[kind] if key not in context]
    if missing:
        raise UndefinedError(f"{kind} message: context is missing {', '.join(repr(k) for k in missing)}")
    lang = _language(language)
    s = strings(lang)
    ctx: dict[str, Any] = dict(context)  # never modify the caller's dict
    ctx.setdefault("office", s["office"])
    ctx["lang"] = lang
    ctx["strings"] = s
    if kind == "digest":
        names = {code: str(n.get(lang) or n.get("ru") or code) for code, n in (context.get("ministries") or {}).items()}
        listed = context.get("listed_items")
        sections = [_digest_section(section, s, lang, names=names, listed=listed) for section in context["sections"]]
        ctx["sections"] = sections
        ctx["counts"] = {section["key"]: section["count"] for section in sections}
    subject = _one_line(_ENV.from_string(s["subjects"][kind]).render(ctx))
    ctx["subject"] = subject
    text = _ENV.get_template(f"{lang}/{kind}.txt").render(ctx)
    html = _ENV.get_template(f"{lang}/{kind}.html").render(ctx)
    return Rendered(subject=subject, text=_tidy_text(text), html=html)


def render_report(language: str | None, context: dict[str, Any]) -> str:
    """The annual report's HTML page (`_report.html`, words from strings.yaml `report:`); see reports/annual.py."""
    lang = _language(language)
    s = strings(lang)
    ctx = {**context, "lang": lang, "strings": s, "office": context.get("office", s["office"])}
    ctx["subject"] = f"{s['report']['title']} {s['report']['subtitle'].format(year=context['year'])}"
    return _ENV.get_template("_report.html").render(ctx)


def by_deadline(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items in the order a clerk works through them (reminders, the digest's letters): `deadline_order`."""
    return sorted(items, key=lambda item: deadline_order(item["due_on"], item["external_id"]))


def deadline_order(due_on: date | None, external_id: Any) -> tuple[Any, ...]:
    """The sort key of that order: by deadline (none last), then by number as people read
    numbers (NPM-2026-0009 before NPM-2026-0010, item 2 before 10)."""
    return (due_on is None, due_on or date.min, natural_key(external_id))


def natural_key(text: Any) -> tuple[tuple[int, int | str], ...]:
    """`REC-2` before `REC-10`: digits compared as numbers, the rest case-insensitively."""
    return tuple([(0, int(part)) if part.isdigit() else (1, part.casefold()) for part in _DIGITS.split(str(text)) if part])


_DIGITS = re.compile(r"(\d+)")


def items_csv(sections: Sequence[tuple[str, Iterable[dict[str, Any]]]], language: str | None) -> str:
    """A letter's complete item list as a spreadsheet a clerk opens in Excel (the letter lists only the first ones).

    `sections`: (heading, items as the letter templates take them, a list or read as they come). Columns: number, section,
    recommendation number, deadline (DD.MM.YYYY), facility, text; headers in the letter's
    language; UTF-8 with a byte-order mark and the language's `csv_separator` (";" where
    Excel's decimal separator is the comma), so Excel opens it in columns without an import
    dialog. Items are numbered per section as in the letter.
    """
    s = strings(language)
    labels = s["labels"]
    # a spreadsheet for reading: a text starting with "=" stays text (models/cells.py); written row by
    # row as the items come (a backlog's list has hundreds of thousands)
    return readable_csv_rows(
        [labels["number"], labels["section"], labels["external_id"], labels["deadline"], labels["facility"], labels["text"]],
        ((n, heading, item["external_id"], format_date(item["due_on"]), item["facility"] or "", _one_line(item["text"]))
         for heading, items in sections for n, item in enumerate(items, start=1)),
        sep=s.get("csv_separator", ","),
    )


# --- digest tables -------------------------------------------------------------------------


def _digest_section(section: dict[str, Any], s: dict[str, Any], lang: str, *, names: dict[str, str] | None = None,
                    listed: int | None = None) -> dict[str, Any]:
    """{"key", "rows": DataFrame} -> what the digest templates show.

    Adds: heading, explanation (from strings.yaml `sections:`; an unknown key shows itself),
    count, summary (the section's figure as strings.yaml `sections.<key>.summary` words it, with
    {count} and the totals of its number columns; else the count), columns (raw names),
    headers (translated through `columns:`), cells (formatted strings, full length, for HTML)
    and table_text (aligned plain-text table, long cells cut).
    Cells: dates (and ISO strings in *_on/*_at/*_since columns) as DD.MM.YYYY, empty as "—",
    lists joined with ", ", response_rate (a fraction) as a percentage, the state bodies' codes
    in the `ministry` column as their names (`names`), and the codes in status/kind/source/
    category columns translated through strings.yaml `values:` (categories: `report.categories`).
    `rows` may also be a list of dicts, or None for an empty section.
    A section with `items` ({reference: DataFrame}, the individualized recommendations) also
    gets `letters`: per letter its heading, its first `listed` items as a table and, when it
    holds more, the note that says so.
    """
    key = section["key"]
    frame = section["rows"]
    if frame is None:
        frame = pd.DataFrame()
    elif not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(list(frame))
    names = names or {}
    texts = s["sections"].get(key) or {}
    count = len(frame)
    if listed is not None and is_item_list(frame) and count > listed:
        frame = frame.head(listed)  # a long list of items, like a reminder's: the first ones, all in the attachment
    columns = [str(c) for c in frame.columns]
    headers = [str(s["columns"].get(c, c)) for c in columns]
    cells = [
        [_cell(value, column, s, lang, names) for value, column in zip(row, columns, strict=True)]
        for row in frame.astype(object).itertuples(index=False, name=None)
    ]
    numeric = [bool(cells) and all(_NUMERIC.fullmatch(row[i]) or row[i] == EMPTY for row in cells) for i in range(len(columns))]
    totals = {c: int(pd.to_numeric(frame[c], errors="coerce").fillna(0).sum()) for c in columns
              if c != "response_rate" and pd.api.types.is_numeric_dtype(frame[c])}
    summary = str(texts.get("summary", "{count}"))
    for name, value in {"count": count, **totals}.items():
        summary = summary.replace("{" + name + "}", str(value))
    if re.search(r"\{\w+\}", summary):  # a figure the rows do not have: the count, never a placeholder
        summary = str(count)
    out = {
        "key": key,
        "heading": texts.get("heading", key),
        "explanation": texts.get("explanation", ""),
        "count": count,
        "shown": len(frame),
        "summary": summary,
        "rows": frame,
        "columns": columns,
        "headers": headers,
        "cells": cells,
        # per column: right-align numbers; keep identifiers and dates on one line
        "align": ["right" if n else "left" for n in numeric],
        "nowrap": [c in ("external_id", "reference", "recipient") or _is_date_column(c) for c in columns],
        "table_text": _text_table(headers, cells, columns, numeric) if cells else "",
        "letters": [],
    }
    items = section.get("items") or {}
    if items and "reference" in frame.columns:
        ministry_of = dict(zip(frame["reference"], frame["ministry"] if "ministry" in frame.columns else frame["reference"], strict=True))
        for reference in frame["reference"]:
            letter = items.get(reference)
            if letter is None:
                continue
            shown = letter if listed is None else letter.head(listed)
            table = _digest_section({"key": "letter_items", "rows": shown.drop(columns=["text"], errors="ignore")}, s, lang, names=names)
            out["letters"].append({**table, "reference": reference, "count": len(letter), "shown": len(shown),
                                   "ministry": names.get(str(ministry_of.get(reference)), ministry_of.get(reference))})
    return out


def is_item_list(frame: pd.DataFrame) -> bool:
    """Whether a digest section lists recommendations (one row per item, with its number), which
    the digest cuts at `letters.listed_items` like a reminder, the rest in the attachment; the
    per-ministry tables are never long."""
    return "external_id" in frame.columns


_NUMERIC = re.compile(r"-?\d+([.,]\d+)?%?")


def _cell(value: Any, column: str, s: dict[str, Any], lang: str, names: dict[str, str] | None = None) -> str:
    if isinstance(value, (set, frozenset)):
        value = sorted(value, key=str)
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ndarray":
        return ", ".join(_cell(v, column, s, lang, names) for v in value)
    if value is None or value is pd.NaT or value is pd.NA:
        return EMPTY
    if isinstance(value, (datetime, date)):
        return format_date(value)
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return str(s["labels"]["flag_yes"] if value else s["labels"]["flag_no"])
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return EMPTY
        if column == "response_rate":  # a fraction 0..1 (a value above 1 is taken as a percentage already)
            return f"{number * 100 if number <= 1 else number:.0f}%"
        text = str(int(number)) if number.is_integer() else f"{number:.2f}".rstrip("0")
        return text.replace(".", ",") if lang in ("ru", "kk") else text
    text = _one_line(str(value))
    if isinstance(value, str) and _is_date_column(column):
        try:
            return format_date(text)
        except ValueError:
            return text
    if column == "ministry" and names:
        return names.get(text, text)
    if column == "category":
        return str(s["report"]["categories"].get(text, text))
    return str(s.get("values", {}).get(column, {}).get(text, text))


def _is_date_column(column: str) -> bool:
    return column.endswith(("_on", "_at", "_since")) or column in ("date", "deadline")


def _truncate(text: str, column: str) -> str:
    if column in NO_TRUNCATE or len(text) <= TEXT_CELL_MAX:
        return text
    return text[: TEXT_CELL_MAX - 1].rstrip() + "…"


def _text_table(headers: list[str], cells: list[list[str]], columns: list[str], numeric: list[bool]) -> str:
    rows = [headers] + [[_truncate(c, column) for c, column in zip(row, columns, strict=True)] for row in cells]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(row, widths, numeric, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
