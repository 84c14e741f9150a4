"""The Prefect flows of the daily pass: check-deadlines, escalate, and both in order.

Small tasks (one per step, one per ministry), retries declared on the tasks, run names
that say what ran, an artifact of what changed, and Prefect events for every state change,
every individualized recommendation and the end of each deadline check (which triggers
`escalate` in the deployments).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import (
    NONE,  # every run acts on the registry: never reuse a result
)
from prefect.events import emit_event

from followup.config.loader import ConfigError
from followup.config.settings import get_settings
from followup.flows.runs import ends_in_a_sentence, in_words, publish_summary
from followup.models.calendar import local_today
from followup.steps.deadlines import (
    Change,
    StepResult,
    check_deadlines,
    escalate_ministry,
    plan_escalations,
    refer_to_level2,
)

ARTIFACT_ROWS = 500  # the UI table shows the first ones; the registry has them all


def _as_of_name(prefix: str) -> Callable[[], str]:
    def name() -> str:
        from prefect.runtime import flow_run

        try:
            as_of = flow_run.parameters.get("as_of") or local_today()
        except ConfigError:  # a wrong FOLLOWUP_TIMEZONE: the run starts, and fails saying so
            as_of = "today"
        return f"{prefix} {as_of}"

    return name


#: up to this many state changes in one step, each is its own event; beyond it (the first run
#: over a large imported backlog) they are announced in batches, or the Prefect server's event
#: bus (10,000 messages) would overflow and drop them. Per step: a run has at most a dozen steps
PER_CHANGE_EVENTS = 500
#: recommendations named by one batched event (its payload lists their external ids)
EVENT_BATCH = 1000


@dataclass
class StepSummary:
    """What a step task hands back to its flow: counts and the first changes for the artifact.

    Not the changes themselves: Prefect walks every task's inputs and results (to link
    futures and states), which over 225,000 `Change`s cost more than the step's own work
    (bench/README.md). The step task announces its changes itself, after its commit.
    """

    as_of: date
    counts: dict[str, int]
    changes: int
    shown: list[dict[str, str]]


def _ministry(code: str | None) -> list[dict[str, str]]:
    return [{"prefect.resource.id": f"followup.ministry.{code}", "prefect.resource.role": "ministry"}] if code else []


def _announce_changes(result: StepResult) -> int:
    """`followup.recommendation.<status>` for every change: one event each, or in batches."""
    as_of = result.as_of
    if len(result.changes) <= PER_CHANGE_EVENTS:
        for change in result.changes:
            emit_event(
                event=f"followup.recommendation.{change.to_status}",
                resource={"prefect.resource.id": f"followup.recommendation.{change.external_id}", "prefect.resource.name": change.external_id},
                related=_ministry(change.ministry_code),
                payload={"from": change.from_status, "to": change.to_status, "as_of": as_of.isoformat(), "note": change.note},
            )
        return len(result.changes)
    groups: dict[tuple[str, str | None], list[Change]] = {}
    for change in result.changes:
        groups.setdefault((change.to_status, change.ministry_code), []).append(change)
    count = 0
    for (status, code), members in groups.items():
        for start in range(0, len(members), EVENT_BATCH):
            batch = members[start : start + EVENT_BATCH]
            from_counts: dict[str, int] = {}
            for change in batch:
                from_counts[str(change.from_status)] = from_counts.get(str(change.from_status), 0) + 1
            emit_event(
                event=f"followup.recommendation.{status}",
                resource={"prefect.resource.id": f"followup.ministry.{code or 'unassigned'}.recommendations", "prefect.resource.name": f"{len(batch)} recommendations"},
                related=_ministry(code),
                payload={"batched": True, "to": status, "from": from_counts, "count": len(batch), "as_of": as_of.isoformat(),
                         "external_ids": [c.external_id for c in batch]},
            )
            count += 1
    return count


def announce(result: StepResult) -> int:
    """Emit Prefect events for a committed step's state changes, escalations and queued notifications."""
    count = _announce_changes(result)
    for reference in result.individualized:
        code = reference.rsplit("-", 1)[-1].lower()
        emit_event(
            event="followup.escalation.issued",
            resource={"prefect.resource.id": f"followup.individualized.{reference}", "prefect.resource.name": reference},
            related=[{"prefect.resource.id": f"followup.ministry.{code}", "prefect.resource.role": "ministry"}],
            payload={"as_of": result.as_of.isoformat(), "reference": reference},
        )
        count += 1
    if result.notifications:
        emit_event(
            event="followup.notification.queued",
            resource={"prefect.resource.id": "followup.outbox"},
            payload={"as_of": result.as_of.isoformat(), "count": len(result.notifications), "keys": result.notifications[:50]},
        )
        count += 1
    return count


