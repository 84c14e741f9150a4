"""Recommendations of UN mechanisms as they are published: plain functions, no database, no Prefect.

Two shapes of file arrive besides the project's own columns (README, "International
recommendations"):

- an export of the Universal Human Rights Index (uhri.ohchr.org): `Symbol`, `Text`,
  `PublicationDate`, `Body`, `Themes`, `AffectedPersons`, `Sdgs`, `Countries`, and the paragraph
  either in a `Paragraph` column or in the symbol (`CCPR/C/KAZ/CO/2, para. 15`), or, for the
  UPR, at the start of the text (`136.12 Ratify … (Norway);`);
- a UPR matrix: `Recommendation` (numbered text ending with the recommending state in
  parentheses) and `Response`/`Position` (Supported / Noted), with the Working Group report's
  symbol and date in columns or given on the command line.

`to_project_frame` turns either into the project's own columns, so that the one validation and
the one writer of `spreadsheets/ingest.py` apply to all of them (all rows or none, errors by row).
The external id is derived from symbol and paragraph, so re-importing the same document (or a
newer export of it) updates the recommendations instead of duplicating them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from followup.models.domain import Source, TagKind, UprResponse

if TYPE_CHECKING:  # the tag rules are read by `followup list`, which reads no file: no pandas there
    import pandas as pd

FOLLOWUP, UHRI, UPR = "followup", "uhri", "upr"

#: canonical column -> header spellings (compared without case, spaces, "_" or "-")
ALIASES: dict[str, tuple[str, ...]] = {
    "symbol": ("symbol", "documentsymbol", "document", "reportsymbol"),
    "paragraph": ("paragraph", "para", "paragraphnumber", "paragraphno"),
    "text": ("text", "recommendation", "recommendationtext"),
    "issued_on": ("publicationdate", "date", "issuedon", "adoptiondate"),
    "body": ("body", "mechanism"),
    "themes": ("themes", "theme", "fulllistofthemes"),
    "affected_persons": ("affectedpersons", "persons", "affectedgroups"),
    "sdgs": ("sdgs", "sdg", "sustainabledevelopmentgoals"),
    "countries": ("countries", "country", "stateunderreview"),
    "response": ("response", "position", "upresponse", "recommendationstatus"),
    "recommending_state": ("recommendingstate", "recommendingstates", "state"),
    "ministry": ("ministry", "responsibleministry"),
    "follow_up": ("followup", "followupprocedure", "selectedforfollowup"),
    "due_on": ("dueon", "deadline"),
    "category": ("category",),
    "priority": ("priority",),
}
_BY_KEY = {alias: canonical for canonical, aliases in ALIASES.items() for alias in aliases}

#: how the state under review is named in UHRI exports (UN languages) and in the office's files
KAZAKHSTAN = frozenset({"kazakhstan", "kazakstan", "kazajstán", "kazajstan", "казахстан", "қазақстан", "kaz", "kz"})

TREATY_BODIES = frozenset({"CCPR", "CAT", "CESCR", "CEDAW", "CRC", "CERD", "CRPD", "CMW", "CED", "HRCTEE"})

_PARA = r"(\d+(?:\.\d+)*)\s*(?:\(\s*([a-z])\s*\))?"
_SYMBOL_PARA = re.compile(rf"^(?P<symbol>.+?)[\s,;]*\(?\s*(?:para(?:graph)?s?\.?|§|п\.)\s*{_PARA}\s*\)?\s*$", re.IGNORECASE)
_LEADING_PARA = re.compile(r"^\s*(\d+(?:\.\d+)*)\.?\s+(?=\S)")
_TRAILING_STATE = re.compile(r"\(([^()]+)\)\s*[;.,]?\s*$")
_TAG_SPLIT = re.compile(r"\s*(?:;|\n|\r|\|)\s*")
_COUNTRY_SPLIT = re.compile(r"\s*(?:;|,|\n|\|)\s*")
_RESPONSES = {
    "supported": UprResponse.SUPPORTED, "accepted": UprResponse.SUPPORTED, "поддержана": UprResponse.SUPPORTED,
    "поддержано": UprResponse.SUPPORTED, "қолдау тапты": UprResponse.SUPPORTED,
    "noted": UprResponse.NOTED, "taken note": UprResponse.NOTED, "принята к сведению": UprResponse.NOTED,
    "принято к сведению": UprResponse.NOTED, "назарға алынды": UprResponse.NOTED,
}
_YES = frozenset({"yes", "y", "true", "1", "x", "да", "иә", "selected"})
_NO = frozenset({"no", "n", "false", "0", "нет", "жоқ"})


def header_key(header: str) -> str:
    """A header as compared: `PublicationDate`, `publication date` and `publication_date` are one."""
    return re.sub(r"[\s_\-./]+", "", str(header).casefold())


def detect_format(columns: list[str]) -> str:
    """Which shape a file has, from its header alone.

    The project's own files always have `external_id`; a UHRI export has `Symbol` and `Text`; a
    UPR matrix has a `Recommendation` column and the state's `Response`/`Position`.
    """
    keys = {header_key(c) for c in columns}
    if "externalid" in keys:
        return FOLLOWUP
    canon = {_BY_KEY.get(k) for k in keys}
    if "symbol" in canon and "text" in keys:
        return UHRI
    if "recommendation" in keys or ("text" in canon and "response" in canon):
        return UPR
    return FOLLOWUP


def split_symbol(symbol: str) -> tuple[str, str | None]:
    """`CCPR/C/KAZ/CO/2, para. 15` -> (`CCPR/C/KAZ/CO/2`, `15`); a bare symbol -> (symbol, None).

    Accepts `para. 15`, `para 15`, `paras. 15`, `paragraph 15`, `§ 15`, `(para. 15)` and a
    sub-paragraph `para. 15 (a)` -> `15(a)`.
    """
    text = " ".join(symbol.split())
    found = _SYMBOL_PARA.match(text)
    if not found:
        return text, None
    number, letter = found.group(2), found.group(3)
    return found.group("symbol").rstrip(" ,;("), f"{number}({letter.lower()})" if letter else number


def normalize_paragraph(value: str) -> str | None:
    """`15`, `15.`, `para. 15`, `15 (a)`, `136.12` -> `15`, `15`, `15`, `15(a)`, `136.12`; None if no number."""
    found = re.search(_PARA, value.strip(), re.IGNORECASE)
    if not found:
        return None
    number, letter = found.group(1), found.group(2)
    return f"{number}({letter.lower()})" if letter else number


def parse_upr_text(text: str) -> tuple[str | None, str | None]:
    """(paragraph, recommending state) of a UPR recommendation as the matrix prints it.

    `136.12 Ratify the Optional Protocol to the Convention against Torture (Norway);`
    -> (`136.12`, `Norway`). Either is None when the text does not carry it. Several states
    stay together as written (`Chile, France`).
    """
    lead = _LEADING_PARA.match(text)
    paragraph = lead.group(1) if lead else None
    tail = _TRAILING_STATE.search(text.strip())
    state = " ".join(tail.group(1).split()) if tail else None
    return paragraph, state


def mechanism_ref(symbol: str, paragraph: str) -> str:
    """The document and paragraph as cited: `CCPR/C/KAZ/CO/2, para. 15`."""
    return f"{symbol}, para. {paragraph}"


def derive_external_id(symbol: str, paragraph: str) -> str:
    """A stable key from symbol and paragraph: `CCPR/C/KAZ/CO/2` + `15` -> `CCPR-C-KAZ-CO-2-15`.

    Only the document and the paragraph go in, never the text or the date, so a corrected or
    re-exported text of the same paragraph updates the same recommendation.
    """
    doc = re.sub(r"[^0-9A-Za-z.]+", "-", symbol.strip()).strip("-").upper()
    para = re.sub(r"[()\s]", "", paragraph)
    return f"{doc}-{para}"


def committee_of(symbol_or_ref: str | None, body: str | None = None) -> str | None:
    """The mechanism behind a document: `CCPR/C/KAZ/CO/2, para. 15` -> CCPR, `CAT/OP/KAZ/1` -> SPT,
    `A/HRC/44/10` -> UPR. A `Body` cell, when given, wins."""
    if body and body.strip():
        return body.strip().upper()
    if not symbol_or_ref:
        return None
    parts = [p.strip().upper() for p in symbol_or_ref.split(",")[0].split("/")]
    if parts[:2] == ["CAT", "OP"]:
        return "SPT"
    if parts[:2] == ["A", "HRC"]:
        return "UPR"
    return parts[0] or None


def source_of(committee: str | None) -> str:
    """The registry's `source` for a mechanism: treaty bodies, UPR, SPT, else `other` (special procedures…)."""
    if committee in TREATY_BODIES:
        return Source.TREATY_BODY.value
    if committee == "UPR":
        return Source.UPR.value
    if committee == "SPT":
        return Source.SPT.value
    return Source.OTHER.value


