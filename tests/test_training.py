"""The training pipeline end to end (tiny), the sidecar contract, and the training loop's guarantees."""

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from models.fit import fit
from models.library import find_model, load_info, load_model
from models.tcn import ConditionedTCN, TCNConfig


def test_tiny_training_run_writes_a_complete_sidecar(tiny_model: str) -> None:
    info = find_model(tiny_model)
    sidecar = json.loads(info.weights_path.with_suffix(".json").read_text())
    assert sidecar["architecture"]["type"] == "ConditionedTCN"
    assert (
        sidecar["receptive_field_samples"]
        == TCNConfig(**{k: v for k, v in sidecar["architecture"].items() if k != "type"}).receptive_field
    )
    assert sidecar["latency_samples"] == 0 and sidecar["sample_rate"] == 44_100
    assert [k["name"] for k in sidecar["knobs"]] == ["drive", "tone"]
    assert sidecar["emulates"]["effect"].startswith("pedalboard.Distortion")
    assert set(sidecar["emulates"]["parameters"]) == {"drive_db", "lowpass_cutoff_hz"}
    assert sidecar["training"]["command"].startswith("reatimbre train-effect")
    for who in ("model", "dry"):
        assert set(sidecar["metrics"]["heldout"][who]) == {"mrstft", "esr", "loudness_error_db"}
    # The weights are plain tensors (no pickle) and load back into the architecture.
    state = load_file(str(info.weights_path))
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert load_model(tiny_model).model.receptive_field == sidecar["receptive_field_samples"]


def _toy_problem():
    torch.manual_seed(0)
    model = ConditionedTCN(TCNConfig(channels=4, kernel_size=3, dilation_growth=2, layers=2))
    rf = model.receptive_field
    x = torch.randn(4, 1, 256 + rf - 1)
    target = 0.5 * x[..., rf - 1 :]
    cond = torch.zeros(4, 2)

    def validate(model: ConditionedTCN) -> float:
        with torch.no_grad():
            return float(torch.mean((model(x, cond) - target) ** 2))

    return model, (lambda step: (x, cond, target)), validate


def test_fit_learns_and_keeps_the_best_weights() -> None:
    model, batch, validate = _toy_problem()
    before = validate(model)
    result = fit(
        model, batch, torch.nn.functional.mse_loss, steps=150, learning_rate=1e-2, validate=validate, validate_every=25
    )
    assert result.steps == 150 and result.stopped_because == "step budget"
    assert validate(model) == pytest.approx(result.best_validation)
    assert result.best_validation < before / 5


@pytest.mark.parametrize("how", ["ctrl-c", "kill"])
def test_an_interrupted_run_keeps_the_best_model_so_far(how: str) -> None:
    """Ctrl-C, or a plain ``kill`` (SIGTERM: how a run in the background is stopped), ends training with the best
    weights so far, and the process's own SIGTERM handling is back afterwards."""
    model, batch, validate = _toy_problem()
    handler_before = signal.getsignal(signal.SIGTERM)

    def interrupted_batch(step: int):
        if step == 60:
            if how == "ctrl-c":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGTERM)
        return batch(step)

    before = validate(model)
    result = fit(
        model,
        interrupted_batch,
        torch.nn.functional.mse_loss,
        steps=1000,
        learning_rate=1e-2,
        validate=validate,
        validate_every=25,
    )
    assert result.stopped_because == "interrupted" and result.steps == 60
    assert validate(model) == pytest.approx(result.best_validation) and result.best_validation < before
    assert signal.getsignal(signal.SIGTERM) is handler_before


def test_time_budget_stops_training() -> None:
    model, batch, validate = _toy_problem()
    result = fit(model, batch, torch.nn.functional.mse_loss, steps=10**6, max_seconds=1.0)
    assert result.stopped_because == "time budget" and result.seconds < 5


def _fit_on_scores(scores: list[int], warmup_fraction: float = 0.0):
    """100 steps on the toy problem, validated every 10 with patience 2, the validation returning ``scores``."""
    model, batch, _ = _toy_problem()
    next_score = iter(scores)
    return fit(
        model,
        batch,
        torch.nn.functional.mse_loss,
        steps=100,
        learning_rate=1e-3,
        warmup_fraction=warmup_fraction,
        validate=lambda _model: float(next(next_score)),
        validate_every=10,
        patience=2,
    )


