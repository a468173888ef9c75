"""Keras callbacks of a training job, one concern each: stopping, early stopping, recording.

The recorder also commits each epoch's checkpoint (see ``worker.checkpoints``).
"""

import logging
import math
import time
from typing import Any

import keras

from shared.errors import StaleAttempt, TrainingError
from shared.jobs.store import JobStore
from shared.models.jobs import BestEpoch, EpochRecord, JobStatus, StopReason, utc_now
from shared.studies.search import Judge
from worker.checkpoints import Checkpoint, Checkpointer
from worker.lease import AttemptSignals
from worker.retry import with_retries

log = logging.getLogger(__name__)

_STOP_STATUSES = frozenset({JobStatus.CANCELLING, JobStatus.CANCELLED})


class StopController(keras.callbacks.Callback):  # type: ignore[misc]
    """Stops training at a batch end on a cancel request or when the runtime limit passes, and
    abandons it when the attempt has lost its lease to a newer one.

    The cancel request is read from Redis at most every ``check_seconds``, not on every batch;
    the deadline and the lease cost a clock read and a flag.
    """

    def __init__(
        self,
        store: JobStore,
        job_id: str,
        max_runtime_seconds: float,
        check_seconds: float,
        elapsed_before: float = 0.0,
        signals: AttemptSignals | None = None,
    ) -> None:
        super().__init__()
        self.store, self.job_id = store, job_id
        self.max_runtime_seconds, self.check_seconds = max_runtime_seconds, check_seconds
        self.elapsed_before = elapsed_before
        self.signals = signals or AttemptSignals()
        self.reason: StopReason | None = None
        self.preempted_by: str | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.signals.fitting.set()
        self._started = time.monotonic()
        self.reason = None
        self._deadline = self._started + self.max_runtime_seconds - self.elapsed_before
        self._next_check = self._started + self.check_seconds

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.signals.fitting.clear()

    def elapsed(self) -> float:
        """Seconds of training so far, earlier attempts included: what the runtime limit counts."""
        return self.elapsed_before + time.monotonic() - self._started

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.signals.lost.is_set():
            raise StaleAttempt(f"job {self.job_id}: this attempt lost its lease; another one goes on")
        now = time.monotonic()
        if now >= self._deadline:
            self._stop(StopReason.MAX_RUNTIME)
        elif now >= self._next_check:
            self._next_check = now + self.check_seconds
            if self._cancel_requested():
                self._stop(StopReason.CANCELLED)

    def _cancel_requested(self) -> bool:
        try:
            return self.store.status(self.job_id) in _STOP_STATUSES
        except Exception as exc:  # a lost read must not end training; the next check retries
            log.warning("job %s: cannot read a cancel request: %s", self.job_id, exc)
            return False

    def preempt_if_asked(self, epoch: int) -> None:
        """Stop now, at the end of the committed ``epoch``, if a job of a higher priority asked
        for this one's slot (read once an epoch; a lost read leaves it to the next epoch)."""
        try:
            self.preempted_by = self.store.preemption_asked(self.job_id)
        except Exception as exc:
            log.warning("job %s: cannot read a preemption request: %s", self.job_id, exc)
            return
        if self.preempted_by is not None:
            log.info("job %s: preempted at epoch %d by job %s", self.job_id, epoch, self.preempted_by)
            self._stop(StopReason.PREEMPTED)

    def prune(self, epoch: int) -> None:
        """The search's pruner stops this trial at ``epoch``, which is committed: training ends
        now, with that epoch's weights."""
        log.info("job %s: pruned at epoch %d", self.job_id, epoch)
        self._stop(StopReason.PRUNED)

    def _stop(self, reason: StopReason) -> None:
        if self.reason is None:
            log.info("job %s: stopping at the next batch end (%s)", self.job_id, reason.value)
        self.reason = reason
        self.model.stop_training = True


