"""The `ingest` flow: a spreadsheet dropped by the office, imported as the CLI does, observable in the Prefect UI."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import (
    NONE,  # every run acts on the registry: never reuse a result
)

from followup.flows.runs import ends_in_a_sentence, in_words, publish_summary
from followup.spreadsheets.ingest import import_recommendations


@task(cache_policy=NONE, name="import-recommendations-file")
def import_file_task(path: str, dry_run: bool = False) -> dict[str, int]:
    """Validate and import one file in one transaction."""
    return import_recommendations(Path(path), dry_run=dry_run, actor="prefect:ingest").counts()


@flow(name="ingest", flow_run_name="ingest {path}", log_prints=True)
@ends_in_a_sentence
def ingest_flow(path: str, dry_run: bool = False) -> dict[str, int]:
    """Import a spreadsheet dropped by the office; a rejected file fails the run with every bad row in the log."""
    logger = get_run_logger()
    counts = import_file_task(path, dry_run=dry_run)
    logger.info("imported %s: %s", path, in_words(counts))
    publish_summary("ingest", f"ingest {Path(path).name}" + (" (dry run: nothing written)" if dry_run else ""), counts, f"File: `{path}`")
    return counts