def test_warmup_checks_do_not_use_up_patience() -> None:
    """A validation score that only gets worse stops training after ``patience`` checks, but not during warm-up."""
    stopped_at = {}
    for warmup in (0.0, 0.5):
        result = _fit_on_scores([100, *range(1000)], warmup)  # the first step beats the start, then only worse
        assert result.stopped_because == "plateau"
        stopped_at[warmup] = result.steps
    assert stopped_at == {0.0: 30, 0.5: 60}  # checks at steps 50 and 60 are the first after warm-up


def test_patience_waits_until_the_start_is_beaten() -> None:
    """Validations that are all worse than the starting weights never end training as a plateau."""
    result = _fit_on_scores(list(range(1000)))
    assert result.stopped_because == "step budget" and result.steps == 100 and result.best_validation == 0


def test_weight_average_smooths_noisy_training() -> None:
    """With noisy batches and a high learning rate, the averaged weights that ``fit`` keeps beat the raw ones."""
    checks = {}
    for decay in (0.0, 0.95):
        model, _, validate = _toy_problem()
        rf = model.receptive_field
        noise = torch.Generator().manual_seed(1)

        def noisy_batch(_step: int, rf: int = rf, noise: torch.Generator = noise):
            x = torch.randn(2, 1, 256 + rf - 1, generator=noise)
            target = 0.5 * x[..., rf - 1 :] + 0.5 * torch.randn(2, 1, 256, generator=noise)
            return x, torch.zeros(2, 2), target

        result = fit(
            model,
            noisy_batch,
            torch.nn.functional.mse_loss,
            steps=300,
            learning_rate=3e-2,
            average_decay=decay,
            validate=validate,
            validate_every=100,
        )
        assert validate(model) == pytest.approx(result.best_validation)
        checks[decay] = [h["validation"] for h in result.history]
    # At the checks while the learning rate is still high (steps 100 and 200) the average is much closer.
    assert all(checks[0.95][i] < 0.6 * checks[0.0][i] for i in (1, 2))


def test_a_reverb_trained_on_impulse_responses_learns_the_real_decay(tmp_path) -> None:
    """The reverb recipe's impulse-response training (models.reverb_fit), tiny: the decay curves of the network's
    responses come closer to the real effect's at knob draws it never trained on, and size lengthens its decay."""
    from dataclasses import replace

    from models.effect_training import RECIPES, train_effect
    from models.effects import reference_effect
    from models.evaluation import t60_estimate
    from models.reverb_fit import DecayCurveLoss, ResponseSource
    from models.reverb_tail import ReverbTail, ReverbTailConfig

    config = ReverbTailConfig(tail_seconds=3.0, early_taps=2048, bands=4, partition=1024, fade_samples=256)
    recipe = replace(
        RECIPES["reverb"],
        config=config,
        steps=60,
        segment_samples=2048,
        batch_size=1,
        response_rows=2,
        train_clips=1,
        heldout_clips=1,
        clip_seconds=1.0,
        heldout_seconds=0.5,
        grid=(0.5,),
    )
    assert RECIPES["reverb"].response_rows > 0  # the shipped recipe trains this way
    info = train_effect("reverb", tmp_path, recipe=recipe, model_name="tiny-reverb")
    assert "impulse responses per step" in info.sidecar["training"]["data"]["pairs"]
    trained = load_info(info).model
    assert isinstance(trained, ReverbTail)
    start = ReverbTail(config)
    fresh = ResponseSource(reference_effect("reverb"), config.tail_length, config.sample_rate, seed=12345)
    positions, real = fresh.batch(8)
    loss = DecayCurveLoss(config, config.tail_length)
    with torch.no_grad():
        before = float(loss.decay_distance_db(start.impulse_response(positions), real))
        after = float(loss.decay_distance_db(trained.impulse_response(positions), real))
        small, large = trained.impulse_response(torch.tensor([[0.0, 1.0], [1.0, 1.0]])).numpy()
    assert after < before / 3
    short, long = (t60_estimate(r, config.sample_rate).seconds for r in (small, large))
    assert short is not None and long is not None and long > 1.1 * short  # 60 steps: apart, not yet 0.95 / 2.35 s
