"""The admin's alert: a flow run of the pipeline failed.

The `admin-alert` deployment (prefect.yaml) is started by Prefect's own
`prefect.flow-run.Failed` event for any run tagged `followup` (every deployment of the
pipeline). It puts one message for the Apprise tag `admin` in the outbox, keyed by the failed
run (a repeated event alerts once), and sends it at once: an alert that waits for the next
dispatch is late. admin-alert itself is tagged `admin` only, so its own failure cannot start
it again.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from sqlalchemy.orm import Session

from followup.config.notifications import load_notification_config
from followup.flows.runs import ends_in_a_sentence, in_words
from followup.models.db import get_engine
from followup.notifications.dispatch import dispatch
from followup.notifications.outbox import queue
from followup.notifications.render import render

ADMIN = "admin"

def alert_message(flow_run_id: str, flow_run_name: str, flow_name: str, message: str, *, language: str,
                  ui_url: str | None = None) -> dict[str, str]:
    """The outbox row of one alert: subject, text and HTML in the admin's language (templates
    `alert.txt|.html` like every other message), with a link to the run."""
    link = f"{ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}" if ui_url else flow_run_id
    fields = {"run": flow_run_name or flow_run_id, "flow": flow_name or "?", "message": message or "—", "link": link}
    rendered = render("alert", language, fields)
    return {
        "recipient": ADMIN, "kind": "alert", "language": language,
        "subject": rendered.subject, "body_text": rendered.text, "body_html": rendered.html,
        "dedupe_key": f"alert:flow-run:{flow_run_id}",
    }


def _ui_url() -> str | None:
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    return PREFECT_UI_URL.value() or (PREFECT_API_URL.value() or "").removesuffix("/api") or None


def _failed_run(flow_run_id: str) -> tuple[str, str]:
    """The failed run's flow name and state message, from the Prefect API ("?" when unreadable:
    the alert goes out anyway)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(flow_run_id))
            flow_name = client.read_flow(run.flow_id).name
            return flow_name, (run.state.message if run.state and run.state.message else "")
    except Exception as exc:  # the alert matters more than its details
        get_run_logger().warning("cannot read flow run %s: %s", flow_run_id, exc)
        return "?", ""


@task(cache_policy=NONE, task_run_name="queue the alert for {flow_run_name}")
def queue_alert_task(flow_run_id: str, flow_run_name: str, flow_name: str, message: str) -> list[str]:
    language = load_notification_config().language_of(ADMIN)
    row = alert_message(flow_run_id, flow_run_name, flow_name, message, language=language, ui_url=_ui_url())
    with Session(get_engine()) as session, session.begin():
        return list(queue(session, [{**row, "payload": {"flow_run_id": flow_run_id, "flow": flow_name}}]))


@task(cache_policy=NONE, task_run_name="send to admin")
def send_alert_task() -> dict[str, int]:
    return dispatch(recipients=[ADMIN]).summary()


@flow(name="admin-alert", flow_run_name="admin-alert {flow_run_name}", log_prints=True)
@ends_in_a_sentence
def admin_alert_flow(flow_run_id: str, flow_run_name: str = "", flow_name: str = "", message: str = "") -> dict[str, int]:
    """Tell the admin (Apprise tag `admin`) that a flow run failed; once per failed run.

    The trigger passes the event's resource id (`prefect.flow-run.<id>`) and the run's name; the
    flow's name and the failure message are read from the API when not given."""
    flow_run_id = flow_run_id.removeprefix("prefect.flow-run.")
    if not flow_name:
        flow_name, read_message = _failed_run(flow_run_id)
        message = message or read_message
    queued = queue_alert_task(flow_run_id, flow_run_name, flow_name, message)
    summary = send_alert_task()
    get_run_logger().info("admin alert for %s (%s): %s", flow_run_name, flow_name, in_words({"queued": len(queued), **summary}))
    return {"queued": len(queued), **summary}
