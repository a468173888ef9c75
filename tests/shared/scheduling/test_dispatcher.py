"""The dispatcher's order on a real Redis: priorities first, tenants taking turns within one (by
their weights), never more jobs released to a queue than it has slots, and a slot given back
when its job ends or is requeued. Its messages go to the broker of a queue nobody reads, and
the released ids are what the dispatcher answers."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from celery import Celery

from shared.jobs.attempts import AttemptStore
from shared.jobs.dispatch import Dispatch
from shared.jobs.store import JobStore
from shared.models.jobs import JobRecord, JobStatus, new_job_id
from shared.models.spec import JobSpec
from shared.ops.registry import WorkerInfo, WorkerRegistry
from shared.queue import create_celery_app
from shared.scheduling.dispatcher import Dispatcher
from shared.scheduling.places import QueueReader
from shared.settings import Settings
from tests.helpers import wait_for
from worker.heartbeat import Heartbeat

QUEUE = "gpu"  # no worker of the suite takes it: the messages sent stay unread


@pytest.fixture(scope="module")
def celery(settings_env: Settings) -> Iterator[Celery]:
    """One broker connection for the module's tests, closed after them."""
    app = create_celery_app(settings_env)
    yield app
    app.close()


@pytest.fixture
def dispatcher(store: JobStore, settings_env: Settings, celery: Celery) -> Dispatcher:
    settings = settings_env.model_copy(update={"tenant_weights": {"heavy": 2.0}})
    return Dispatcher(Dispatch(store, celery), WorkerRegistry(store.redis, store.keys), settings)


def slots(dispatcher: Dispatcher, count: int) -> None:
    """``count`` live workers on the queue."""
    for number in range(count):
        info = WorkerInfo(name=f"w{number}@test", queues=[QUEUE], pid=number, started_at=0.0, seen_at=0.0)
        dispatcher.registry.beat(info, ttl_seconds=60)


def submit(store: JobStore, tenant: str, priority: str = "normal", age: int = 0) -> str:
    spec = JobSpec.model_validate({"resources": {"queue": QUEUE, "priority": priority}})
    record = JobRecord.new(new_job_id(), tenant, spec, QUEUE)
    # Oldest first within a tenant: ``age`` seconds earlier than now.
    record = record.model_copy(update={"created_at": record.created_at - timedelta(seconds=age)})
    store.create(record)
    return record.id


def end(store: JobStore, job_id: str) -> None:
    store.change_status(job_id, JobStatus.CANCELLED, reason="test")


def run_in_order(store: JobStore, dispatcher: Dispatcher, jobs: int) -> list[str]:
    """With one slot: release a job, end it, and again, ``jobs`` times; the released ids."""
    order = []
    for _ in range(jobs):
        (released,) = dispatcher.dispatch_once()
        order.append(released)
        end(store, released)
    assert dispatcher.dispatch_once() == []
    return order


def test_a_tenant_s_first_job_waits_behind_one_job_of_another_s_backlog(
    store: JobStore, dispatcher: Dispatcher
) -> None:
    slots(dispatcher, 1)
    backlog = [submit(store, "a", age=100 - n) for n in range(10)]
    first = dispatcher.dispatch_once()
    assert first == [backlog[0]]
    newcomer = submit(store, "b")
    end(store, first[0])
    assert run_in_order(store, dispatcher, 10) == [newcomer, *backlog[1:]]


def test_tenants_take_turns_whatever_their_backlogs(store: JobStore, dispatcher: Dispatcher) -> None:
    slots(dispatcher, 1)
    a = [submit(store, "a", age=100 - n) for n in range(4)]
    b = [submit(store, "b", age=50 - n) for n in range(2)]
    assert run_in_order(store, dispatcher, 6) == [a[0], b[0], a[1], b[1], a[2], a[3]]


def test_a_weighted_tenant_takes_two_turns_for_another_s_one(store: JobStore, dispatcher: Dispatcher) -> None:
    slots(dispatcher, 1)
    heavy = [submit(store, "heavy", age=100 - n) for n in range(4)]
    light = [submit(store, "light", age=50 - n) for n in range(2)]
    order = run_in_order(store, dispatcher, 6)
    assert order == [heavy[0], light[0], heavy[1], heavy[2], light[1], heavy[3]]


def test_higher_priorities_go_first_then_tenants_take_turns(store: JobStore, dispatcher: Dispatcher) -> None:
    slots(dispatcher, 1)
    low = submit(store, "a", "low", age=300)
    normal = [submit(store, "a", age=200 - n) for n in range(2)]
    high = submit(store, "b", "high", age=1)
    assert run_in_order(store, dispatcher, 4) == [high, *normal, low]


def test_no_more_jobs_released_than_slots_and_an_ending_frees_one(
    store: JobStore, dispatcher: Dispatcher
) -> None:
    jobs = [submit(store, "a", age=100 - n) for n in range(5)]
    assert dispatcher.dispatch_once() == []  # no worker: nothing leaves
    slots(dispatcher, 2)
    assert dispatcher.dispatch_once() == jobs[:2]
    assert dispatcher.dispatch_once() == []
    end(store, jobs[0])
    assert dispatcher.dispatch_once() == [jobs[2]]


