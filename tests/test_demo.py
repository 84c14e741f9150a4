"""`followup demo` as a new user runs it: the console script, in an empty folder."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from followup.config.policy import load_policy
from followup.interfaces.demo_data import generate
from followup.models.calendar import local_today
from followup.models.links import read_ministry_token
from tests.conftest import wait_until


def _followup(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FOLLOWUP_DATABASE_URL"}
    script = Path(sys.executable).with_name("followup")
    return subprocess.run([str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.server  # the console script in a child process, running the flows on Prefect
def test_a_new_user_gets_a_realistic_npm_year(tmp_path: Path):
    run = _followup("demo", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "3050 recommendations" in run.stdout and "461 visits" in run.stdout and "474" in run.stdout
    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'followup.db'}")
    with engine.connect() as connection:
        counts = dict(connection.execute(text("SELECT status, count(*) FROM recommendation GROUP BY status")).all())
        kinds = dict(connection.execute(text("SELECT kind, count(*) FROM visit GROUP BY kind")).all())
        history = connection.execute(text("SELECT count(*) FROM status_change")).scalar_one()
        letters = dict(connection.execute(text("SELECT kind, count(*) FROM notification GROUP BY kind")).all())
        individualized = connection.execute(text("SELECT count(*) FROM individualized_recommendation")).scalar_one()
    assert kinds == {"planned": 422, "special": 33, "follow_up": 6}
    assert sum(counts.values()) == 3050
    assert 0.35 < counts["implemented"] / 3050 < 0.45  # "about 40% implemented"
    assert counts["unassigned"] == 10
    # the daily pass as of 23.11.2026 shows every rung of the ladder
    assert counts["overdue"] > 0 and counts["escalated"] > 0 and letters["reminder"] > 0
    assert individualized == letters["individualized"] == 6  # one per ministry with items
    assert history > 3050 + counts["escalated"]
    assert "individualized recommendations" in run.stdout and "IR-20261123-INTERIOR" in run.stdout
    # it ends with a ministry's reply link to try the reply page with
    assert "open it after `followup web`" in run.stdout
    link = run.stdout.rstrip().splitlines()[-1]
    grant = read_ministry_token(link.rsplit("/r/", 1)[1], today=local_today())
    assert grant.ministry == "interior" and grant.generation == 1
    with engine.connect() as connection:
        letter_links = set(connection.execute(text(
            "SELECT payload FROM notification WHERE recipient = 'ministry:interior'")).scalars())
    if grant.expires_on == date(2026, 11, 23) + timedelta(days=load_policy().replies.link_days):
        assert any(link in str(payload) for payload in letter_links)  # the very link of its letters
    _the_link_opens_the_ministry_page(link, tmp_path)
    again = _followup("demo", cwd=tmp_path)
    assert again.returncode == 0 and "0 created, 0 updated, 3050 unchanged" in again.stdout.replace("\n", " ")
    assert "0 items newly overdue" in again.stdout and "0 individualized recommendations" in again.stdout
    assert (tmp_path / "var" / "demo" / "recommendations.csv").exists()


def _the_link_opens_the_ministry_page(link: str, cwd: Path) -> None:
    """`followup web` beside the demo's registry shows the ministry's open items behind the printed link."""
    import httpx

    from tests.receivers import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "FOLLOWUP_DATABASE_URL"}  # the demo's key signed the link
    web = subprocess.Popen([str(Path(sys.executable).with_name("followup")), "web", "--port", str(port)], cwd=cwd, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        local = f"http://127.0.0.1:{port}/r/" + link.rsplit("/r/", 1)[1]
        with httpx.Client(follow_redirects=True, timeout=30) as client:
            page = wait_until(lambda: _get(client, local), 60, "followup web")
        assert page.status_code == 200 and str(page.url).endswith("/m/")
        assert "Министерство внутренних дел" in page.text and "Рекомендации, ожидающие ответа" in page.text
    finally:
        web.terminate()
        web.wait(timeout=30)


def _get(client, url: str):
    try:
        return client.get(url)
    except Exception:  # noqa: BLE001 - not listening yet
        return None


def test_the_demo_data_is_the_same_every_time():
    a, b = generate(), generate()
    pd.testing.assert_frame_equal(a.recommendations, b.recommendations)
    langs = a.recommendations["text"].str.contains("[әғқңөұүһі]")
    assert 0.1 < langs.mean() < 0.3  # Russian and Kazakh
    assert a.recommendations["category"].value_counts().index[:5].isin(
        ["detention_conditions", "procurement", "legal_training", "medical_care", "sanitary_standards"]
    ).all()
