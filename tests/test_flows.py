"""The ingest flow runs for real on Prefect (the test harness's temporary server)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from followup.flows.ingest import ingest_flow
from followup.models.registry import Recommendation
from followup.spreadsheets.tabular import ImportRejected
from tests.conftest import write_csv


@pytest.mark.usefixtures("prefect_server", "db_url")
def test_an_admin_runs_the_ingest_flow_and_sees_the_counts(engine, tmp_path):
    """The flow imports a file dropped by the office and returns what it did."""
    path = write_csv(
        tmp_path / "visit-2024-17.csv",
        "external_id,text,issued_on,ministry",
        "NPM-17-1,Обеспечить доступ к питьевой воде,15.02.2024,МВД",
        "NPM-17-2,Медициналық бөлімді дәрі-дәрмекпен қамтамасыз ету,15.02.2024,health",
    )
    assert ingest_flow(str(path)) == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 0}
    assert ingest_flow(str(path)) == {"created": 0, "updated": 0, "unchanged": 2, "rejected": 0}
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Recommendation)).scalar_one() == 2


@pytest.mark.usefixtures("prefect_server", "db_url")
def test_a_rejected_file_fails_the_flow_run_and_writes_nothing(engine, tmp_path):
    path = write_csv(tmp_path / "bad.csv", "external_id,text,issued_on", "X-1,Текст,31.02.2024")
    with pytest.raises(ImportRejected, match="row 2: issued_on: impossible date"):
        ingest_flow(str(path))
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Recommendation)).scalar_one() == 0
