"""The multi-task VAE's masks, padding, variants, KL warm-up, storage, and the split by patch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.asp.data import SPLIT_FRACTIONS, MatchDataConfig, generate, patch_key, plan_patches, split_of
from models.asp.losses import kl_weight, parameter_loss, parameter_masks
from models.asp.nets import VARIANTS, Architecture, AspModel, prediction_vector
from models.asp.store import load_model, save_model
from models.asp.train import (
    BestWeights,
    Pooled,
    TrainSettings,
    batch_rows,
    evaluate_loss,
    row_probabilities,
    vae_keys,
)
from models.errors import ReaTimbreError
from models.synth.match_synths import Preset, VitalMatch
from models.synth.spaces import Layout

torch.set_num_threads(1)

#: synth a: 5 slots (continuous 0 and 4, one 3-class group); synth b: 3 slots (continuous 0, one 2-class group)
LAYOUTS = (Layout(5, (0, 4), ((1, 3),)), Layout(3, (0,), ((1, 2),)))


def _model(variant: str) -> AspModel:
    torch.manual_seed(0)
    return AspModel(Architecture(variant, ("a", "b"), LAYOUTS, latent=4, channels=8, hidden=16))


def _batch(synths: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mel = torch.randn(len(synths), 128, 88) * 0.1 - 0.5
    target = torch.zeros(len(synths), 5)
    for row, s in enumerate(synths):
        target[row] = torch.tensor([0.3, 0, 1, 0, 0.9]) if s == 0 else torch.tensor([0.6, 0, 1, 0, 0])
    return mel, target, torch.tensor(synths)


def test_masks_cover_each_synths_own_slots() -> None:
    masks = parameter_masks(torch.tensor([0, 1, 1]), LAYOUTS, 5)
    assert masks.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0]]


@pytest.mark.parametrize("variant", ["separate", "joint_encoder"])
def test_a_synths_loss_reaches_only_its_own_decoder(variant: str) -> None:
    model = _model(variant)
    mel, target, synth = _batch([0, 0, 0])
    out = model(mel, synth)
    loss, _ = parameter_loss(out.params, target, synth, LAYOUTS)
    loss.backward()
    own = [p.grad for p in model.parameter_decoders[0].parameters()]
    other = [p.grad for p in model.parameter_decoders[1].parameters()]
    assert all(g is not None and float(g.abs().sum()) > 0 for g in own)
    assert all(g is None or float(g.abs().sum()) == 0 for g in other)
    if variant == "separate":  # and, with separate VAEs, only its own encoder
        assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in model.encoders[1].parameters())


def test_padding_adds_no_loss_and_gets_no_gradient() -> None:
    model = _model("joint_decoder")
    mel, target, synth = _batch([1, 1, 0])
    out = model(mel, synth, sample=False)
    raw = out.params.detach().clone().requires_grad_(True)
    loss, per_row = parameter_loss(raw, target, synth, LAYOUTS)
    changed = raw.detach().clone()
    changed[:2, 3:] += 100.0  # synth b's padding slots
    target_changed = target.clone()
    target_changed[:2, 3:] = 7.0
    loss_changed, _ = parameter_loss(changed, target_changed, synth, LAYOUTS)
    assert float(loss_changed) == pytest.approx(float(loss.detach()))
    loss.backward()
    assert raw.grad is not None
    assert float(raw.grad[:2, 3:].abs().sum()) == 0.0
    assert float(raw.grad[:2, :3].abs().sum()) > 0 and float(raw.grad[2].abs().sum()) > 0
    assert per_row.shape == (3,)


def test_loss_is_zero_only_for_the_right_answer() -> None:
    _, target, synth = _batch([0, 1])
    perfect = torch.zeros(2, 5)
    perfect[0] = torch.tensor([np.log(0.3 / 0.7), -50, 50, -50, np.log(0.9 / 0.1)])
    perfect[1, :3] = torch.tensor([np.log(0.6 / 0.4), -50, 50])
    assert float(parameter_loss(perfect, target, synth, LAYOUTS)[0]) == pytest.approx(0.0, abs=1e-6)
    wrong = perfect.clone()
    wrong[1, 1:3] = torch.tensor([50.0, -50.0])
    assert float(parameter_loss(wrong, target, synth, LAYOUTS)[0]) > 10


def test_prediction_vector_and_variants_shapes() -> None:
    for variant in VARIANTS:
        model = _model(variant)
        mel, _, synth = _batch([0, 1, 1])
        out = model(mel, synth)
        assert out.mel.shape == (3, 128, 88) and out.params.shape == (3, 5) and out.mu.shape == (3, 4)
        vector = prediction_vector(out.params[1], LAYOUTS[1])
        vector = vector.detach()
        assert vector.shape == (3,) and 0 <= float(vector[0]) <= 1 and float(vector[1:].sum()) == pytest.approx(1.0)
    with pytest.raises(ReaTimbreError, match="variant"):
        Architecture("both", ("a",), LAYOUTS[:1])


def test_validation_reports_each_synths_parameter_loss() -> None:
    model = _model("joint_encoder")
    synths = [0, 1, 1, 0, 1] * 60  # 300 rows: more than one validation chunk of 256
    mel, target, synth = _batch(synths)
    data = Pooled(mel.numpy().astype(np.float16), target.numpy(), synth.numpy(), np.ones(len(synths), np.uint8))
    rows = np.arange(len(synths))
    values = evaluate_loss(model, data, rows, TrainSettings(), torch.device("cpu"))
    a, b = values["parameters_a"], values["parameters_b"]
    assert a != pytest.approx(b)  # the two synths' targets differ, so do their losses
    assert values["parameters"] == pytest.approx((120 * a + 180 * b) / 300, rel=1e-5)
    only_b = evaluate_loss(model, data, rows[synth.numpy() == 1], TrainSettings(), torch.device("cpu"))
    assert "parameters_a" not in only_b and only_b["parameters_b"] == pytest.approx(b, rel=1e-5)


def _fill(model: AspModel, value: float) -> None:
    with torch.no_grad():
        for tensor in model.parameters():
            tensor.fill_(value)


def test_separate_vaes_each_keep_their_own_best_step_and_joint_ones_the_pooled_best() -> None:
    separate, joint = _model("separate"), _model("joint_encoder")
    kept_separate, kept_joint = BestWeights(separate), BestWeights(joint)
    # step 1: a at its best; step 2: b at its best (a already overfitting); step 3: the pooled best
    losses = [(1.0, 3.0), (2.0, 1.0), (1.2, 1.1)]
    for step, (a, b) in enumerate(losses, start=1):
        for model, kept in ((separate, kept_separate), (joint, kept_joint)):
            _fill(model, float(step))
            kept.offer(model, {"total": (a + b) / 2, "total_a": a, "total_b": b}, step)
    assert kept_separate.synth_steps == {"a": 1, "b": 2}
    for key, tensor in kept_separate.state.items():
        if key in vae_keys(separate, 0):
            assert torch.all(tensor == 1.0), key
        elif key in vae_keys(separate, 1):
            assert torch.all(tensor == 2.0), key
    assert set(vae_keys(separate, 0)) | set(vae_keys(separate, 1)) == set(separate.state_dict())
    assert kept_joint.pooled["step"] == 3
    assert all(torch.all(t == 3.0) for t in kept_joint.state.values())


def test_a_separate_vae_without_validation_clips_keeps_its_latest_weights() -> None:
    model = _model("separate")
    kept = BestWeights(model)
    for step, a in enumerate([1.0, 2.0], start=1):
        _fill(model, float(step))
        kept.offer(model, {"total": a, "total_a": a}, step)
    assert kept.synth_steps == {"a": 1, "b": 2}
    assert all(torch.all(kept.state[k] == 2.0) for k in vae_keys(model, 1))


def test_each_synths_share_of_a_batch_follows_its_clip_count_to_a_power() -> None:
    synth = np.array([0] * 900 + [1] * 100)
    rows = np.arange(1000)
    assert row_probabilities(synth, 1.0) is None  # uniform over clips: 90 % / 10 %
    rng = np.random.default_rng(0)
    for power, share_of_b in ((0.0, 0.5), (0.5, 0.25)):  # equal; sqrt: 10 / (30 + 10)
        probabilities = row_probabilities(synth, power)
        assert probabilities is not None and probabilities.sum() == pytest.approx(1.0)
        assert probabilities[synth == 1].sum() == pytest.approx(share_of_b)
        drawn = np.concatenate([batch_rows(rng, rows, 64, probabilities) for _ in range(200)])
        assert np.mean(synth[drawn] == 1) == pytest.approx(share_of_b, abs=0.03)
    uniform = batch_rows(rng, rows[:50], 64, None)  # fewer rows than a batch: each once
    assert sorted(uniform) == list(range(50))
    with pytest.raises(ReaTimbreError, match="share power"):
        TrainSettings(synth_share_power=1.5).validate()


def test_kl_warm_up() -> None:
    assert kl_weight(0, 100, 0.01) == 0.0
    assert kl_weight(50, 100, 0.01) == pytest.approx(0.005)
    assert kl_weight(500, 100, 0.01) == 0.01
    assert kl_weight(3, 0, 0.01) == 0.01


def test_store_round_trip(tmp_path) -> None:
    model = _model("joint_decoder")
    save_model(model, {"data": "test"}, tmp_path)
    loaded, sidecar = load_model(tmp_path, "joint_decoder")
    assert sidecar["data"] == "test" and sidecar["architecture"]["variant"] == "joint_decoder"
    mel, _, synth = _batch([0, 1])
    with torch.no_grad():
        a, b = model(mel, synth, sample=False), loaded(mel, synth, sample=False)
    torch.testing.assert_close(a.params, b.params, atol=5e-3, rtol=5e-3)  # float16 on disk
    with pytest.raises(ReaTimbreError, match="no match model"):
        load_model(tmp_path, "separate")


def test_split_fractions_and_determinism() -> None:
    splits = np.array([split_of(i.to_bytes(4, "little"), 0) for i in range(20000)])
    for index, fraction in enumerate(SPLIT_FRACTIONS):
        assert abs(np.mean(splits == index) - fraction) < 0.01
    assert split_of(b"x", 0) == split_of(b"x", 0)


def test_random_patches_split_by_patch_without_leaks() -> None:
    config = MatchDataConfig(synth="vital", patches=300, notes_per_patch=2)
    plans = plan_patches(config, VitalMatch())
    assert len(plans) == 300 and all(len(p.notes) == 2 and 48 <= min(p.notes) for p in plans)
    keys = {split: {patch_key(VitalMatch().space, p.values) for p in plans if p.split == split} for split in (0, 1, 2)}
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    assert plan_patches(config, VitalMatch()) == plans


class _PresetVital(VitalMatch):
    """Vital's space with 200 made-up presets, as a preset synth (amsynth's banks need its package)."""

    def presets(self) -> list[Preset]:
        rng = np.random.default_rng(5)
        return [Preset(f"bank/p{i}", self.space.random_patch(rng)) for i in range(200)]


def test_variations_are_training_only_and_leave_the_presets_as_they_were() -> None:
    synth = _PresetVital()
    plain = plan_patches(MatchDataConfig(synth="vital"), synth)
    config = MatchDataConfig(synth="vital", variations=3, variation_spread=0.1)
    varied = plan_patches(config, synth)
    assert varied[: len(plain)] == plain  # presets keep their indices, splits and notes (and so their shards)
    extra = varied[len(plain) :]
    training = [p for p in plain if p.split == 0]
    assert len(extra) == 3 * len(training) and {p.split for p in extra} == {0}
    assert [p.name for p in extra[:3]] == [f"{training[0].name} ~{j}" for j in (1, 2, 3)]
    space = synth.space
    source = space.encode(training[0].values)
    for plan in extra[:3]:  # near their preset, not on it, and valid patches of the space
        vector = space.encode(plan.values)
        assert 0 < np.abs(vector - source).max() and np.mean(np.abs(vector - source)) < 0.2
        assert space.decode(vector) == pytest.approx(plan.values)
    held_out = {patch_key(space, p.values) for p in varied if p.split != 0}
    assert held_out == {patch_key(space, p.values) for p in plain if p.split != 0}
    assert plan_patches(config, synth) == varied


def test_variations_need_presets_and_a_sane_spread() -> None:
    with pytest.raises(ReaTimbreError, match="no presets here to vary"):
        plan_patches(MatchDataConfig(synth="vital", patches=10, variations=2), VitalMatch())
    with pytest.raises(ReaTimbreError, match="--variation-spread"):
        MatchDataConfig(synth="vital", variations=2, variation_spread=0.0).validate()


def test_evaluation_helpers() -> None:
    from models.asp.evaluate import goals, most_common_vector, nearest_rows, parameter_errors

    layout = LAYOUTS[0]
    truth = np.array([[0.2, 1, 0, 0, 0.5], [0.4, 0, 1, 0, 0.5], [0.6, 0, 1, 0, 0.5]], dtype=np.float32)
    mse, accuracy = parameter_errors(truth, truth, layout)
    assert mse.tolist() == [0, 0, 0] and accuracy.tolist() == [1, 1, 1]
    common = most_common_vector(truth, layout)
    np.testing.assert_allclose(common, [0.4, 0, 1, 0, 0.5], atol=1e-6)
    mse, accuracy = parameter_errors(np.repeat(common[None], 3, axis=0), truth, layout)
    np.testing.assert_allclose(mse, [0.02, 0, 0.02], atol=1e-6)
    assert accuracy.tolist() == [0, 1, 1]
    pool = np.random.default_rng(0).normal(size=(20, 4, 3)).astype(np.float32)
    assert nearest_rows(pool[[7, 3]] + 0.01, pool).tolist() == [7, 3]
    stats = {"mean": 1.0, "std": 0.0}
    table = {"all": {
        "joint_encoder": {"lsd_db": {"mean": 5.0}, "accuracy": {"mean": 0.8}},
        "separate": {"lsd_db": {"mean": 6.0}, "accuracy": {"mean": 0.7}},
        "random_preset": {"lsd_db": {"mean": 10.0}, "accuracy": stats},
        "nearest_preset": {"lsd_db": {"mean": 5.5}, "accuracy": stats},
        "most_common": {"lsd_db": stats, "accuracy": {"mean": 0.7}},
    }}  # fmt: skip
    checks = goals(table, ["joint_encoder", "separate"])
    assert checks["joint_encoder"] == {
        "lsd_at_most_0.7_of_random": True,
        "lsd_below_nearest": True,
        "accuracy_5_points_above_most_common": True,
    }
    assert checks["separate"]["lsd_below_nearest"] is False
    assert checks["joint_encoder_vs_separate_lsd_ratio"] == pytest.approx(0.833, abs=1e-3)


def test_continuous_weight_scales_only_the_continuous_slots() -> None:
    raw = torch.zeros(2, 5)  # sigmoid 0.5 everywhere, uniform logits
    target = torch.tensor([[0.3, 0, 1, 0, 0.9], [0.6, 0, 1, 0, 0]])
    synth = torch.tensor([0, 1])
    plain = parameter_loss(raw, target, synth, LAYOUTS)[1]
    heavy = parameter_loss(raw, target, synth, LAYOUTS, continuous_weight=20.0)[1]
    mse = torch.tensor([((0.5 - 0.3) ** 2 + (0.5 - 0.9) ** 2) / 2, (0.5 - 0.6) ** 2])
    cross_entropy = torch.tensor([np.log(3.0), np.log(2.0)], dtype=torch.float32)
    assert torch.allclose(plain, mse + cross_entropy, atol=1e-6)
    assert torch.allclose(heavy, 20.0 * mse + cross_entropy, atol=1e-5)


def test_learning_rate_falls_as_a_half_cosine_over_the_nearer_budget() -> None:
    from models.asp.train import TrainSettings, learning_rate_at

    settings = TrainSettings(learning_rate=1e-3, seconds=100.0, max_steps=1000)
    assert learning_rate_at(settings, 0, 0.0) == pytest.approx(1e-3)
    assert learning_rate_at(settings, 500, 10.0) == pytest.approx(5e-4)  # half the steps
    assert learning_rate_at(settings, 10, 50.0) == pytest.approx(5e-4)  # half the seconds
    assert learning_rate_at(settings, 2000, 500.0) == pytest.approx(0.0, abs=1e-12)
    constant = TrainSettings(learning_rate=1e-3, cosine_decay=False)
    assert learning_rate_at(constant, 900, 290.0) == pytest.approx(1e-3)
    with pytest.raises(ReaTimbreError):
        TrainSettings(continuous_weight=-1.0).validate()


def test_a_far_match_is_flagged_in_the_summary() -> None:
    from models.asp.infer import FAR_LSD_DB, SynthMatch, Target, summary

    target = Target(np.zeros((128, 88), dtype=np.float32), note=57, estimate=None, onset_seconds=0.0)

    def result(lsd_db: float) -> SynthMatch:
        return SynthMatch("dexed", {}, 57, lsd_db, b"", ".syx", 0.1, 0.1, {})

    near, far = result(FAR_LSD_DB - 0.01), result(FAR_LSD_DB)
    assert not near.far and far.far
    assert [entry["far"] for entry in summary([near, far], target)["ranking"]] == [False, True]


def test_a_vital_dataset_is_not_extended_with_clips_rendered_another_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = MatchDataConfig(synth="vital", patches=2, notes_per_patch=1)
    generate(config, tmp_path / "v", workers=1, progress=False)
    assert json.loads((tmp_path / "v" / "manifest.json").read_text())["render"]["settle_note_seconds"] == 0.05
    monkeypatch.setattr("models.synth.vital.SETTLE_NOTE_SECONDS", 0.001)  # how Vital was settled before
    with pytest.raises(ReaTimbreError, match="other settings"):
        generate(config, tmp_path / "v", workers=1, progress=False)
