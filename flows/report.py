"""The `annual-report` flow: read the year, compute, write the files, publish the headline as an artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import (
    NONE,  # every run reads the registry afresh: never reuse a result
)

from followup.config.settings import get_settings
from followup.flows.runs import ends_in_a_sentence
from followup.models.calendar import local_today
from followup.reports.annual import (
    AnnualReport,
    ReportFiles,
    YearData,
    compute,
    headline_rows,
    read_year,
    write_report,
)

REPORT_KEY = "annual-report"  # one artifact key: the Prefect UI keeps every year's headline as its history


def _report_name() -> str:
    from prefect.runtime import flow_run

    return f"annual-report {flow_run.parameters.get('year') or local_today().year - 1}"


@task(cache_policy=NONE, task_run_name="read the registry for {year}")
def read_task(year: int, tags: list[str] | None = None) -> YearData:
    """The year's rows, in a handful of set queries."""
    return read_year(year=year, tags=tags or ())


@task(cache_policy=NONE, task_run_name="write the report of {year}")
def write_task(report: AnnualReport, year: int, out: str, language: str) -> ReportFiles:  # noqa: ARG001 - year names the task run
    """HTML with charts, CSV and XLSX tables into the output folder."""
    return write_report(report, Path(out), language)


@flow(name="annual-report", flow_run_name=_report_name, log_prints=True)
@ends_in_a_sentence
def annual_report_flow(year: int | None = None, out: str | None = None, language: str = "ru",
                       tags: list[str] | None = None) -> dict[str, Any]:
    """The consolidated annual report of `year` (default: last year), its files and its headline as an artifact.

    `tags` limits the recommendations to those carrying every tag (theme:torture…).
    """
    year = year or local_today().year - 1
    out = out or str(get_settings().reports_dir / str(year))
    report = compute(read_task(year, tags))
    files = write_task(report, year, out, language)
    # a report filtered by tags is a working document: its headline must not enter the history
    # of the published reports' headlines under the stable key
    create_table_artifact(
        key=REPORT_KEY if not tags else f"{REPORT_KEY}-by-tag", table=headline_rows(report, "en"),
        description=f"Annual report {year}{' (only ' + ', '.join(tags) + ')' if tags else ''} "
                    f"(figures as of {report.cutoff:%d.%m.%Y}): {files.html}",
    )
    print(f"annual report {year}: {files.html}")
    return {"year": year, "html": str(files.html), "xlsx": str(files.xlsx), "headline": report.headline}
