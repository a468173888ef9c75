"""Soak: small jobs and a study submitted while workers are SIGKILLed and replaced, the API is
killed and restarted, and Redis (append-only file, fsync every second) is killed and restarted,
at random (seeded) moments for a bounded time. Then every job is followed to its end and checked:
its final state, its epoch records against 1..N, its attempts, and how long jobs waited past
each restart against the dispatch deadline.

    DATASETS_DIR=../shared/datasets .venv/bin/python -m bench.chaos [--jobs 100] [--chaos-seconds 240]
"""

import argparse
import random
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.chaos_analysis import Fault
from bench.chaos_client import (
    RETRY,
    CountingTransport,
    WorkerSampler,
    Workload,
    shuffled_specs,
    study_request,
)
from bench.chaos_logs import attempt_runners, messages_per_job
from bench.chaos_report import SoakRun, figures, report
from bench.chaos_stack import ChaosStack
from bench.harness import operator_token, write_results
from client.sync_client import KJobsClient

KINDS = ("worker", "api", "redis")


@dataclass
class Monkey:
    """Breaks the stack at random moments until its time is up; logs each fault."""

    stack: ChaosStack
    rng: random.Random
    seconds: float
    mean_gap: float
    t0: float
    faults: list[Fault]
    done: threading.Event  # every job has ended: nothing is left to break

    def run(self) -> None:
        """Fault after fault, exponential gaps apart, until ``seconds`` have passed or ``done``."""
        end = self.t0 + self.seconds
        while not self.done.wait(min(self.rng.expovariate(1 / self.mean_gap), max(0.0, end - time.time()))):
            if time.time() >= end:
                return
            kind = self.rng.choices(KINDS, weights=(2, 1, 1))[0]
            fault = getattr(self, f"break_{kind}")()
            self.faults.append(fault)
            down = fault.back_at - fault.killed_at
            print(f"[{fault.killed_at - self.t0:6.1f} s] {kind}: {fault.detail} ({down:.1f} s)", flush=True)

    def break_worker(self) -> Fault:
        """SIGKILL a random worker and start a new one in its place."""
        victim = self.rng.choice(self.stack.workers)
        killed_at = time.time()
        self.stack.kill_worker(victim)
        self.stack.start_worker()
        name = victim.log_path.stem
        return Fault("worker", killed_at, time.time(), f"killed {name}, started another", victim=name)

    def break_api(self) -> Fault:
        """SIGKILL the API and start it again on the same port."""
        killed_at = time.time()
        self.stack.kill(self.stack.api)
        self.stack.start_api()
        return Fault("api", killed_at, time.time(), "killed and restarted")

    def break_redis(self) -> Fault:
        """SIGKILL Redis, leave it down a moment, and start it again on its append-only file."""
        down = self.rng.uniform(0.5, 3.0)
        killed_at = time.time()
        self.stack.kill(self.stack.redis)
        time.sleep(down)
        self.stack.start_redis()
        return Fault("redis", killed_at, time.time(), f"killed, down {down:.1f} s, restarted")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100, help="jobs in all, the study's included")
    parser.add_argument("--chaos-seconds", type=float, default=240.0)
    parser.add_argument("--mean-gap", type=float, default=8.0, help="mean seconds between faults")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5, help="each job trains 2..EPOCHS epochs")
    parser.add_argument("--train-limit", type=int, default=6000)
    parser.add_argument("--study-variants", type=int, default=4)
    parser.add_argument("--window", type=int, default=0, help="unfinished jobs at once (0: workers + 1)")
    parser.add_argument("--deadline", type=float, default=15.0, help="DISPATCH_DEADLINE_SECONDS")
    parser.add_argument("--lease", type=float, default=6.0, help="LEASE_SECONDS")
    parser.add_argument("--max-attempts", type=int, default=3, help="MAX_ATTEMPTS")
    parser.add_argument("--settle-seconds", type=float, default=600.0, help="longest wait after the chaos")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, Redis files)")
    return parser.parse_args()


def service_settings(args: argparse.Namespace) -> dict[str, str]:
    """The settings the soak runs the service with."""
    return {
        "DISPATCH_DEADLINE_SECONDS": str(args.deadline),
        "LEASE_SECONDS": str(args.lease),
        "MAX_ATTEMPTS": str(args.max_attempts),
        "WORKER_HEARTBEAT_SECONDS": "1.0",
        "REDIS_RETRY_SECONDS": "120",
    }


def soak(stack: ChaosStack, args: argparse.Namespace) -> SoakRun:
    """Run the workload under the monkey; every job's final view, the faults and the samples."""
    stack.start_redis()
    api_key = stack.create_key()
    stack.start_api()
    for _ in range(args.workers):
        stack.start_worker()
    stack.wait_for_workers(args.workers)
    specs = shuffled_specs(args.jobs - args.study_variants, args.epochs, args.train_limit, args.seed)
    study = study_request(f"chaos-study-{stack.key_prefix}", specs[0], args.study_variants, 2)
    transport = CountingTransport()
    submitter = KJobsClient(stack.api_url, api_key, retry=RETRY, timeout=30.0, transport=transport)
    follower = KJobsClient(stack.api_url, api_key, retry=RETRY, timeout=30.0)
    window = args.window or args.workers + 1
    workload = Workload(submitter, follower, specs, study, window, random.Random(args.seed + 1))
    sampler = WorkerSampler(stack.api_url, operator_token())
    faults: list[Fault] = []
    t0, stop = time.time(), threading.Event()
    workload.deadline = time.monotonic() + args.chaos_seconds + args.settle_seconds
    rng = random.Random(args.seed)
    monkey = Monkey(stack, rng, args.chaos_seconds, args.mean_gap, t0, faults, workload.ended)
    # The monkey runs on this thread, the clients on others: a child started with
    # PR_SET_PDEATHSIG (cli.processes.spawn) is sent SIGTERM when the *thread* that started it
    # ends, so every process must be started from the thread that outlives them all.
    threads = [threading.Thread(target=part.run, args=(stop,)) for part in (workload, sampler)]
    for thread in threads:
        thread.start()
    try:
        monkey.run()
        chaos_ended = time.time()
        threads[0].join()
        if workload.error is not None:
            raise workload.error
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    ended = time.time()
    records = {job_id: workload.epochs(job_id) for job_id in workload.views}
    logs = {path.stem: path.read_text(errors="replace").splitlines() for path in stack.worker_logs()}
    messages = messages_per_job(line for lines in logs.values() for line in lines)
    submitter.close()
    follower.close()
    runners = attempt_runners(logs)
    samples = sampler.samples
    return SoakRun(t0, chaos_ended, ended, workload, faults, samples, records, messages, runners, transport)


def main() -> None:
    args = parse_args()
    with ExitStack() as exits:
        folder = Path(tempfile.mkdtemp(prefix="kjobs-chaos-")) if args.keep else None
        if folder is None:
            folder = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="kjobs-chaos-")))
        stack = ChaosStack(folder, service_settings(args))
        exits.callback(stack.close)
        run = soak(stack, args)
    result = figures(run, args, service_settings(args))
    report(result)
    write_results("chaos", result)
    if args.keep:
        print(f"logs and Redis files kept in {folder}")


if __name__ == "__main__":
    main()
