"""``kjobs`` job and study commands as a user runs them: subprocesses against the running API,
with ``KJOBS_URL`` and ``KJOBS_API_KEY`` in their environment and their output piped."""

import csv
import io
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from client import KJobsClient
from tests.cli.conftest import JOB_ID, REPO_ROOT, RUN_TIMEOUT_SECONDS, Kjobs, write_yaml
from tests.helpers import free_port, tiny_spec, wait_for


def test_a_bad_spec_file_exits_4_naming_the_field(kjobs_cli: Kjobs, tmp_path: Path) -> None:
    spec = write_yaml(tmp_path / "bad.yaml", tiny_spec(regularization={"dropout": 1.5}))
    result = kjobs_cli("submit", str(spec))
    assert result.returncode == 4
    assert "422 Invalid request" in result.stderr
    assert "regularization.dropout" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_spec_file_that_is_not_yaml_is_a_usage_error(kjobs_cli: Kjobs, tmp_path: Path) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text("training: [epochs\n")
    result = kjobs_cli("submit", str(spec))
    assert result.returncode == 2
    assert "not valid JSON or YAML" in result.stderr


def test_an_unreachable_service_exits_5(kjobs_cli: Kjobs) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = kjobs_cli("ls", "--url", url)
    assert result.returncode == 5
    assert f"no answer from {url}" in result.stderr
    assert "Traceback" not in result.stderr


def test_submit_ls_show_cancel_and_download_of_a_queued_job(kjobs_cli: Kjobs, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:12]
    spec = write_yaml(tmp_path / "spec.yaml", tiny_spec(resources={"queue": "gpu"}))
    submitted = kjobs_cli("submit", str(spec), "--preset", "l2", "--epochs", "4", "--tag", f"run={run}")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert JOB_ID.match(job_id)
    listed = kjobs_cli("ls", "--tag", f"run={run}", "--status", "queued")
    header, *rows = (line.split("\t") for line in listed.stdout.splitlines())
    assert header == ["id", "name", "status", "epochs", "test_accuracy", "created"]
    assert [row[:4] for row in rows] == [[job_id, "tiny", "queued", "0/4"]]
    shown = kjobs_cli("show", job_id, "--json")
    job = json.loads(shown.stdout)
    assert (job["preset"], job["spec"]["regularization"]["l2"], job["tags"]) == ("l2", 0.0001, {"run": run})
    assert "\x1b[" not in listed.stdout + shown.stdout, "no colour codes in a pipe"
    download = kjobs_cli("download", job_id, "-o", str(tmp_path / "model.keras"))
    assert download.returncode == 4
    assert "409 Conflict" in download.stderr
    assert not (tmp_path / "model.keras").exists()
    cancelled = kjobs_cli("cancel", job_id)
    assert cancelled.stdout.strip() == f"{job_id} cancelled"


def test_an_unknown_job_exits_4_with_the_problem_on_stderr(kjobs_cli: Kjobs) -> None:
    result = kjobs_cli("show", "0" * 24)
    assert result.returncode == 4
    assert result.stderr.startswith("error: 404 Not found:")


def test_study_commands(kjobs_cli: Kjobs, tmp_path: Path) -> None:
    request = {
        "name": "cli",
        "base": tiny_spec(resources={"queue": "gpu"}),
        "variants": [
            {"name": "plain"},
            {"name": "dropout", "overrides": {"regularization": {"dropout": 0.2}}},
        ],
        "max_parallel": 1,
    }
    submitted = kjobs_cli("study", "submit", str(write_yaml(tmp_path / "study.yaml", request)))
    study_id = submitted.stdout.strip()
    assert JOB_ID.match(study_id), submitted.stderr
    shown = kjobs_cli("study", "show", study_id).stdout
    assert "1 held, 1 queued" in shown
    assert {line.split("\t")[1] for line in shown.splitlines() if line[:1].isdigit()} == {"plain", "dropout"}
    assert study_id in kjobs_cli("study", "ls").stdout
    report = kjobs_cli("study", "report", study_id, "--format", "csv").stdout
    assert len(list(csv.DictReader(io.StringIO(report)))) == 2
    assert kjobs_cli("study", "cancel", study_id).stdout.strip() == f"{study_id} 2 cancelled"


