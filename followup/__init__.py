"""followup: the follow-up pipeline for human-rights recommendations, as one installed package.

The rooms are folders at the top of the repository (`config/`, `models/`, `flows/`,
`notifications/`, …); this package holds a link to each, so that they install as
`followup.models`, `followup.flows`… and never claim generic top-level names such as
`models` in site-packages. Code imports them only through this package.

Machines running the pipeline often have no internet: Prefect's telemetry is off unless the
environment says otherwise (set here, before Prefect is first imported by any room).
"""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