def test_a_requeued_job_gives_its_slot_back_and_goes_ahead_of_newer_ones(
    store: JobStore, dispatcher: Dispatcher
) -> None:
    slots(dispatcher, 1)
    jobs = [submit(store, "a", age=100 - n) for n in range(3)]
    assert dispatcher.dispatch_once() == [jobs[0]]
    attempts = AttemptStore(store, lease_seconds=0.05, max_attempts=3)
    assert attempts.claim(jobs[0]) is not None
    wait_for(lambda: attempts.settle(jobs[0]), timeout=5, what="its lease to lapse")  # requeued
    assert store.status(jobs[0]) is JobStatus.QUEUED
    assert run_in_order(store, dispatcher, 3) == jobs


def test_one_process_holds_the_dispatch_lease_at_a_time(store: JobStore, dispatcher: Dispatcher) -> None:
    other = Dispatcher(dispatcher.dispatch, dispatcher.registry, dispatcher.settings)
    assert dispatcher.holds()
    assert not other.holds()
    assert dispatcher.holds()  # renewed
    dispatcher.stop()  # gives it up
    assert other.holds()


def test_positions_are_the_order_the_dispatcher_releases_in(store: JobStore, dispatcher: Dispatcher) -> None:
    slots(dispatcher, 1)
    submit(store, "light", age=500)
    (started,) = dispatcher.dispatch_once()  # light's pass moves on; the clock with it
    jobs = [submit(store, "heavy", age=100 - n) for n in range(5)]
    jobs += [submit(store, "light", age=90 - n) for n in range(3)]
    jobs += [submit(store, "mid", "high", age=10), submit(store, "mid", "low", age=5)]
    reader = QueueReader(store, dispatcher.settings)
    places = {job_id: reader.place(store.get(job_id)) for job_id in jobs}
    by_position = sorted(jobs, key=lambda job_id: places[job_id].position)  # type: ignore[union-attr]
    assert [places[j].position for j in by_position] == list(range(1, len(jobs) + 1))  # type: ignore[union-attr]
    (view,) = [q for q in reader.summary("heavy").queues if q.queue == QUEUE]
    assert [w.id for w in view.waiting] == [j for j in by_position if j in jobs[:5]]
    assert [(c.priority, c.waiting) for c in view.priorities] == [("high", 0), ("normal", 5), ("low", 0)]
    end(store, started)
    assert run_in_order(store, dispatcher, len(jobs)) == by_position


def test_a_queued_job_says_why_it_waits(store: JobStore, dispatcher: Dispatcher) -> None:
    first, second = submit(store, "a", age=2), submit(store, "a", age=1)
    reader = QueueReader(store, dispatcher.settings)
    place = reader.place(store.get(second))
    assert place is not None
    assert (place.state, place.position, place.slots) == ("waiting", 2, 0)
    assert place.reason == f"no live worker takes queue {QUEUE}: it starts once one does"
    slots(dispatcher, 1)
    assert dispatcher.dispatch_once() == [first]
    released, waiting = reader.place(store.get(first)), reader.place(store.get(second))
    assert released is not None
    assert released.state == "released"
    assert waiting is not None
    assert waiting.reason == f"0 jobs start before it on queue {QUEUE}; 0 of its 1 slots are busy"


def test_a_tenant_whose_line_emptied_keeps_its_pass(store: JobStore, dispatcher: Dispatcher) -> None:
    slots(dispatcher, 1)
    first = submit(store, "a", age=100)
    assert dispatcher.dispatch_once() == [first]  # a's line is empty now, its pass moved on
    again = submit(store, "a", age=50)
    newcomer = submit(store, "b", age=1)
    end(store, first)
    assert run_in_order(store, dispatcher, 2) == [newcomer, again]


def test_a_slot_held_by_a_job_gone_from_redis_comes_free(store: JobStore, dispatcher: Dispatcher) -> None:
    slots(dispatcher, 1)
    gone, waiting = submit(store, "a", age=2), submit(store, "a", age=1)
    assert dispatcher.dispatch_once() == [gone]
    store.redis.delete(store.keys.job(gone))  # no status change passes through the scheduler
    assert dispatcher.dispatch_once() == [waiting]


def test_a_job_running_on_no_live_worker_holds_no_slot(store: JobStore, dispatcher: Dispatcher) -> None:
    slots(dispatcher, 1)
    orphan, waiting = submit(store, "a", age=2), submit(store, "a", age=1)
    assert dispatcher.dispatch_once() == [orphan]
    # Taken and started by a worker that is not among the live ones: its lease decides its fate.
    assert AttemptStore(store, lease_seconds=30, max_attempts=3).claim(orphan) is not None
    assert dispatcher.dispatch_once() == [waiting]


def test_a_worker_putting_its_job_down_wakes_the_dispatcher(store: JobStore, dispatcher: Dispatcher) -> None:
    heartbeat = Heartbeat(dispatcher.registry, "w@test", [QUEUE], interval=60)
    heartbeat.set_job("01a2")
    assert store.redis.llen(store.keys.dispatch_wake()) == 0
    heartbeat.set_job(None)
    assert store.redis.blpop([store.keys.dispatch_wake()], timeout=1) is not None
