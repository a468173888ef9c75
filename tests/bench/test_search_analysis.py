"""The search benchmark's judgement of its runs (bench/search_analysis.py): progress in the order
epochs ended, epochs to come within a tolerance of the best, medians with runs that never
reached, the saving, and a study's overhead and where its trials' time went."""

import pytest

from bench.search_analysis import (
    Epoch,
    Saving,
    TrialTimes,
    epochs_to_reach,
    follow_ups,
    median_epochs,
    overhead,
    progress,
    quarters,
    reach,
    saving,
    seconds_to_reach,
    where_time_went,
)


def test_progress_takes_epochs_in_the_order_they_ended_across_trials() -> None:
    epochs = [
        Epoch(at=10.0, trial=0, epoch=1, val_accuracy=0.80, seconds=1.0),
        Epoch(at=12.0, trial=0, epoch=2, val_accuracy=0.90, seconds=1.0),
        Epoch(at=11.0, trial=1, epoch=1, val_accuracy=0.85, seconds=1.0),
        Epoch(at=13.0, trial=1, epoch=2, val_accuracy=0.84, seconds=1.0),
        Epoch(at=14.0, trial=2, epoch=1, val_accuracy=None, seconds=1.0),
    ]
    assert progress(epochs, created=8.0) == [(1, 0.80, 2.0), (2, 0.85, 3.0), (3, 0.90, 4.0)]


def test_epochs_to_reach_is_the_first_point_at_or_above_the_target() -> None:
    points = [(1, 0.80, 3.0), (4, 0.950, 7.5), (9, 0.958, 20.0)]
    assert epochs_to_reach(points, 0.95) == 4
    assert epochs_to_reach(points, 0.956) == 9
    assert epochs_to_reach(points, 0.96) is None
    assert seconds_to_reach(points, 0.95) == 7.5


def test_the_median_counts_a_run_that_never_reached_as_more_than_any() -> None:
    assert median_epochs([30, None, 10]) == 30
    assert median_epochs([None, None, 10]) is None
    assert median_epochs([40, 10]) == 25


def test_the_saving_is_a_lower_bound_when_the_slower_method_never_reached() -> None:
    assert saving(90.0, 30.0, 150) == Saving(3.0, False)
    assert saving(None, 30.0, 150).ratio == 5.0
    assert saving(None, 30.0, 150).at_least
    assert saving(30.0, None, 150).ratio is None


def test_reach_targets_the_best_of_every_run_of_every_method() -> None:
    runs = {
        "random": [
            [(5, 0.90, 2.0), (60, 0.940, 30.0)],
            [(9, 0.93, 4.0)],
            [(3, 0.91, 1.0), (100, 0.945, 50.0)],
        ],
        "tpe_asha": [[(4, 0.92, 3.0), (20, 0.946, 15.0)], [(7, 0.947, 6.0)], [(2, 0.90, 1.0)]],
    }
    found = reach(runs, 0.002, 150, "random", "tpe_asha")
    assert found["best"] == 0.947
    assert found["target"] == 0.945
    assert found["epochs_to_reach"] == {"random": [None, None, 100], "tpe_asha": [20, 7, None]}
    assert found["median"] == {"random": None, "tpe_asha": 20}
    assert (found["saving"], found["saving_is_lower_bound"]) == (7.5, True)
    assert found["median_seconds"] == {"random": None, "tpe_asha": 15.0}


def trial(worker: str, created: float, running: float, ended: float) -> TrialTimes:
    """A one-epoch trial: 0.5 s of setup, 1 s of training, the rest wrapping up."""
    return TrialTimes(worker, created, running, running + 0.5, running + 1.5, ended, 1.0)


def test_overhead_is_wall_time_against_the_training_shared_out_over_the_workers() -> None:
    trials = [trial("a", 0.0, 0.1, 2.0), trial("b", 0.0, 0.2, 2.2), trial("a", 2.1, 2.3, 4.0)]
    figures = overhead(created=0.0, completed=4.5, trials=trials, workers=2)
    assert figures["train_seconds"] == 3.0
    assert figures["ideal_seconds"] == 1.5
    assert figures["ratio"] == 3.0
    assert figures["overhead_percent"] == 200.0
    # The jobs ran 1.9 + 2.0 + 1.7 s: 2.8 s each worker, against 4.5 s of wall time.
    assert figures["job_seconds"] == 5.6
    assert figures["ideal_job_seconds"] == 2.8
    assert figures["overhead_over_jobs_percent"] == pytest.approx(60.7, abs=0.05)


def test_where_time_went_splits_a_trial_and_the_gaps_of_each_worker() -> None:
    trials = [trial("a", 0.0, 0.1, 2.0), trial("b", 0.0, 0.2, 2.2), trial("a", 2.1, 2.3, 4.0)]
    parts = where_time_went(0.0, trials)
    assert parts["queued_to_running"] == pytest.approx((0.1 + 0.2 + 0.2) / 3, abs=1e-3)
    assert parts["setup"] == 0.5
    assert parts["training"] == 1.0
    assert parts["wrap_up"] == pytest.approx((0.4 + 0.5 + 0.2) / 3, abs=1e-3)
    # Worker a: 0.1 before its first, 0.3 between; worker b: 0.2 before its first.
    assert parts["worker_idle_between_trials"] == pytest.approx(0.6 / 3, abs=1e-3)


def test_a_follow_up_runs_from_the_latest_ending_to_the_next_trial_s_creation() -> None:
    trials = [
        trial("a", 0.0, 0.1, 2.0),
        trial("b", 0.0, 0.2, 2.2),
        trial("a", 2.1, 2.3, 4.0),
        trial("b", 2.5, 2.6, 4.4),
    ]
    assert follow_ups(trials) == pytest.approx([0.1, 0.3])


def test_quarters_show_whether_a_cost_grows() -> None:
    assert quarters([1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]) == {
        "mean": 2.5,
        "first_quarter": 1.0,
        "last_quarter": 4.0,
    }
    assert quarters([1.0]) == {}