def split_tags(cell: str | None) -> list[str]:
    """A UHRI multi-value cell as its values, in order, each once.

    Values are separated by `;`, `|` or line breaks, never by commas: theme names contain them
    ("Torture and other cruel, inhuman or degrading treatment or punishment").
    """
    if not cell:
        return []
    seen: dict[str, str] = {}
    for part in _TAG_SPLIT.split(cell):
        value = " ".join(part.split())
        if value and value.casefold() not in seen:
            seen[value.casefold()] = value
    return list(seen.values())


def join_tags(values: list[str]) -> str:
    return "; ".join(values)


def is_kazakhstan(countries: str) -> bool:
    """Whether a UHRI `Countries` cell names Kazakhstan (in a UN language, Kazakh or as KAZ)."""
    return any(part.casefold() in KAZAKHSTAN for part in _COUNTRY_SPLIT.split(countries) if part)


def parse_response(value: str) -> UprResponse | None:
    """`Supported` / `Noted` (also `Accepted`, and the Russian and Kazakh words) -> the response; raises ValueError."""
    text = " ".join(value.split()).casefold()
    if not text:
        return None
    if text in _RESPONSES:
        return _RESPONSES[text]
    raise ValueError(f"unknown response {value.strip()!r} (supported or noted)")


def parse_yes_no(value: str) -> bool | None:
    """A yes/no cell (yes, no, true, false, 1, 0, x, да, нет, иә, жоқ); empty -> None; raises ValueError."""
    text = value.strip().casefold()
    if not text:
        return None
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise ValueError(f"not yes or no: {value.strip()!r}")


