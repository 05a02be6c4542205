"""The training loop shared by shipped-effect training and steering.

:func:`fit` runs Adam with a cosine learning-rate decay driven by whichever runs out first, the step budget or the
time budget; validates now and then, keeps the best weights, stops early on a plateau, and on Ctrl-C returns the
best weights so far instead of losing the run. A plain ``kill`` (SIGTERM) counts as Ctrl-C while :func:`fit` runs
in the main thread: a run started in the background, where Ctrl-C cannot reach it and SIGINT is ignored, can still
be stopped with its best weights kept.

On a CUDA ``device`` the next batch is prepared on a background thread (and copied from pinned memory) while the
current step runs, so the GPU does not wait for the crops; ``bf16`` runs the forward pass under bfloat16 autocast
(CUDA only; the loss is taken in float32). On the CPU nothing of this changes what or how :func:`fit` trains.
"""

from __future__ import annotations

import copy
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TypeVar

import torch
from torch import nn

from models.device import module_device
from models.errors import ReaTimbreError

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # input (B,1,T+rf-1), control (B,D), target (B,1,T)
ModelT = TypeVar("ModelT", bound=nn.Module)  # what fit trains is also what its validation function gets


@dataclass
class FitProgress:
    """What :func:`fit` reports after each step."""

    step: int
    fraction: float  # 0..1 of the budget used
    train_loss: float
    best_validation: float | None
    elapsed_seconds: float
    remaining_seconds: float

    def summary(self) -> str:
        """One progress line: step, loss, best validation, time used and left."""
        best = f"{self.best_validation:.4f}" if self.best_validation is not None else "-"
        return (
            f"step {self.step:5d}  loss {self.train_loss:.4f}  best validation {best}  {self.fraction:5.1%}  "
            f"{self.elapsed_seconds:4.0f} s elapsed, ~{self.remaining_seconds:4.0f} s left"
        )


INTERRUPTED = "interrupted"  # FitResult.stopped_because after Ctrl-C or SIGTERM


def raise_if_interrupted(stopped_because: str) -> None:
    """Pass on a Ctrl-C (or SIGTERM) that :func:`fit` turned into an early stop, once the caller has saved what it
    trained: KeyboardInterrupt, so that no further training starts (``train-effect --effect all``, ``afx-bench``,
    ``coach-train``) and the command exits with status 130."""
    if stopped_because == INTERRUPTED:
        raise KeyboardInterrupt


@dataclass
class FitResult:
    """The outcome of :func:`fit`; ``model`` holds the best weights found."""

    steps: int
    seconds: float
    best_validation: float | None
    stopped_because: str
    history: list[dict] = field(default_factory=list)
    device: str = "cpu"  # torch device type trained on
    bf16: bool = False  # whether the forward passes ran under bfloat16 autocast
    notes: dict = field(default_factory=dict)  # what the caller did to the model after the fit, for the sidecar

    def then(self, later: FitResult) -> FitResult:
        """This run followed by ``later`` on the same model: steps and seconds added, ``later``'s history shifted
        by them, ``later``'s best validation and reason to stop."""
        shifted = [
            {**entry, "step": entry["step"] + self.steps, "seconds": round(entry["seconds"] + self.seconds, 2)}
            for entry in later.history
        ]
        return replace(
            later, steps=self.steps + later.steps, seconds=self.seconds + later.seconds, history=self.history + shifted
        )

    def record(self) -> dict:
        """The run's summary for a sidecar: steps, seconds, why it stopped, best validation loss, device."""
        return {
            "steps": self.steps,
            "seconds": round(self.seconds, 1),
            "stopped_because": self.stopped_because,
            "best_validation_loss": self.best_validation,
            "device": self.device,
            "bf16": self.bf16,
            **self.notes,
        }


class BatchFeeder:
    """Batches from ``next_batch`` on ``device``, in step order; with ``prefetch`` the next one is made (and, on
    CUDA, pinned and copied asynchronously) on a background thread while the caller trains on the current one.

    ``next_batch`` is called for steps 0, 1, 2, ... one at a time and in order either way, so a seeded source gives
    the same batches with or without prefetching.
    """

    def __init__(self, next_batch: Callable[[int], Batch], device: torch.device, prefetch: bool):
        self._next_batch = next_batch
        self._device = device
        self._pin = prefetch and device.type == "cuda"
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="batch-feeder") if prefetch else None
        self._pending: tuple[int, Future[Batch]] | None = None

    def _make(self, step: int) -> Batch:
        batch = self._next_batch(step)
        if self._pin:
            batch = tuple(t.pin_memory() for t in batch)  # type: ignore[assignment]
        x, cond, target = (t.to(self._device, non_blocking=self._pin) for t in batch)
        return x, cond, target

    def get(self, step: int) -> Batch:
        """The batch for ``step`` (steps must be asked for in order)."""
        if self._executor is None:
            return self._make(step)
        if self._pending is not None and self._pending[0] == step:
            batch = self._pending[1].result()
        else:
            batch = self._make(step)
        self._pending = (step + 1, self._executor.submit(self._make, step + 1))
        return batch

    def close(self) -> None:
        """Wait for a batch still being made (its errors are dropped) and stop the thread."""
        if self._executor is not None:
            if self._pending is not None:
                self._pending[1].cancel()
            self._executor.shutdown(wait=True)
            self._pending = None