class GuardedEarlyStopping(keras.callbacks.EarlyStopping):  # type: ignore[misc]
    """Keras's early stopping, blind to an epoch that the stop controller cut short, and able
    to carry its state (wait, best, best epoch, best weights) across attempts.

    Keras still validates and ends a cut-short epoch; judging it could make an unrecorded epoch
    the best one, and restore its weights.
    """

    def __init__(self, controller: StopController, **options: Any) -> None:
        super().__init__(**options)
        self.controller = controller
        self._resume: tuple[dict[str, Any], list[Any] | None] | None = None

    def resume_from(self, state: dict[str, Any], best_weights: list[Any] | None) -> None:
        """Continue from a checkpoint's state rather than afresh."""
        self._resume = (state, best_weights)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        if self._resume is not None:
            state, self.best_weights = self._resume
            self.wait, self.best, self.best_epoch = state["wait"], state["best"], state["best_epoch"]
            self.stopped_epoch = state.get("stopped_epoch", 0)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.controller.reason is None:
            super().on_epoch_end(epoch, logs)

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps (the best weights go beside it, as arrays)."""
        best = None if self.best is None else float(self.best)
        return {
            "wait": int(self.wait),
            "best": best,
            "best_epoch": int(self.best_epoch),
            "stopped_epoch": int(self.stopped_epoch),
        }

    def best_so_far(self) -> BestEpoch | None:
        """The best epoch as early stopping judges it (with its min_delta and start epoch)."""
        if self.best is None:
            return None
        return BestEpoch(epoch=self.best_epoch + 1, monitor=self.monitor, value=float(self.best))


class EpochRecorder(keras.callbacks.Callback):  # type: ignore[misc]
    """Commits each finished epoch: its checkpoint, then its record with the best epoch so far.

    An epoch cut short by the stop controller is neither recorded nor checkpointed: its numbers
    would mislead. With early stopping, its judgement of the best epoch is the one recorded.
    Redis outages are ridden out with retries; a write refused because a newer attempt owns
    the job ends this attempt (``StaleAttempt``).
    """

    def __init__(
        self,
        store: JobStore,
        job_id: str,
        attempt: int,
        controller: StopController,
        checkpointer: Checkpointer,
        stopping: GuardedEarlyStopping | None,
        *,
        train_samples: int,
        monitor: tuple[str, str],
        retry_seconds: float,
        resumed: tuple[int, BestEpoch | None] = (0, None),
        judge: Judge | None = None,
    ) -> None:
        super().__init__()
        self.judge = judge
        self.store, self.job_id, self.attempt = store, job_id, attempt
        self.controller, self.checkpointer, self.stopping = controller, checkpointer, stopping
        self.train_samples, self.retry_seconds = train_samples, retry_seconds
        (self.monitor, self.mode), self.resumed = monitor, resumed
        self.last_epoch, self.best = resumed

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.last_epoch, self.best = self.resumed
        self.committed_weights: list[Any] = self.model.get_weights()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()
        self._train_seconds: float | None = None

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        # Validation starts: the epoch's training is over, which is what throughput measures.
        if self._train_seconds is None:
            self._train_seconds = time.perf_counter() - self._started

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.controller.reason is not None:
            return
        record = self._record(epoch + 1, logs or {}, time.perf_counter() - self._started)
        self._track_best(record)
        self.checkpointer.save(record.epoch, self._checkpoint())
        with_retries(
            lambda: self.store.append_epoch(self.job_id, record, self.best),
            f"job {self.job_id}: recording epoch {record.epoch}",
            self.retry_seconds,
        )
        self.checkpointer.prune(record.epoch)
        self.last_epoch = record.epoch
        # What a stop in the middle of the next epoch falls back to: the weights just committed.
        self.committed_weights = self.model.get_weights()
        if self.judge is not None and self.judge(record):
            self.controller.prune(record.epoch)
        elif record.epoch < self.params.get("epochs", record.epoch + 1):
            # The last epoch ends the job anyway: a preemption there would only requeue it.
            self.controller.preempt_if_asked(record.epoch)

    def _checkpoint(self) -> Checkpoint:
        state: dict[str, Any] = {"elapsed_seconds": self.controller.elapsed()}
        best_weights = None
        if self.stopping is not None:
            state["early_stopping"] = self.stopping.state()
            best_weights = self.stopping.best_weights
        return Checkpoint(self.model, state, best_weights)

    def _record(self, epoch: int, logs: dict[str, Any], seconds: float) -> EpochRecord:
        values = {name: float(value) for name, value in logs.items()}
        for name, value in values.items():
            if not math.isfinite(value):
                raise TrainingError(f"{name} became {value} in epoch {epoch}; try a lower learning rate")
        accuracy, val_accuracy = values.get("accuracy"), values.get("val_accuracy")
        data_loss, val_data_loss = values.get("data_loss"), values.get("val_data_loss")
        if accuracy is not None:
            gap = None if val_accuracy is None else accuracy - val_accuracy
        else:
            gap = None if val_data_loss is None or data_loss is None else val_data_loss - data_loss
        train_seconds = self._train_seconds or seconds
        return EpochRecord(
            epoch=epoch,
            loss=values["loss"],
            accuracy=accuracy,
            val_loss=values.get("val_loss"),
            val_accuracy=val_accuracy,
            mae=values.get("mae"),
            val_mae=values.get("val_mae"),
            data_loss=data_loss,
            val_data_loss=val_data_loss,
            regularization_penalty=self._penalty(),
            generalization_gap=gap,
            learning_rate=float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            epoch_seconds=seconds,
            samples_per_second=self.train_samples / train_seconds if train_seconds > 0 else 0.0,
            attempt=self.attempt,
            at=utc_now(),
        )

    def _penalty(self) -> float:
        return float(sum(float(keras.ops.convert_to_numpy(loss)) for loss in self.model.losses))

    def _track_best(self, record: EpochRecord) -> None:
        if self.stopping is not None:
            self.best = self.stopping.best_so_far()
            return
        value = getattr(record, self.monitor)
        if value is None:
            return
        better = self.best is None or (
            value > self.best.value if self.mode == "max" else value < self.best.value
        )
        if better:
            self.best = BestEpoch(epoch=record.epoch, monitor=self.monitor, value=value)
