"""One architecture trained on one afx task, evaluated on held-out material of another origin, saved to the library.

:func:`run` makes the task's training material (``models.material``, at each of the task's training knob values)
and held-out material (:mod:`models.afx.heldout`), trains the model within a time box (frame models pretrain their
front-end first, Sec. 4.2.1), renders the held-out material through it aligned with the input, and scores it with
:mod:`models.afx.metrics` against the real effect's output, beside the dry input's scores (averaged over the knob
values); reverbs also get the T60 error of the response to an impulse. ``arch`` ``"tcn"`` trains our conditioned
TCN instead; for tasks whose effect declares its LFO clocks (the Leslie's), ``"lfo-tcn"`` is our TCN told the
LFOs' phases and ``"rotors"`` a gray-box rotating speaker told them (:mod:`models.afx.tcn_baseline`); with
``RunSettings.clocks`` the context-frame architectures (CRAFx, CWAFx, CSAFx) are told them too
(:mod:`models.afx.clocks`). The model
is written with :func:`models.library.save_model`, its sidecar naming the task's effect, the knob, the command, the
budget and the held-out figures (``heldout_goals``: closer than dry in the task's key figures at every knob value).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.afx import ARCHITECTURES, build, parameter_count
from models.afx.framing import render, render_with_examples, told_clocks
from models.afx.losses import DEFAULT_LOSS
from models.afx.metrics import METRICS, t60_seconds
from models.afx.network import AfxNetwork, wrap
from models.afx.rotor_network import RotorNetwork
from models.afx.segment import Segment
from models.afx.tasks import Task, segments, task
from models.afx.tcn_baseline import build_lfo_tcn, build_rotors, build_tcn, tcn_control, train_tcn
from models.afx.train import TrainSettings, dry_loss, every_frame_loss, train
from models.fit import FitProgress
from models.library import ModelInfo, save_model
from models.pedals.lfo_tcn import LFOTCN
from models.tcn import ConditionedTCN

TCN = "tcn"
LFO_TCN = "lfo-tcn"
ROTORS = "rotors"
OURS = (TCN, LFO_TCN, ROTORS)  # our networks, beside the thesis's architectures
OurNetwork = ConditionedTCN | LFOTCN | RotorNetwork  # what they build
SAMPLE_RATE_HZ = 16_000  # the thesis's rate; every model of the bench runs at it
RTF_SECONDS = 4.0
CLOCKED_ARCHS = ("crafx", "cwafx", "csafx")  # the thesis's architectures that can be told the effect's clocks


@dataclass(frozen=True)
class RunSettings:
    minutes: float = 10.0
    steps: int = 1_000_000  # step budget of the end-to-end training: it ends at this or at ``minutes``, first
    seconds: float = 60.0  # training material per knob value
    heldout_seconds: float = 20.0  # held-out material per knob value
    batch_size: int = 8
    learning_rate: float = 1e-3
    pretrain_steps: int = 200
    seed: int = 0
    settings: dict[str, Any] = field(default_factory=dict)  # architecture settings over the thesis's
    clocks: bool = False  # tell CRAFx, CWAFx or CSAFx the task's LFO clock phases (tasks that declare clocks)
    loss: str | None = None  # a name of models.afx.losses.LOSSES; None: the architecture's (the thesis's)


@dataclass
class RunResult:
    arch: str
    task: str
    info: ModelInfo
    heldout: dict[str, dict[str, float]]  # "model", "dry", "ratio" -> metric -> value
    parameters: int
    train_seconds: float
    steps: int
    told_phases: bool = False  # the network was told the effect's LFO phases (models.afx.clocks, lfo-tcn, rotors)


def model_for(
    arch: str, knobs: int, settings: dict[str, Any], the_task: Task | None = None, clocks: bool = False
) -> AfxNetwork | OurNetwork:
    """The library network to train: an afx architecture (with the task's knobs; with ``clocks``, told the phases
    of ``the_task``'s LFO clocks), our TCN, or our TCN or gray-box rotors told those phases."""
    if arch == TCN:
        return build_tcn(knobs)
    if arch == LFO_TCN:
        if the_task is None:
            raise ValueError("lfo-tcn needs the task whose LFO clocks it is told")
        return build_lfo_tcn(the_task, SAMPLE_RATE_HZ)
    if arch == ROTORS:
        if the_task is None:
            raise ValueError("rotors needs the task whose LFO clocks it is told")
        return build_rotors(the_task, knobs, SAMPLE_RATE_HZ)
    if clocks:
        if arch not in CLOCKED_ARCHS:
            raise ValueError(f"only {', '.join(CLOCKED_ARCHS)} can be told the clocks, not {arch}")
        if the_task is None or the_task.clocks is None:
            name = "no task" if the_task is None else f"the {the_task.name} task"
            raise ValueError(f"{name} declares no LFO clocks to tell {arch} (the leslie tasks do)")
        settings = {**settings, "clocks": the_task.clocks()}
    return wrap(arch, build(arch, {**settings, "knobs": knobs}))


def told_phases(network: torch.nn.Module) -> bool:
    """Whether a bench network is told its effect's LFO phases (``lfo-tcn``, ``rotors``, a clocked afx model)."""
    if isinstance(network, AfxNetwork):
        return told_clocks(network.model)
    return isinstance(network, RotorNetwork) or (isinstance(network, LFOTCN) and bool(network.lfo))


def control_inputs(network: torch.nn.Module) -> int:
    """How many control inputs a bench network takes (our TCNs take one even for a task without knobs)."""
    if isinstance(network, AfxNetwork):
        return network.knobs
    if isinstance(network, LFOTCN):
        return network.tcn.config.cond_dim
    if isinstance(network, RotorNetwork):
        return max(1, network.knobs)
    assert isinstance(network, ConditionedTCN), "the bench runs afx networks and our TCNs"
    return network.config.cond_dim


def render_segment(network: torch.nn.Module, segment: Segment) -> np.ndarray:
    """The network's aligned output for a segment's dry signal, at the segment's control."""
    with torch.no_grad():
        if isinstance(network, AfxNetwork):
            control = torch.as_tensor(segment.control) if len(segment.control) else None
            return render(network.model, segment.dry, control)
        assert isinstance(network, OurNetwork), "the bench trains afx networks and our TCNs"
        device = next(network.parameters()).device
        stream = network.stream(tcn_control(segment.control).to(device))
        x = torch.from_numpy(segment.dry[None, None].astype(np.float32)).to(device)
        return stream.process(x)[0, 0].cpu().numpy()


# The figures a model must beat the dry input on, at every knob value, to meet its goals (the others are recorded).
KEY_METRICS: dict[str, tuple[str, ...]] = {
    "leslie": ("ms_mse", "mrstft"),
    "modulation": ("ms_mse", "mrstft"),
    "reverb": ("mrstft", "logpower_mse", "t60_error"),
}
DEFAULT_KEY_METRICS = ("mrstft",)


def segment_scores(
    network: torch.nn.Module, the_task: Task, segment: Segment, estimate: np.ndarray | None = None
) -> dict[str, dict[str, float]]:
    """The metrics of the model and of the dry input on one held-out segment; reverbs also the T60 error of the
    response to an impulse at the segment's knob value. ``estimate`` is the network's render of the segment when
    it is already at hand."""
    if estimate is None:
        estimate = render_segment(network, segment)
    out = {
        "model": {name: metric(segment.wet, estimate, SAMPLE_RATE_HZ) for name, metric in METRICS.items()},
        "dry": {name: metric(segment.wet, segment.dry, SAMPLE_RATE_HZ) for name, metric in METRICS.items()},
    }
    if the_task.family == "reverb":
        impulse = np.zeros(int((the_task.tail_seconds + 0.5) * SAMPLE_RATE_HZ), np.float32)
        impulse[0] = 1.0
        value = the_task.knob.value_at(float(segment.control[0])) if the_task.knob is not None else 0.0
        target = t60_seconds(the_task.process(impulse.astype(np.float64), SAMPLE_RATE_HZ, value), SAMPLE_RATE_HZ)
        probe = Segment(impulse, impulse, segment.control)
        out["model"]["t60_error"] = abs(t60_seconds(render_segment(network, probe), SAMPLE_RATE_HZ) - target)
        out["dry"]["t60_error"] = abs(t60_seconds(impulse, SAMPLE_RATE_HZ) - target)
    return out


def _ratios(scores: dict[str, dict[str, float]]) -> dict[str, float]:
    return {k: (v / scores["dry"][k] if scores["dry"][k] else float("inf")) for k, v in scores["model"].items()}


def average_scores(per_segment: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Model and dry figures averaged over segments, and their ratios."""
    out = {who: {k: float(np.mean([s[who][k] for s in per_segment])) for k in per_segment[0][who]} for who in
           ("model", "dry")}  # fmt: skip
    out["ratio"] = _ratios(out)
    return out


def evaluate(network: torch.nn.Module, the_task: Task, heldout: list[Segment]) -> dict[str, dict[str, float]]:
    """Metrics of the model and of the dry input on held-out segments (averaged), and their ratios."""
    network.eval()
    return average_scores([segment_scores(network, the_task, segment) for segment in heldout])


def goals(the_task: Task, heldout: list[Segment], per_segment: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Whether the model is closer to the effect than the dry input in the task's key figures at every knob value
    (a sidecar block: ``meets_goals`` false makes ``reatimbre models`` and every render say so)."""
    keys = KEY_METRICS.get(the_task.family, DEFAULT_KEY_METRICS)
    points: list[dict[str, Any]] = []
    for segment, scores in zip(heldout, per_segment, strict=True):
        value = None
        if the_task.knob is not None and len(segment.control):
            value = round(the_task.knob.value_at(float(segment.control[0])), 6)
        ratio = _ratios(scores)
        points.append({"value": value, "ratio": {k: ratio[k] for k in keys if k in ratio}})
    return {
        "goal": f"closer to the effect than the dry input in {', '.join(keys)} at every knob value (ratio < 1)",
        "knob": the_task.knob.name if the_task.knob is not None else None,
        "per_knob_value": points,
        "meets_goals": all(r < 1 for point in points for r in point["ratio"].values()),
    }


def realtime_factor(
    network: torch.nn.Module, seconds: float = RTF_SECONDS, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Seconds of audio per second of rendering, at :data:`SAMPLE_RATE_HZ` samples per second of audio, through
    the library's stream in 16,384-sample blocks (after a warm-up block); at another rate, scale by the rates.
    ``clock`` measures the rendering: wall time, or ``time.process_time`` for the CPU time the process used (with
    one thread, what an unloaded core would take)."""
    network.eval()
    assert isinstance(network, AfxNetwork | OurNetwork), "the bench times afx networks and our TCNs"
    knobs = control_inputs(network)
    device = next(network.parameters()).device
    stream = network.stream(torch.zeros(knobs, device=device))
    block = 16_384
    noise = torch.randn(1, 1, int(seconds * SAMPLE_RATE_HZ), device=device) * 0.1
    stream.process(noise[..., :block])
    started = clock()
    for start in range(0, noise.shape[-1], block):
        stream.process(noise[..., start : start + block])
    return seconds / (clock() - started)


def run(
    arch: str,
    task_name: str,
    settings: RunSettings,
    directory: Path,
    name: str,
    command: str,
    device: torch.device | str | None = None,
    progress: Callable[[FitProgress], None] | None = None,
) -> RunResult:
    """Train ``arch`` on ``task_name`` for ``settings.minutes``, evaluate it and save it as ``name``."""
    the_task = task(task_name)
    if arch not in OURS and arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join([*ARCHITECTURES, *OURS])})")
    knobs = 0 if the_task.knob is None else 1
    network = model_for(arch, knobs, settings.settings, the_task, settings.clocks)  # a wrong pairing fails first
    training = segments(task_name, settings.seconds, SAMPLE_RATE_HZ, settings.seed)
    heldout = segments(task_name, settings.heldout_seconds, SAMPLE_RATE_HZ, settings.seed + 1000, heldout=True)
    budget = settings.minutes * 60
    if isinstance(network, OurNetwork) and settings.loss:
        raise ValueError(f"a loss is chosen for the thesis's architectures only ({arch} trains on mae + mrstft)")
    estimates: list[np.ndarray | None] = [None] * len(heldout)  # renders of the held-out segments, where made
    if isinstance(network, OurNetwork):
        fitted = train_tcn(
            network, training, heldout, budget, settings.seed, steps=settings.steps, progress=progress, device=device
        )
        network = network.cpu().eval()
        loss_record: dict[str, Any] = {"loss": "mae + mrstft"}
    else:
        model = network.model
        train_settings = TrainSettings(
            steps=settings.steps, batch_size=settings.batch_size, learning_rate=settings.learning_rate,
            max_seconds=budget, pretrain_steps=settings.pretrain_steps, seed=settings.seed, loss=settings.loss,
        )  # fmt: skip
        fitted = train(model, arch, training, None, train_settings, heldout, progress=progress, device=device)
        network = network.cpu().eval()
        # One pass of the model over each held-out segment gives both its render and its every-frame loss.
        renders = [render_with_examples(model, s.dry, torch.as_tensor(s.control) if len(s.control) else None)
                   for s in heldout]  # fmt: skip
        loss_record = {
            "loss": train_settings.loss or DEFAULT_LOSS[arch],
            "model": fitted.best_validation,
            "dry": dry_loss(model, arch, heldout, None, train_settings),
            "every_frame": every_frame_loss(model, arch, heldout, train_settings.loss, [r[1] for r in renders]),
        }
        estimates = [r[0] for r in renders]
    per_segment = [segment_scores(network, the_task, s, e) for s, e in zip(heldout, estimates, strict=True)]
    scores = average_scores(per_segment)
    parameters = parameter_count(network)
    sidecar: dict[str, Any] = {
        "description": f"{arch} trained on the afx task {task_name}: {the_task.description}",
        "sample_rate": SAMPLE_RATE_HZ,
        "knobs": [] if the_task.knob is None else [the_task.knob.to_dict()],
        "tail_seconds": the_task.tail_seconds,
        "emulates": {"task": task_name, "family": the_task.family, "effect": the_task.description},
        "training": {
            "command": command,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "settings": asdict(settings),
            "knob_values": list(the_task.training_values),
            "told_phases": told_phases(network),  # of the effect's LFO clocks (the architecture records them)
            "material": f"models.material programs, {settings.seconds:g} s per knob value at {SAMPLE_RATE_HZ} Hz",
            **fitted.record(),
            "validation_history": fitted.history,  # step, seconds, validation loss (the architecture's)
        },
        "metrics": {
            "heldout": {
                **scores,
                "material": f"models.afx.heldout (another origin), {settings.heldout_seconds:g} s per knob value",
                "training_loss": loss_record,
            },
            "heldout_goals": goals(the_task, heldout, per_segment),
        },
    }
    if isinstance(network, AfxNetwork):
        sidecar.update(network.describe())
    info = save_model(network, sidecar, directory, name)
    return RunResult(arch, task_name, info, scores, parameters, fitted.seconds, fitted.steps, told_phases(network))
