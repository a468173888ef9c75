"""Workers send Celery task events, which event consumers such as Flower show."""

import threading
from typing import Any

import httpx
import pytest

from shared.queue import create_celery_app
from shared.settings import Settings
from tests.helpers import tiny_spec, wait_for

pytestmark = pytest.mark.e2e


def test_a_training_task_sends_received_started_and_succeeded_events(
    client: httpx.Client, worker: str, settings_env: Settings
) -> None:
    app = create_celery_app(settings_env)
    seen: list[dict[str, Any]] = []
    subscribed, done = threading.Event(), threading.Event()

    def listen() -> None:
        with app.connection() as connection:
            receiver = app.events.Receiver(connection, handlers={"*": seen.append})
            while not done.is_set():
                try:
                    receiver.capture(limit=None, timeout=0.5, wakeup=False)
                except TimeoutError:
                    subscribed.set()  # a capture waited, so the subscription is in place

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    wait_for(subscribed.is_set, 30, what="the event receiver")
    job = client.post("/v1/jobs", json=tiny_spec()).json()

    def events_of_the_job() -> set[str]:
        tasks = {e["uuid"] for e in seen if e["type"] == "task-received" and job["id"] in e["args"]}
        return {e["type"] for e in seen if e.get("uuid") in tasks}

    try:
        wait_for(
            lambda: {"task-received", "task-started", "task-succeeded"} <= events_of_the_job(),
            120,
            what="the task events",
        )
    finally:
        done.set()
        thread.join(timeout=5)
