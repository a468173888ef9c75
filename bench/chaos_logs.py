"""What the soak reads from its workers' JSON log lines: the training messages each job came in
(Celery's "Task ... received", which names the message's arguments) and which worker ran each
attempt (the runner's "job ...: attempt N started")."""

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

JOB_ID = re.compile(r"[0-9a-f]{24}")
ATTEMPT_STARTED = re.compile(r"job ([0-9a-f]{24}): attempt (\d+) started")


def _entries(lines: Iterable[str], logger: str) -> Iterable[dict[str, Any]]:
    """The JSON lines of one logger; a line a SIGKILL cut short is skipped."""
    for line in lines:
        if f'"{logger}"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("logger") == logger:
            yield entry


def messages_per_job(lines: Iterable[str]) -> Counter[str]:
    """How many training messages each job's id came in."""
    counts: Counter[str] = Counter()
    for entry in _entries(lines, "celery.worker.strategy"):
        for job_id in JOB_ID.findall(str((entry.get("data") or {}).get("args", ""))):
            counts[job_id] += 1
    return counts


def attempt_runners(logs: Mapping[str, Iterable[str]]) -> dict[tuple[str, int], str]:
    """The worker (the name its log goes by) that ran each (job, attempt)."""
    runners: dict[tuple[str, int], str] = {}
    for worker, lines in logs.items():
        for entry in _entries(lines, "worker.runner"):
            if match := ATTEMPT_STARTED.match(str(entry.get("message", ""))):
                runners[(match[1], int(match[2]))] = worker
    return runners
