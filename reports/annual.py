"""The consolidated annual report of the NPM: what the office publishes each year, from the registry.

    read_year(engine, year)  -> YearData       (the registry's rows for the year, as frames)
    compute(data)            -> AnnualReport   (plain pandas: every figure of the report)
    write_report(report, out, language)        (HTML with charts, CSV and XLSX tables)

The figures describe the recommendations ISSUED in the year, each in the status it had at the
report's cutoff: 31 December, or today for the current year. The status at the cutoff comes
from the history (a reply dated 20 December and filed on 10 January counts as an answer of
the year), so the report of a closed year reads the same whenever it is rebuilt.

Status groups (they add up to "issued"): implemented, partially implemented, rejected,
withdrawn, open (issued, in progress, on hold, unassigned: deadline not passed), overdue
(overdue, in an individualized recommendation, or before the Commissioner for a decision).
"escalated" counts, among them, those included in an individualized recommendation by the cutoff.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Connection, Engine, Select, and_, or_, select

if TYPE_CHECKING:  # matplotlib is imported only to draw the charts
    from matplotlib.figure import Figure

from followup.config.settings import get_settings
from followup.models.calendar import local_today
from followup.models.cells import readable_csv
from followup.models.dates import day_of
from followup.models.db import get_engine, tuples
from followup.models.domain import IndividualizedStatus, Status
from followup.models.followup import CommissionerDecision, IndividualizedItem, IndividualizedRecommendation
from followup.models.policy import ANSWERED_STATUSES, LATE_STATUSES, OPEN_STATUSES
from followup.models.registry import (
    Facility,
    Ministry,
    Recommendation,
    StatusChange,
    Visit,
    table_of,
)
from followup.notifications.render import render_report, strings
from followup.reports.picture import NOT_GIVEN, latest_by

# followup.spreadsheets (and the import's modules it loads) is imported where the report uses
# it: the workspace reads this module too (`status_at`), and reads no file and writes none

#: status at the cutoff -> the report's group; the groups add up to the recommendations issued
GROUPS: dict[str, str] = {
    **{status: str(status) for status in (*sorted(ANSWERED_STATUSES), Status.WITHDRAWN, Status.CLOSED)},
    **dict.fromkeys(OPEN_STATUSES, "open"),
    **dict.fromkeys(LATE_STATUSES, "overdue"),
}
GROUP_COLUMNS = ["issued", "implemented", "partially_implemented", "rejected", "withdrawn", "closed", "open", "overdue", "escalated"]
#: the Commissioner's level-2 decisions, in the order the report lists them (steps/office.py `Decision`)
DECISIONS = ["parliament_report", "prosecutor_referral", "new_deadline", "closed"]
VISIT_KINDS = ["planned", "special", "follow_up"]
GRADES = ["A", "B", "C", "D", "E"]


@dataclass
class YearData:
    """What the registry holds about one year, as frames (see `read_year`)."""

    year: int
    cutoff: date
    visits: pd.DataFrame  # id, visited_on, kind, facility_id
    facilities: pd.DataFrame  # id, facility_type, region, ministry_code
    recommendations: pd.DataFrame  # id, issued_on, ministry_code, facility_id, category, source
    history: pd.DataFrame  # recommendation_id, id, to_status, on (the day it took effect)
    individualized: pd.DataFrame  # id, ministry_code, issued_on, response_due_on, status, answered_on, level2_on
    individualized_items: pd.DataFrame  # individualized_id, recommendation_id
    grades: pd.DataFrame  # id, grade (treaty-body follow-up, every recommendation graded so far)
    #: the Commissioner's level-2 decisions taken in the year: recommendation_id, ministry_code, decision, decided_on
    decisions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["recommendation_id", "ministry_code", "decision", "decided_on"]))
    ministries: dict[str, dict[str, str]] = field(default_factory=dict)  # code -> {ru, kk, en}


@dataclass
class AnnualReport:
    """Every figure of the report; tables keep raw codes (translated when written)."""

    year: int
    cutoff: date
    headline: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    ministries: dict[str, dict[str, str]]


def cutoff_of(year: int, today: date | None = None) -> date:
    """31 December of the year, or today while the year runs."""
    today = today or local_today()
    return min(date(year, 12, 31), today)


# --- reading ---------------------------------------------------------------------------------------


def _frame(connection: Connection, stmt: Select[Any], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(tuples(connection.execute(stmt)), columns=columns, dtype=object)


def _dated(history: pd.DataFrame) -> pd.DataFrame:
    """History rows with `on`: the day each change took effect (`models.dates.day_of`)."""
    tz = get_settings().tz
    on = pd.Series([day_of(effective_on, at, tz) for effective_on, at in zip(history["effective_on"], history["at"], strict=True)],
                   index=history.index, dtype=object)
    return history.assign(on=on).drop(columns=["effective_on", "at"])


def read_year(engine: Engine | None = None, year: int | None = None, *, today: date | None = None,
              tags: Sequence[str] = ()) -> YearData:
    """The registry's rows that the report of `year` needs, read in a handful of set queries.

    `tags` (`theme:torture`, `sdg:16`…) keep only the recommendations that carry every one of
    them (and their history, letters and grades): a report on what UN mechanisms said about
    torture, for instance. Visits and facilities are not filtered.
    """
    engine = engine or get_engine()
    year = year or (today or local_today()).year - 1
    cutoff = cutoff_of(year, today)
    start = date(year, 1, 1)
    r, f, v, h = table_of(Recommendation), table_of(Facility), table_of(Visit), table_of(StatusChange)
    ir, item = table_of(IndividualizedRecommendation), table_of(IndividualizedItem)
    with engine.connect() as c:
        visits = _frame(c, select(v.c.id, v.c.visited_on, v.c.kind, v.c.facility_id).where(v.c.visited_on.between(start, cutoff)),
                        ["id", "visited_on", "kind", "facility_id"])
        facilities = _frame(c, select(f.c.id, f.c.facility_type, f.c.region, f.c.ministry_code),
                            ["id", "facility_type", "region", "ministry_code"])
        recs = _frame(c, select(r.c.id, r.c.issued_on, r.c.ministry_code, r.c.facility_id, r.c.category, r.c.source)
                      .where(r.c.issued_on.between(start, cutoff)),
                      ["id", "issued_on", "ministry_code", "facility_id", "category", "source"])
        # the history of the year's recommendations, and every implementation that took effect in the year
        cohort = select(r.c.id).where(r.c.issued_on.between(start, cutoff)).scalar_subquery()
        implemented_in_year = and_(h.c.to_status == Status.IMPLEMENTED.value,
                                   or_(h.c.effective_on.between(start, cutoff), h.c.effective_on.is_(None)))
        history = _frame(c, select(h.c.recommendation_id, h.c.id, h.c.to_status, h.c.effective_on, h.c.at)
                         .where(or_(h.c.recommendation_id.in_(cohort), implemented_in_year)),
                         ["recommendation_id", "id", "to_status", "effective_on", "at"])
        individualized = _frame(c, select(ir.c.id, ir.c.ministry_code, ir.c.issued_on, ir.c.response_due_on, ir.c.status,
                                          ir.c.answered_on, ir.c.level2_on)
                                .where(ir.c.issued_on <= cutoff, ir.c.status != IndividualizedStatus.DRAFT.value),
                                ["id", "ministry_code", "issued_on", "response_due_on", "status", "answered_on", "level2_on"])
        items = _frame(c, select(item.c.individualized_id, item.c.recommendation_id)
                       .join(ir, ir.c.id == item.c.individualized_id)
                       .where(ir.c.issued_on <= cutoff, ir.c.status != IndividualizedStatus.DRAFT.value),
                       ["individualized_id", "recommendation_id"])
        grades = _frame(c, select(r.c.id, r.c.grade).where(r.c.grade.is_not(None)), ["id", "grade"])
        d = table_of(CommissionerDecision)
        decisions = _frame(c, select(d.c.recommendation_id, r.c.ministry_code, d.c.decision, d.c.decided_on)
                           .join(r, r.c.id == d.c.recommendation_id).where(d.c.decided_on.between(start, cutoff)),
                           ["recommendation_id", "ministry_code", "decision", "decided_on"])
        m = table_of(Ministry)
        ministries = {code: {"ru": ru, "kk": kk, "en": en}
                      for code, ru, kk, en in c.execute(select(m.c.code, m.c.name_ru, m.c.name_kk, m.c.name_en))}
        from followup.spreadsheets.export import tagged_ids

        wanted = tagged_ids(c, tags)
    if wanted is not None:
        recs = recs[recs["id"].isin(wanted)].reset_index(drop=True)
        history = history[history["recommendation_id"].isin(wanted)].reset_index(drop=True)
        items = items[items["recommendation_id"].isin(wanted)].reset_index(drop=True)
        grades = grades[grades["id"].isin(wanted)].reset_index(drop=True)
        decisions = decisions[decisions["recommendation_id"].isin(wanted)].reset_index(drop=True)
    history = _dated(history)
    return YearData(year, cutoff, visits, facilities, recs, history, individualized, items, grades, decisions, ministries)


# --- computing -------------------------------------------------------------------------------------


def status_at(recommendations: pd.DataFrame, history: pd.DataFrame, cutoff: date) -> pd.DataFrame:
    """Each recommendation's status at the cutoff and the day it was implemented (if it was by then).

    The status is that of its last RECORDED entry that took effect by the cutoff (`latest_by`,
    the rule `followup stats` counts with too); with none, it counts as issued.
    """
    latest = latest_by(zip(history["recommendation_id"], history["id"], history["to_status"], history["on"], strict=True), cutoff)
    status = recommendations["id"].map({rec_id: to_status for rec_id, (to_status, _) in latest.items()}).fillna(Status.ISSUED.value)
    implemented_on = recommendations["id"].map({rec_id: on for rec_id, (_, on) in latest.items()}).where(status == Status.IMPLEMENTED.value)
    return recommendations.assign(status=status.values, implemented_on=implemented_on.values)


def _groups(frame: pd.DataFrame, by: str, escalated: set[int]) -> pd.DataFrame:
    """Per value of `by`: issued, each status group, escalated, implementation rate, median days."""
    if frame.empty:
        return pd.DataFrame(columns=[by, *GROUP_COLUMNS, "implementation_rate", "median_days"])
    out = frame.assign(group=frame["status"].map(GROUPS), escalated=frame["id"].isin(escalated))
    table = pd.crosstab(out[by], out["group"]).reindex(columns=GROUP_COLUMNS[1:-1], fill_value=0)
    table.insert(0, "issued", table.sum(axis=1))
    table["escalated"] = out.groupby(by)["escalated"].sum()
    table["implementation_rate"] = table["implemented"] / table["issued"]
    days = out.dropna(subset=["implemented_on"])
    days = days.assign(days=[(i - s).days for i, s in zip(days["implemented_on"], days["issued_on"], strict=True)])
    table["median_days"] = days.groupby(by)["days"].median()
    table = table.sort_values(["issued", by], ascending=[False, True], key=lambda c: c if c.name == "issued" else c.astype(str))
    return table.reset_index().rename(columns={by: by})


def _with_total(table: pd.DataFrame, key: str, frame: pd.DataFrame, escalated: set[int]) -> pd.DataFrame:
    if frame.empty:  # a year without recommendations: a total of zeros
        return pd.DataFrame([{key: "total", **dict.fromkeys(GROUP_COLUMNS, 0), "implementation_rate": None, "median_days": None}])
    total = _groups(frame.assign(**{key: "total"}), key, escalated)
    return pd.concat([table, total], ignore_index=True)


def compute(data: YearData) -> AnnualReport:
    """Every figure of the annual report from the year's frames (no database, no Prefect)."""
    cutoff = data.cutoff
    facilities = data.facilities.set_index("id")
    recs = status_at(data.recommendations, data.history, cutoff)
    recs["region"] = recs["facility_id"].map(facilities["region"]).fillna(NOT_GIVEN)
    recs["category"] = recs["category"].fillna(NOT_GIVEN)
    recs["ministry_code"] = recs["ministry_code"].fillna(NOT_GIVEN)
    escalated = set(data.individualized_items["recommendation_id"])

    # visits and the facilities monitored: visited in the year, or named by a recommendation of the year
    visits = data.visits
    kinds = visits["kind"].value_counts().reindex(VISIT_KINDS, fill_value=0)
    visit_table = pd.DataFrame({"kind": VISIT_KINDS, "visits": kinds.values,
                                "facilities": [visits.loc[visits["kind"] == k, "facility_id"].nunique() for k in VISIT_KINDS]})
    visit_table.loc[len(visit_table)] = ["total", len(visits), visits["facility_id"].nunique()]
    monitored_ids = set(visits["facility_id"].dropna()) | set(recs["facility_id"].dropna())
    monitored = facilities.loc[sorted(monitored_ids)].reset_index() if monitored_ids else facilities.iloc[0:0].reset_index()
    monitored = monitored.assign(facility_type=monitored["facility_type"].fillna("other"),
                                 region=monitored["region"].fillna(NOT_GIVEN), ministry_code=monitored["ministry_code"].fillna(NOT_GIVEN))
    visits_per_facility = visits["facility_id"].value_counts()
    recs_per_facility = recs["facility_id"].value_counts()

    def facilities_by(column: str) -> pd.DataFrame:
        frame = monitored.assign(visits=monitored["id"].map(visits_per_facility).fillna(0).astype(int),
                                 recommendations=monitored["id"].map(recs_per_facility).fillna(0).astype(int))
        table = frame.groupby(column).agg(facilities=("id", "count"), visits=("visits", "sum"),
                                          recommendations=("recommendations", "sum"))
        table = table.sort_values("facilities", ascending=False).reset_index()
        table.loc[len(table)] = ["total", table["facilities"].sum(), table["visits"].sum(), table["recommendations"].sum()]
        return table

    # individualized recommendations of the year and how each ministry answered (as at the cutoff)
    irs = data.individualized[data.individualized["issued_on"] >= date(data.year, 1, 1)]
    items_per_ir = data.individualized_items["individualized_id"].value_counts()
    answered = irs["answered_on"].notna() & (irs["answered_on"] <= cutoff)
    level2 = irs["level2_on"].notna() & (irs["level2_on"] <= cutoff) & ~answered
    waiting = ~answered & ~level2 & (irs["response_due_on"] >= cutoff)
    ir_frame = irs.assign(items=irs["id"].map(items_per_ir).fillna(0).astype(int), answered=answered, level2=level2,
                          waiting=waiting, unanswered=~answered & ~level2 & ~waiting)
    ir_table = ir_frame.groupby("ministry_code").agg(
        individualized=("id", "count"), items=("items", "sum"), answered=("answered", "sum"),
        level2=("level2", "sum"), waiting=("waiting", "sum"), unanswered=("unanswered", "sum"),
    ).sort_values("individualized", ascending=False).reset_index() if len(irs) else pd.DataFrame(
        columns=["ministry_code", "individualized", "items", "answered", "level2", "waiting", "unanswered"])
    if len(ir_table):
        ir_table.loc[len(ir_table)] = ["total", *ir_table.iloc[:, 1:].sum().tolist()]

    grade_counts = data.grades["grade"].value_counts().reindex(GRADES, fill_value=0)
    grade_table = pd.DataFrame({"grade": GRADES, "recommendations": grade_counts.values})

    # the Commissioner's level-2 decisions taken in the year, by kind and by ministry (any year's items)
    decided = data.decisions
    decision_counts = decided["decision"].value_counts().reindex(DECISIONS, fill_value=0)
    decision_table = pd.DataFrame({"decision": DECISIONS, "recommendations": decision_counts.values.astype(int),
                                   "ministries": [decided.loc[decided["decision"] == k, "ministry_code"].nunique() for k in DECISIONS]})
    decision_table.loc[len(decision_table)] = ["total", int(len(decided)), int(decided["ministry_code"].nunique())]

    # the month-by-month flow: issued in the month vs implementations that took effect in it
    months = range(1, 13)
    issued_month = pd.Series([d.month for d in recs["issued_on"]], dtype="int64").value_counts()
    done = data.history[(data.history["to_status"] == Status.IMPLEMENTED.value)
                        & (data.history["on"] >= date(data.year, 1, 1)) & (data.history["on"] <= cutoff)]
    done = done.sort_values("id").drop_duplicates("recommendation_id", keep="last")
    done_month = pd.Series([d.month for d in done["on"]], dtype="int64").value_counts()
    last_month = cutoff.month if cutoff.year == data.year else 12
    monthly = pd.DataFrame({"month": list(months), "issued": [int(issued_month.get(m, 0)) for m in months],
                            "implemented": [int(done_month.get(m, 0)) for m in months]})
    monthly = monthly[monthly["month"] <= last_month].reset_index(drop=True)

    by_ministry = _with_total(_groups(recs, "ministry_code", escalated), "ministry_code", recs, escalated)
    total = by_ministry.iloc[-1]
    implemented_days = [(i - s).days for i, s in zip(recs["implemented_on"].dropna(), recs.loc[recs["implemented_on"].notna(), "issued_on"], strict=True)]
    headline = {
        "visits": int(len(visits)),
        "planned": int(kinds["planned"]), "special": int(kinds["special"]), "follow_up": int(kinds["follow_up"]),
        "facilities": int(len(monitored)),
        "issued": int(total["issued"]),
        "implemented": int(total["implemented"]),
        "partially_implemented": int(total["partially_implemented"]),
        "rejected": int(total["rejected"]),
        "overdue": int(total["overdue"]),
        "escalated": int(total["escalated"]),
        "implementation_rate": float(total["implementation_rate"]) if total["issued"] else None,
        "median_days": float(pd.Series(implemented_days).median()) if implemented_days else None,
        "individualized": int(len(irs)),
        "individualized_level2": int(level2.sum()),
        "decisions": int(len(decided)),
    }
    tables = {
        "visits": visit_table,
        "facilities_by_type": facilities_by("facility_type"),
        "facilities_by_ministry": facilities_by("ministry_code"),
        "facilities_by_region": facilities_by("region"),
        "recommendations_by_ministry": by_ministry,
        "recommendations_by_region": _with_total(_groups(recs, "region", escalated), "region", recs, escalated),
        "recommendations_by_category": _with_total(_groups(recs, "category", escalated), "category", recs, escalated),
        "individualized": ir_table,
        "decisions": decision_table,
        "grades": grade_table,
        "monthly": monthly,
    }
    return AnnualReport(data.year, cutoff, headline, tables, data.ministries)


