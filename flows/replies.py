"""The `record-responses` flow: ministries' confirmed replies reach the registry.

The reply portal writes a reply into the registry first and only then announces it
(`followup.response.submitted`, resource `followup.response.<reply id>`, payload `reply_id`):
the deployment's trigger starts this flow for that reply at once. Its 10-minute schedule runs
it without a reply id, which records every confirmed reply not recorded yet: a reply confirmed
while the Prefect server was down, or whose event was lost, is recorded by the next fallback
run. Both kinds of run are safe together: `steps.replies.record_replies` takes a lock and
records a reply only while it is still `confirmed` and unrecorded, so each reply is recorded
once. The flow renders no reply links, so it needs no signing key.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import (
    NONE,  # every run acts on the registry: never reuse a result
)
from prefect.events import emit_event

from followup.flows.pipeline import announce
from followup.flows.runs import ends_in_a_sentence, in_words
from followup.steps.deadlines import StepResult
from followup.steps.replies import RecordResult, record_replies

ARTIFACT_KEY = "record-responses"
RECORDED = "followup.response.recorded"
ARTIFACT_ROWS = 200


def _run_name() -> str:
    from prefect.runtime import flow_run

    reply_id = flow_run.parameters.get("reply_id")
    return f"record-responses REPLY-{reply_id}" if reply_id is not None else "record-responses: every confirmed reply"


@task(cache_policy=NONE, retries=2, retry_delay_seconds=[10, 60], task_run_name="record replies")
def record_task(reply_id: int | None) -> RecordResult:
    """Record the confirmed replies (one transaction): moves, holds for review, acknowledgements."""
    return record_replies(reply_ids=None if reply_id is None else [reply_id])


def _announce(result: RecordResult) -> None:
    """After the commit: each move as `followup.recommendation.<status>`, each recorded reply, and
    `followup.notification.queued` when acknowledgements were queued (it starts dispatch)."""
    announce(StepResult(as_of=result.as_of, changes=result.changes, notifications=result.notifications))
    for reply in result.replies:
        emit_event(
            event=RECORDED,
            resource={"prefect.resource.id": f"followup.response.{reply.reply_id}", "prefect.resource.name": reply.reference},
            related=[{"prefect.resource.id": f"followup.ministry.{reply.ministry_code}", "prefect.resource.role": "ministry"}],
            payload={"reply_id": reply.reply_id, "ministry": reply.ministry_code, "outcomes": reply.outcomes},
        )


def summary_markdown(result: RecordResult) -> str:
    """The run's artifact: each reply with what became of its claims, and the refused claims the office must see."""
    counts = result.counts()
    lines = [f"# record-responses {result.as_of:%d.%m.%Y}\n",
             ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()) + "\n"]
    if not result.replies:
        lines.append("_no confirmed reply was waiting_\n")
        return "\n".join(lines)
    lines += ["| reply | ministry | date | channel | applied | unchanged | under review | refused |", "|---|---|---|---|---|---|---|---|"]
    for reply in result.replies[:ARTIFACT_ROWS]:
        o = reply.outcomes
        lines.append(f"| {reply.reference} | {reply.ministry_code} | {reply.responded_on:%d.%m.%Y} | {reply.channel} | "
                     f"{o.get('applied', 0)} | {o.get('unchanged', 0)} | {o.get('under_review', 0)} | {o.get('refused', 0)} |")
    if len(result.replies) > ARTIFACT_ROWS:
        lines.append(f"\n_… and {len(result.replies) - ARTIFACT_ROWS} more replies_")
    if result.refused:
        lines += ["\n## Refused claims (kept with their replies)\n", "| reply | item | status now | claimed | why |", "|---|---|---|---|---|"]
        lines += [f"| {c.reference} | {c.external_id} | {c.status} | {c.claimed_status} | {c.why} |" for c in result.refused[:ARTIFACT_ROWS]]
    return "\n".join(lines) + "\n"


@flow(name="record-responses", flow_run_name=_run_name, log_prints=True)
@ends_in_a_sentence
def record_responses_flow(reply_id: int | None = None) -> dict[str, int]:
    """Record one confirmed reply (the portal's event) or every one not recorded yet (the fallback schedule)."""
    logger = get_run_logger()
    result = record_task(reply_id)
    _announce(result)
    create_markdown_artifact(key=ARTIFACT_KEY, markdown=summary_markdown(result),
                             description=f"record-responses {result.as_of:%d.%m.%Y}: {in_words(result.counts())}")
    for claim in result.refused:
        logger.warning("%s: claim on %s refused (%s); kept with the reply for the office", claim.reference, claim.external_id, claim.why)
    counts = result.counts()
    logger.info("record-responses: %s", in_words(counts))
    return counts
