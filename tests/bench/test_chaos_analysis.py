"""The soak's judgement of a run (bench/chaos_analysis.py, bench/chaos_logs.py): record lists
against 1..N, stays in the queue from transitions, idle-worker time, the fault each requeue is
put down to, the waits a fault touched, and what the workers' logs say."""

from datetime import UTC, datetime
from typing import Any

from api.schemas import JobView
from bench.chaos_analysis import (
    Fault,
    Wait,
    WorkerSample,
    affected,
    epoch_problems,
    queue_waits,
    requeue_causes,
    seconds_when,
)
from bench.chaos_logs import messages_per_job
from shared.models.jobs import StopReason
from tests.helpers import tiny_spec

JOB = "01a24c5800bb547222682c3e"


def test_a_complete_record_list_has_no_problems() -> None:
    assert epoch_problems([1, 2, 3], 3, StopReason.COMPLETED) == {}


def test_missing_duplicated_and_unordered_epochs_are_named() -> None:
    found = epoch_problems([1, 3, 3, 2], 4, StopReason.COMPLETED)
    assert found == {"missing": [4], "duplicated": [3], "out_of_order": True}


def test_a_job_that_did_not_complete_is_judged_up_to_its_last_epoch() -> None:
    assert epoch_problems([1, 2], 5, StopReason.EARLY_STOPPING) == {}
    assert epoch_problems([2], 5, None) == {"missing": [1]}


def at(second: float) -> str:
    return datetime.fromtimestamp(1_800_000_000 + second, UTC).isoformat()


def job_view(transitions: list[tuple[str, float, int]]) -> JobView:
    """A job view whose transitions are (status, second, attempt)."""
    body: dict[str, Any] = {
        "id": JOB,
        "name": "tiny",
        "tags": {},
        "preset": None,
        "status": transitions[-1][0],
        "stop_reason": None,
        "attempt": max(attempt for _, _, attempt in transitions),
        "queue": "cpu",
        "progress": {"epoch": 0, "epochs": 2},
        "best": None,
        "result": None,
        "error": None,
        "created_at": at(0),
        "updated_at": at(transitions[-1][1]),
        "started_at": None,
        "finished_at": None,
        "links": {"self": "s", "metrics": "m", "model": "o"},
        "spec": tiny_spec(),
        "transitions": [{"status": s, "at": at(t), "attempt": a} for s, t, a in transitions],
        "has_model": False,
    }
    return JobView.model_validate(body)


def test_queue_waits_come_from_the_transitions_and_a_requeue_is_marked() -> None:
    view = job_view([("queued", 0, 0), ("running", 2, 1), ("queued", 10, 1), ("running", 13, 2)])
    waits = queue_waits(view)
    base = 1_800_000_000
    assert [(w.queued_at - base, w.started_at and w.started_at - base, w.lost_attempt) for w in waits] == [
        (0, 2, 0),
        (10, 13, 1),
    ]


def test_a_held_job_waits_from_its_release() -> None:
    (wait,) = queue_waits(job_view([("queued", 0, 0), ("running", 30, 1)]), released_at=1_800_000_025)
    assert wait.queued_at == 1_800_000_025


def test_seconds_are_counted_between_samples_close_together() -> None:
    samples = [
        WorkerSample(0, 0, 0),
        WorkerSample(1, 2, 1),
        WorkerSample(2, 1, 1),
        WorkerSample(3, None, None),
        WorkerSample(9, 1, 1),
    ]
    assert seconds_when(samples, 0, 10, WorkerSample.some_idle) == 2.0  # 1-2, 2-3; 9 has no next
    assert seconds_when(samples, 1.5, 10, WorkerSample.some_idle) == 1.5
    assert seconds_when(samples, 0, 10, WorkerSample.none_live) == 1.0
    assert seconds_when(samples, 3, 10, WorkerSample.some_idle) == 0.0  # 3 to 9: nobody could tell


def test_a_requeue_is_put_down_to_the_kill_of_its_own_worker_else_to_a_redis_outage() -> None:
    other_kill = Fault("worker", killed_at=100, back_at=100, detail="", victim="worker-1")
    own_kill = Fault("worker", killed_at=101, back_at=101, detail="", victim="worker-2")
    outage = Fault("redis", killed_at=102, back_at=104, detail="")
    api = Fault("api", killed_at=103, back_at=105, detail="")
    by_kill = Wait("a", queued_at=107, started_at=110, lost_attempt=1)
    by_outage = Wait("b", queued_at=109, started_at=111, lost_attempt=2)
    runners = {("a", 1): "worker-2", ("b", 2): "worker-9"}
    causes = requeue_causes([other_kill, own_kill, outage, api], [by_kill, by_outage], runners, window=9)
    assert causes == {("a", 1): own_kill, ("b", 2): outage}


def test_a_fault_touches_jobs_waiting_when_it_was_over_and_jobs_it_requeued() -> None:
    fault = Fault("worker", killed_at=100, back_at=100, detail="", victim="worker-1")
    waiting = Wait("a", queued_at=95, started_at=108)
    requeued = Wait("b", queued_at=106, started_at=110, lost_attempt=1)
    requeued_elsewhere = Wait("e", queued_at=106, started_at=110, lost_attempt=1)
    started_before = Wait("c", queued_at=90, started_at=99)
    submitted_after = Wait("d", queued_at=104, started_at=105)
    waits = [waiting, requeued, requeued_elsewhere, started_before, submitted_after]
    found = affected(fault, waits, {("b", 1): fault})
    assert [w.job_id for w in found] == ["a", "b"]


def test_messages_are_counted_from_celery_s_received_lines() -> None:
    received = (
        '{"logger": "celery.worker.strategy", "message": "Task keras_jobs.train[x] received", '
        f'"data": {{"args": "[\'{JOB}\']"}}}}'
    )
    lines = [
        received,
        received,
        '{"logger": "worker.runner", "message": "job started"}',
        '{"logger": "celery.wor',
    ]
    assert messages_per_job(lines) == {JOB: 2}