# --- writing ---------------------------------------------------------------------------------------


TABLES = ["visits", "facilities_by_type", "facilities_by_ministry", "facilities_by_region", "recommendations_by_ministry",
          "recommendations_by_region", "recommendations_by_category", "individualized", "decisions", "grades", "monthly"]


def number(value: Any, language: str, decimals: int = 0) -> str:
    """1 234,5 in Russian and Kazakh, 1,234.5 in English; None/NaN -> —."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return NOT_GIVEN
    text = f"{float(value):,.{decimals}f}"
    if language in ("ru", "kk"):
        text = text.replace(",", "\u00a0").replace(".", ",")
    return text


def display_tables(report: AnnualReport, language: str) -> dict[str, pd.DataFrame]:
    """The tables as a reader sees them: names instead of codes, headers in the language.

    Numbers stay numbers (the CSV and XLSX are for further work): the rate as a percentage
    with one decimal, the median in days with one decimal.
    """
    words = strings(language)["report"]
    names = {code: (n.get(language) or n["ru"]) for code, n in report.ministries.items()}
    labels = {
        "kind": words["visit_kinds"], "facility_type": words["facility_types"], "ministry_code": names, "category": words["categories"],
        "month": dict(enumerate(words["months"], start=1)), "decision": words["decisions"],
    }
    out = {}
    for key, table in report.tables.items():
        frame = table.copy()
        for quiet in ("withdrawn", "closed"):
            if quiet in frame and not frame[quiet].astype(int).any():
                frame = frame.drop(columns=[quiet])  # none: a column of zeros is noise; the groups still add up
        if key == "grades":
            frame.insert(1, "meaning", frame["grade"].map(words["grades"]))
        for column in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[column]) or column in labels:
                mapping = labels.get(column, {})
                frame[column] = frame[column].map(
                    lambda v, m=mapping: words["total"] if v == "total" else words["not_given"] if v == NOT_GIVEN else m.get(v, v))
        if "implementation_rate" in frame:
            frame["implementation_rate"] = (frame["implementation_rate"].astype(float) * 100).round(1)
        if "median_days" in frame:
            frame["median_days"] = frame["median_days"].astype(float).round(1)
        frame.attrs["raw_columns"] = list(frame.columns)
        frame.columns = [words["columns"].get(c, c) for c in frame.columns]
        out[key] = frame
    return out


def _html_table(frame: pd.DataFrame, language: str) -> dict[str, Any]:
    """Cells formatted for print: numbers aligned right with the language's separators."""
    raw = frame.attrs["raw_columns"]
    numeric = [pd.api.types.is_numeric_dtype(frame.iloc[:, i]) or c in ("implementation_rate", "median_days")
               for i, c in enumerate(raw)]
    decimals = [1 if c in ("implementation_rate", "median_days") else 0 for c in raw]
    rows = []
    for values in frame.itertuples(index=False, name=None):
        rows.append([number(v, language, d) if n else ("" if v is None else str(v)) for v, n, d in zip(values, numeric, decimals, strict=True)])
    return {"headers": list(frame.columns), "rows": rows, "numeric": numeric,
            "total": bool(len(frame)) and rows[-1][0] == strings(language)["report"]["total"]}