@pytest.mark.e2e
@pytest.mark.usefixtures("worker")
def test_submit_follow_of_a_tiny_job_exits_0_with_the_epoch_table(kjobs_cli: Kjobs, tmp_path: Path) -> None:
    spec = write_yaml(tmp_path / "spec.yaml", tiny_spec())
    result = kjobs_cli("submit", str(spec), "--epochs", "3", "--name", "followed", "--follow")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert JOB_ID.match(lines[0])
    header = lines.index("epoch\tloss\taccuracy\tval_loss\tval_accuracy\tseconds")
    rows = [line.split("\t") for line in lines[header + 1 : header + 4]]
    assert [row[0] for row in rows] == ["1", "2", "3"]
    assert all(float(row[2]) > 0 for row in rows)
    assert "status: succeeded" in lines
    assert re.search(r"^test accuracy\s+[01]\.\d{4}$", result.stdout, re.MULTILINE)
    assert "\x1b[" not in result.stdout


@pytest.mark.e2e
@pytest.mark.usefixtures("worker")
def test_metrics_as_csv_has_a_header_and_a_row_per_epoch(kjobs: KJobsClient, kjobs_cli: Kjobs) -> None:
    job = kjobs.submit(tiny_spec(training={"epochs": 2}))
    assert [event for event in kjobs.events(job.id)][-1].status == "succeeded"  # type: ignore[union-attr]
    result = kjobs_cli("metrics", job.id, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert result.stdout.startswith("epoch,loss,accuracy,val_loss,val_accuracy,")
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert float(rows[1]["val_accuracy"]) >= 0
    as_json = json.loads(kjobs_cli("metrics", job.id, "--format", "json", "--after-epoch", "1").stdout)
    assert [record["epoch"] for record in as_json] == [2]


@pytest.mark.e2e
@pytest.mark.usefixtures("worker")
def test_following_a_job_that_gets_cancelled_exits_3(
    kjobs: KJobsClient, cli_env: dict[str, str], tmp_path: Path
) -> None:
    long = tiny_spec(dataset={"train_limit": 1200}, training={"epochs": 30, "batch_size": 8})
    job = kjobs.submit(long)
    with subprocess.Popen(
        [sys.executable, "-m", "cli.main", "follow", job.id],
        cwd=REPO_ROOT,
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as follower:
        wait_for(lambda: kjobs.metrics(job.id).last_epoch >= 1, timeout=180, what="a first epoch")
        kjobs.cancel(job.id)
        stdout, stderr = follower.communicate(timeout=RUN_TIMEOUT_SECONDS)
    assert follower.returncode == 3, stderr
    assert "status: cancelled" in stdout.splitlines()
    assert re.search(r"^stop reason\s+cancelled$", stdout, re.MULTILINE)


def test_a_waiting_job_s_place_in_show_and_queue(kjobs_cli: Kjobs, tmp_path: Path) -> None:
    spec = write_yaml(tmp_path / "spec.yaml", tiny_spec(resources={"queue": "gpu"}))
    job_id = kjobs_cli("submit", str(spec), "--priority", "high").stdout.strip()
    assert JOB_ID.match(job_id)
    shown = dict(line.split(maxsplit=1) for line in kjobs_cli("show", job_id).stdout.splitlines())
    assert shown["priority"] == "high"
    assert shown["waiting"].startswith("#"), shown["waiting"]
    assert shown["waiting"].endswith("no live worker takes queue gpu: it starts once one does")
    listed = kjobs_cli("queue")
    assert listed.returncode == 0, listed.stderr
    counts, waiting_jobs = listed.stdout.strip().split("\n\n")
    title, *lines = counts.splitlines()
    header, *rows = (line.split("\t") for line in lines)
    assert title == "Your jobs by queue and priority"
    assert header == ["queue", "slots", "priority", "waiting", "released"]
    assert ["gpu", "0", "high", "1", "0"] in rows
    title, *lines = waiting_jobs.strip().splitlines()
    waiting_header, *waiting = (line.split("\t") for line in lines)
    assert (title, waiting_header) == ("Your waiting jobs", ["queue", "position", "priority", "id"])
    assert [row[2:] for row in waiting if row[3] == job_id] == [["high", job_id]]
    kjobs_cli("cancel", job_id)