# --- a whole file ------------------------------------------------------------------------------------


@dataclass
class Mapped:
    """A UHRI export or UPR matrix in the project's columns, with what was left out and why."""

    frame: pd.DataFrame  # project columns (text cells), indexed by the file's row numbers
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (row, file column, problem)
    skipped: int = 0  # rows about another country
    ignored_columns: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # project column -> the file's header, for errors


def to_project_frame(raw: pd.DataFrame, *, symbol: str | None = None, issued_on: str | None = None) -> Mapped:
    """Map a UHRI export or a UPR matrix (text cells, index = row numbers) to the project's columns.

    `symbol` and `issued_on` fill in a UPR matrix that does not carry the Working Group
    report's symbol and date in columns. Rows whose `Countries` do not include Kazakhstan are
    left out and counted (an export filtered by theme spans many states); without a
    `Countries` column every row is taken as Kazakhstan's. Columns the registry has no place
    for (`Id`, `Annotation`…) are ignored and listed.
    """
    import pandas as pd

    header: dict[str, str] = {}
    ignored: list[str] = []
    for column in raw.columns:
        canonical = _BY_KEY.get(header_key(column))
        if canonical is None or canonical in header:
            ignored.append(column)
        else:
            header[canonical] = column

    def cell(name: str) -> pd.Series:
        """The column under its canonical name, as text; an empty one where the file lacks it."""
        return raw[header[name]].astype(str) if name in header else pd.Series("", index=raw.index)

    out = Mapped(frame=pd.DataFrame(index=raw.index), ignored_columns=ignored)
    out.columns = {"external_id": header.get("symbol", "symbol"), "mechanism_ref": header.get("symbol", "symbol")}
    missing = [n for n in ("text",) if n not in header]
    if "symbol" not in header and not symbol:
        missing.append("symbol")
    if "issued_on" not in header and not issued_on:
        missing.append("issued_on")
    if missing:
        hint = {"symbol": "Symbol (or --symbol)", "issued_on": "PublicationDate (or --issued-on)", "text": "Text or Recommendation"}
        raise ValueError("missing column" + ("s " if len(missing) > 1 else " ") + ", ".join(hint[m] for m in missing))

    keep = pd.Series(True, index=raw.index)
    if "countries" in header:
        countries = cell("countries")
        keep = pd.Series([c.strip() == "" or is_kazakhstan(c) for c in countries], index=raw.index, dtype=bool)
        out.skipped = int((~keep).sum())
    rows = raw.index[keep]

    texts = cell("text")
    symbols = cell("symbol") if "symbol" in header else pd.Series(symbol or "", index=raw.index)
    symbols = symbols.where(symbols.str.strip() != "", symbol or "")
    paragraphs = cell("paragraph")
    bodies = cell("body")
    ext, refs, sources, states, paras = {}, {}, {}, {}, {}
    for row in rows:
        doc, para = split_symbol(symbols[row]) if symbols[row].strip() else ("", None)
        lead, state = parse_upr_text(texts[row])
        given = normalize_paragraph(paragraphs[row]) if paragraphs[row].strip() else None
        if paragraphs[row].strip() and given is None:
            out.errors.append((row, header["paragraph"], f"not a paragraph number: {paragraphs[row].strip()!r}"))
            continue
        para = given or para or lead
        committee = committee_of(doc, bodies[row]) if doc else None
        if not doc:
            out.errors.append((row, header.get("symbol", "symbol"), "empty: the document symbol, e.g. CCPR/C/KAZ/CO/2"))
            continue
        if para is None:
            out.errors.append((row, header.get("paragraph", header.get("symbol", "symbol")),
                               "no paragraph number (a Paragraph column, 'SYMBOL, para. 15', or a text starting with it)"))
            continue
        ext[row], refs[row] = derive_external_id(doc, para), mechanism_ref(doc, para)
        sources[row] = source_of(committee)
        states[row] = state if sources[row] == Source.UPR.value else None
        paras[row] = para
    good = [r for r in rows if r in ext]
    frame = pd.DataFrame(index=good)
    frame["external_id"] = [ext[r] for r in good]
    frame["text"] = [texts[r] for r in good]
    dates = cell("issued_on") if "issued_on" in header else pd.Series(issued_on or "", index=raw.index)
    dates = dates.where(dates.str.strip() != "", issued_on or "")
    frame["issued_on"] = [dates[r] for r in good]
    frame["source"] = [sources[r] for r in good]
    frame["mechanism_ref"] = [refs[r] for r in good]
    given_states = cell("recommending_state")
    frame["recommending_state"] = [given_states[r].strip() or (states[r] or "") for r in good]
    for name in ("themes", "affected_persons", "sdgs"):
        if name in header:
            values = cell(name)
            frame[name] = [join_tags(split_tags(values[r])) for r in good]
            out.columns[name] = header[name]
    for name in ("response", "ministry", "follow_up", "due_on", "category", "priority"):
        if name in header:
            values = cell(name)
            frame[name] = [values[r] for r in good]
            out.columns[name] = header[name]
    out.columns.update({"text": header["text"], "issued_on": header.get("issued_on", "issued_on")})
    out.frame = frame.astype(str) if len(frame) else frame.astype(object)
    # rows with mapping errors still count as bad rows: keep them (empty) so the import rejects the file
    return out