def summarize(result: StepResult) -> StepSummary:
    """Announce a committed step and keep what the flow shows of it."""
    announce(result)
    shown = [
        {"external_id": c.external_id, "ministry": c.ministry_code or "", "from": c.from_status, "to": c.to_status, "note": c.note}
        for c in result.changes[:ARTIFACT_ROWS]
    ]
    return StepSummary(as_of=result.as_of, counts=result.counts(), changes=len(result.changes), shown=shown)


@task(cache_policy=NONE, retries=2, retry_delay_seconds=[10, 60], task_run_name="check-deadlines {as_of}")
def check_deadlines_task(as_of: date) -> StepSummary:
    """Derive deadlines, mark overdue items, queue reminder letters (one transaction), announce."""
    return summarize(check_deadlines(as_of))


@task(cache_policy=NONE, task_run_name="plan escalations {as_of}")
def plan_task(as_of: date) -> list[str]:
    """Which ministries have items to escalate today."""
    return plan_escalations(as_of)


@task(cache_policy=NONE, retries=2, retry_delay_seconds=[10, 60], task_run_name="escalate {code}")
def escalate_ministry_task(code: str, as_of: date) -> StepSummary:
    """One individualized recommendation to one ministry (one transaction), announced."""
    return summarize(escalate_ministry(code, as_of))


@task(cache_policy=NONE, retries=2, retry_delay_seconds=[10, 60], task_run_name="level 2 {as_of}")
def level2_task(as_of: date) -> StepSummary:
    """Unanswered individualized recommendations go to the Ombudsman for a decision, announced."""
    return summarize(refer_to_level2(as_of))


def _require_signing_key() -> None:
    """The letters carry signed reply links: without the key (FOLLOWUP_SECRET_KEY on PostgreSQL)
    the flow fails at once with `MissingSecretKey`, before any task runs or retries. The steps
    check it again before they write (they also run without Prefect)."""
    get_settings().signing_key()


def _totals(summaries: list[StepSummary]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for summary in summaries:
        for key, value in summary.counts.items():
            totals[key] = totals.get(key, 0) + value
    return totals


def _publish(kind: str, as_of: date, summaries: list[StepSummary]) -> None:
    """The run's artifacts: its summary in words, and a table of the first changes (the
    registry's history has them all)."""
    rows = [row for s in summaries for row in s.shown][:ARTIFACT_ROWS]
    changes = sum(s.changes for s in summaries)
    totals = _totals(summaries)
    create_table_artifact(
        key=kind,
        table=rows or [{"external_id": "—", "ministry": "", "from": "", "to": "", "note": "no state changes"}],
        description=f"{kind} {as_of:%d.%m.%Y}: {in_words(totals)}" + (f" (first {len(rows)} of {changes} changes)" if changes > len(rows) else ""),
    )
    publish_summary(kind, f"{kind} {as_of:%d.%m.%Y}", totals,
                    f"The changes: the artifact `{kind}`" + (f" (the first {len(rows)} of {changes})" if changes > len(rows) else "") + ".")


@flow(name="check-deadlines", flow_run_name=_as_of_name("check-deadlines"), log_prints=True)
@ends_in_a_sentence
def check_deadlines_flow(as_of: date | None = None) -> dict[str, int]:
    """The day's deadline check; ends with `followup.deadlines.checked`, which triggers escalate."""
    _require_signing_key()
    as_of = as_of or local_today()
    summary = check_deadlines_task(as_of)
    _publish("check-deadlines", as_of, [summary])
    counts = summary.counts
    emit_event(
        event="followup.deadlines.checked",
        resource={"prefect.resource.id": "followup.registry"},
        payload={"as_of": as_of.isoformat(), **counts},
    )
    get_run_logger().info("check-deadlines %s: %s", as_of, in_words(counts))
    return counts


@flow(name="escalate", flow_run_name=_as_of_name("escalate"), log_prints=True)
@ends_in_a_sentence
def escalate_flow(as_of: date | None = None) -> dict[str, int]:
    """Individualized recommendations per ministry, then level 2."""
    _require_signing_key()
    as_of = as_of or local_today()
    results = [escalate_ministry_task(code, as_of) for code in plan_task(as_of)]
    results.append(level2_task(as_of))
    _publish("escalate", as_of, results)
    counts = _totals(results)
    get_run_logger().info("escalate %s: %s", as_of, in_words(counts))
    return counts


@flow(name="daily-pass", flow_run_name=_as_of_name("daily-pass"), log_prints=True)
@ends_in_a_sentence
def daily_flow(as_of: date | None = None) -> dict[str, dict[str, int]]:
    """The day's whole pass in order (for `followup run all` and catching up by hand): check
    deadlines, escalate, then deliver what they queued."""
    from followup.flows.notify import dispatch_flow  # flows.notify imports this module

    as_of = as_of or local_today()
    return {
        "check-deadlines": check_deadlines_flow(as_of),
        "escalate": escalate_flow(as_of),
        "dispatch": dispatch_flow(as_of),
    }