# --- charts ----------------------------------------------------------------------------------------


def _figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buffer.getvalue()


def charts(report: AnnualReport, language: str) -> dict[str, bytes]:
    """The report's three charts as PNG images (matplotlib, no display needed)."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    words = strings(language)["report"]
    names = {code: (n.get(language) or n["ru"]) for code, n in report.ministries.items()}
    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    out: dict[str, bytes] = {}

    def wrap(label: str) -> str:
        return "\n".join(textwrap.wrap(label, 38)) or label

    by_ministry = report.tables["recommendations_by_ministry"]
    by_ministry = by_ministry[(by_ministry["ministry_code"] != "total") & (by_ministry["issued"] > 0)]
    if len(by_ministry):
        frame = by_ministry.assign(rate=by_ministry["implementation_rate"].astype(float) * 100).sort_values("rate")
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(frame) + 1))
        bars = ax.barh([wrap(words["not_given"] if c == NOT_GIVEN else names.get(c, c)) for c in frame["ministry_code"]],
                       frame["rate"], color="#1f4e79")
        ax.bar_label(bars, labels=[number(v, language, 1) for v in frame["rate"]], padding=3)
        ax.set_xlim(0, 100)
        ax.set_title(words["charts"]["rate_by_ministry"], loc="left", fontweight="bold")
        out["rate_by_ministry"] = _figure_png(fig)

    monthly = report.tables["monthly"]
    if len(monthly):
        fig, ax = plt.subplots(figsize=(8, 3.2))
        x = monthly["month"].astype(int).to_numpy()
        ax.bar(x - 0.2, monthly["issued"], width=0.4, label=words["charts"]["issued"], color="#1f4e79")
        ax.bar(x + 0.2, monthly["implemented"], width=0.4, label=words["charts"]["implemented"], color="#70ad47")
        ax.set_xticks(x, [words["months_short"][m - 1] for m in x])
        ax.legend(frameon=False)
        ax.set_title(words["charts"]["monthly"], loc="left", fontweight="bold")
        out["monthly"] = _figure_png(fig)

    by_region = report.tables["recommendations_by_region"]
    by_region = by_region[(by_region["region"] != "total") & (by_region["overdue"] > 0)].sort_values("overdue")
    if len(by_region):
        fig, ax = plt.subplots(figsize=(8, 0.32 * len(by_region) + 1))
        bars = ax.barh([wrap(words["not_given"] if r == NOT_GIVEN else str(r)) for r in by_region["region"]],
                       by_region["overdue"], color="#c00000")
        ax.bar_label(bars, padding=3)
        ax.set_title(words["charts"]["overdue_by_region"], loc="left", fontweight="bold")
        out["overdue_by_region"] = _figure_png(fig)
    return out


# --- the files -------------------------------------------------------------------------------------


@dataclass
class ReportFiles:
    html: Path
    xlsx: Path
    csv: list[Path]
    charts: list[Path]


def write_report(report: AnnualReport, out: Path, language: str = "ru") -> ReportFiles:
    """annual-report-YYYY.html (charts embedded, printable), charts/*.png, tables/*.csv, annual-report-YYYY.xlsx."""
    out = Path(out)
    (out / "charts").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    shown = display_tables(report, language)
    images = charts(report, language)
    chart_files = []
    for name, png in images.items():
        path = out / "charts" / f"{name}.png"
        path.write_bytes(png)
        chart_files.append(path)
    csv_files = []
    for key in TABLES:
        path = out / "tables" / f"{key}.csv"
        # tables for reading: a facility named "=HYPERLINK(…)" stays a name (models/cells.py)
        path.write_text(readable_csv(shown[key], sep=strings(language).get("csv_separator", ","),
                                     decimal="," if language in ("ru", "kk") else "."), encoding="utf-8", newline="")
        csv_files.append(path)
    xlsx = out / f"annual-report-{report.year}.xlsx"
    words = strings(language)["report"]
    from followup.spreadsheets.tabular import write_workbook

    write_workbook(xlsx, {words["tables"][key][:31].replace("/", " ").replace(":", " "): shown[key] for key in TABLES},
                   fit_widths=True)
    tables = {key: _html_table(shown[key], language) for key in TABLES}
    html = render_report(language, {
        "year": report.year, "as_of": report.cutoff, "headline": report.headline, "tables": tables,
        "charts": {name: "data:image/png;base64," + base64.b64encode(png).decode("ascii") for name, png in images.items()},
        "number": lambda v, d=0: number(v, language, d),
    })
    path = out / f"annual-report-{report.year}.html"
    path.write_text(html, encoding="utf-8")
    return ReportFiles(path, xlsx, csv_files, chart_files)


def headline_rows(report: AnnualReport, language: str = "en") -> list[dict[str, Any]]:
    """The headline figures as rows (figure, value): the Prefect artifact and `followup stats`."""
    words = strings(language)["report"]["headline"]
    h = report.headline
    rate = None if h["implementation_rate"] is None else round(h["implementation_rate"] * 100, 1)
    keys = ["visits", "facilities", "issued", "implemented", "partially_implemented", "overdue", "median_days",
            "individualized", "individualized_level2"]
    rows = [{"figure": words[k], "value": h[k]} for k in keys]
    rows.insert(4, {"figure": words["implementation_rate"], "value": f"{rate}%" if rate is not None else "—"})
    return rows