TAG_COLUMNS = {"themes": TagKind.THEME.value, "affected_persons": TagKind.AFFECTED_PERSONS.value, "sdgs": TagKind.SDG.value}
#: --tag KIND:VALUE spellings
TAG_KIND_NAMES = {
    "theme": TagKind.THEME.value, "themes": TagKind.THEME.value,
    "affected_persons": TagKind.AFFECTED_PERSONS.value, "affected": TagKind.AFFECTED_PERSONS.value,
    "persons": TagKind.AFFECTED_PERSONS.value, "affectedpersons": TagKind.AFFECTED_PERSONS.value,
    "sdg": TagKind.SDG.value, "sdgs": TagKind.SDG.value,
}


def parse_tag_filter(text: str) -> tuple[str, str]:
    """`theme:torture` -> ("theme", "torture"); raises ValueError naming the kinds."""
    kind, sep, value = text.partition(":")
    kind_key = kind.strip().casefold().replace("-", "_")
    if not sep or not value.strip() or kind_key not in TAG_KIND_NAMES:
        raise ValueError(f"--tag {text!r}: write KIND:VALUE with KIND one of theme, affected_persons, sdg (e.g. theme:torture, sdg:16)")
    return TAG_KIND_NAMES[kind_key], value.strip()


def tag_matches(kind: str, value: str, wanted: str) -> bool:
    """Whether a stored tag answers a filter: a goal number for SDGs (`16` matches `16.3 Promote…`
    and `16 - Peace…`, not `1`), else the words anywhere in it, without case."""
    if kind == TagKind.SDG.value and re.fullmatch(r"\d+(?:\.\w+)?", wanted):
        number = re.match(r"\s*(?:SDG\s*|Goal\s*)?(\d+(?:\.\w+)?)", value, re.IGNORECASE)
        return number is not None and (number.group(1) == wanted or number.group(1).startswith(wanted + "."))
    return wanted.casefold() in value.casefold()
