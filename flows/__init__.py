"""Prefect flows, the CLI and the import/export around the registry.

Machines running the pipeline often have no internet: Prefect's telemetry is off unless
the environment says otherwise (set before Prefect is first imported).
"""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