def fit(
    model: ModelT,
    next_batch: Callable[[int], Batch],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    steps: int,
    max_seconds: float | None = None,
    learning_rate: float = 2e-3,
    warmup_fraction: float = 0.0,
    average_decay: float = 0.0,
    validate: Callable[[ModelT], float] | None = None,
    validate_every: int = 100,
    patience: int | None = None,
    progress: Callable[[FitProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: torch.device | str | None = None,
    prefetch: bool | None = None,
    bf16: bool = False,
) -> FitResult:
    """Train ``model`` in place and leave it holding the best weights (by validation, else the last).

    The learning rate rises linearly over the first ``warmup_fraction`` of the budget, then decays on a cosine.
    Validations during the warm-up, or before anything has beaten the starting weights, do not count towards
    ``patience`` (a model that starts as the identity often gets worse before it gets better). With
    ``average_decay`` > 0 an exponential moving average of the weights (decay per step) is what gets validated and
    returned: it smooths the step-to-step jitter of small, noisy batches.

    ``device`` (default: where the model is) is where the model is moved, trained and left, and where batches are
    copied; ``validate`` gets the model on it. ``prefetch`` (default: on CUDA only) makes the next batch on a
    background thread during each step. ``bf16`` autocasts the forward pass to bfloat16 (CUDA only).
    """
    device = torch.device(device) if device is not None else module_device(model)
    if bf16 and device.type != "cuda":
        raise ReaTimbreError(f"bf16 autocast needs a CUDA device; training runs on {device}")
    model.to(device)
    feeder = BatchFeeder(next_batch, device, device.type == "cuda" if prefetch is None else prefetch)
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    average = copy.deepcopy(model) if average_decay > 0 else None
    judged = average if average is not None else model  # the weights that are validated and kept
    start = time.monotonic()
    best_state = copy.deepcopy(model.state_dict())
    best_validation: float | None = None
    checks_without_gain = 0
    history: list[dict] = []
    step = 0
    stopped_because = "step budget"
    running_loss = math.nan

    def used_fraction() -> float:
        by_steps = step / steps
        by_time = (time.monotonic() - start) / max_seconds if max_seconds else 0.0
        return min(1.0, max(by_steps, by_time))

    def run_validation() -> bool:
        """Validate and keep the best weights; True when patience ran out."""
        nonlocal best_validation, best_state, checks_without_gain
        assert validate is not None  # called only when there is a validation set
        judged.eval()
        with torch.no_grad():
            score = float(validate(judged))
        model.train()
        history.append({"step": step, "seconds": round(time.monotonic() - start, 2), "validation": score})
        if best_validation is None or score < best_validation:
            best_validation, best_state, checks_without_gain = score, copy.deepcopy(judged.state_dict()), 0
        elif used_fraction() >= warmup_fraction and best_validation < history[0]["validation"]:  # start beaten
            checks_without_gain += 1
        return patience is not None and checks_without_gain >= patience

    if validate is not None:
        run_validation()  # the starting weights are a candidate too (they matter when resuming)
    model.train()
    try:
        with terminate_as_interrupt():
            while True:
                fraction = used_fraction()
                if fraction >= 1.0:
                    stopped_because = "time budget" if step < steps else "step budget"
                    break
                if should_stop is not None and should_stop():
                    stopped_because = "cancelled"
                    break
                warmup = min(1.0, max(0.01, fraction / warmup_fraction)) if warmup_fraction > 0 else 1.0
                for group in optimiser.param_groups:
                    group["lr"] = warmup * learning_rate * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * fraction)))
                x, cond, target = feeder.get(step)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    estimate = model(x, cond)
                loss = loss_fn(estimate.float(), target)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"training diverged at step {step} (loss {loss.item()})")
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimiser.step()
                step += 1
                if average is not None:
                    update_average(average, model, min(average_decay, step / (step + 10)))
                value = loss.item()
                running_loss = value if math.isnan(running_loss) else 0.95 * running_loss + 0.05 * value
                if validate is not None and step % validate_every == 0 and run_validation():
                    stopped_because = "plateau"
                    break
                if progress is not None:
                    elapsed = time.monotonic() - start
                    frac = used_fraction()
                    remaining = elapsed / frac * (1 - frac) if frac > 0 else math.inf
                    progress(FitProgress(step, frac, running_loss, best_validation, elapsed, remaining))
    except KeyboardInterrupt:
        stopped_because = INTERRUPTED
    finally:
        feeder.close()
    if validate is not None and (not history or history[-1]["step"] != step):
        run_validation()
    if validate is not None:
        model.load_state_dict(best_state)
    elif average is not None:
        model.load_state_dict(average.state_dict())
    model.eval()
    return FitResult(step, time.monotonic() - start, best_validation, stopped_because, history, device.type, bf16)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While in the main thread, turn SIGTERM into KeyboardInterrupt (so :func:`fit` stops as on Ctrl-C)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@torch.no_grad()
def update_average(average: nn.Module, model: nn.Module, decay: float) -> None:
    """Move ``average``'s weights towards ``model``'s: avg = decay * avg + (1 - decay) * current."""
    for kept, current in zip(average.parameters(), model.parameters(), strict=True):
        kept.lerp_(current, 1.0 - decay)
    for kept_buffer, current_buffer in zip(average.buffers(), model.buffers(), strict=True):
        kept_buffer.copy_(current_buffer)
