"""Process helpers shared by the benchmarks (standard library only: the parents import them).

Each measured run happens in a fresh spawned interpreter so that its `ru_maxrss` is its own;
on Linux a child's `ru_maxrss` starts at its parent's high-water mark, so parents stay small.
"""

from __future__ import annotations

import os
import re
import resource
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path


def quiet() -> None:
    """No analytics (no internet here) and only Prefect's warnings."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    automatic_policy()


def automatic_policy() -> None:
    """The benchmarks' individualized recommendations leave on their own (`approval: automatic`,
    as before approval existed): FOLLOWUP_POLICY_FILE names a copy of config/policy.yaml so set,
    unless it is set already (the spawned children inherit it)."""
    if os.environ.get("FOLLOWUP_POLICY_FILE"):
        return
    shipped = Path(__file__).resolve().parent.parent / "config" / "policy.yaml"
    text, _ = re.subn(r"(?m)^(\s+approval:\s*)required\b", r"\g<1>automatic", shipped.read_text(encoding="utf-8"))
    path = Path(tempfile.gettempdir()) / f"followup-bench-policy-{os.getpid()}.yaml"
    path.write_text(text, encoding="utf-8")
    os.environ["FOLLOWUP_POLICY_FILE"] = str(path)


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_child(fn, *args):
    """Run fn(*args) in a fresh spawned interpreter; its ru_maxrss is its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def child_pg_admin(admin_url: str, action: str, name: str, template: str | None = None) -> None:
    """CREATE (optionally from a template) or DROP one PostgreSQL database of a benchmark."""
    from sqlalchemy import create_engine, text

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        if action == "create":
            connection.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
        else:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def libpq_conninfo(url: str) -> str:
    """A libpq conninfo string (host=... dbname=...) for a postgresql://user[:password]@host[:port]/db URL."""
    base, _, name = url.rpartition("/")
    user, _, hostport = base.split("://", 1)[1].rpartition("@")
    host, _, port = hostport.partition(":")
    conninfo = f"host={host} port={port or 5432} user={user.split(':')[0] or 'postgres'} dbname={name}"
    return conninfo + (f" password={user.split(':', 1)[1]}" if ":" in user else "")
