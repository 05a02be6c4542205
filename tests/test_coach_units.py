"""Synth coach pieces without rendering: step order, training examples, networks, targets, eval tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.coach import chains as chains_module
from models.coach.chains import ChainPlan, plan_chains, render_chain, steps_with_labels
from models.coach.evaluate import RunRecord, accuracy_by_step, format_group_table, summarize
from models.coach.families import subset_effects, subset_mask
from models.coach.nets import EffectCNN, NextEffectRNN
from models.coach.steps import (
    DEFAULT_STEP_ORDER,
    canonical_prefix,
    next_effect,
    ordered_effects,
    rnn_label,
    sample_effect_pairs,
    sample_rnn_batch,
)
from models.coach.store import heads_for, load_coach, load_state, save_module
from models.coach.suggest import tidy_text
from models.coach.target import target_clip
from models.coach.train import NEXT_EFFECT_ARCHITECTURE, next_effect_loss
from models.errors import ReaTimbreError
from models.synth.features import CLIP_SAMPLES, ClipFeatures
from models.synth.profiles import EFFECT_NAMES, load_profile


def test_masks_and_step_order():
    assert subset_effects(subset_mask(["reverb", "compressor"])) == ("compressor", "reverb")
    mask = subset_mask(["reverb", "distortion", "eq"])
    order = list(DEFAULT_STEP_ORDER)
    assert ordered_effects(mask) == [n for n in order if n in ("reverb", "distortion", "eq")]
    assert next_effect(mask, 0) == ordered_effects(mask)[0]
    assert next_effect(mask, canonical_prefix(mask, 1)) == ordered_effects(mask)[1]
    assert next_effect(mask, mask) is None
    with pytest.raises(ReaTimbreError, match="unknown effect"):
        subset_mask(["flanger"])


def test_effect_pairs_have_the_effect_in_the_target_only():
    rng = np.random.default_rng(0)
    for effect in EFFECT_NAMES:
        rows = sample_effect_pairs(effect, 7, 400, rng)
        bit = 1 << EFFECT_NAMES.index(effect)
        assert ((rows[:, 0] >= 0) & (rows[:, 0] < 7)).all()
        assert all(t & bit and not c & bit and c & ~t == 0 for _, t, c in rows)
        before = subset_mask(DEFAULT_STEP_ORDER[: DEFAULT_STEP_ORDER.index(effect)])
        canonical = np.mean([c == t & before for _, t, c in rows])
        assert 0.4 < canonical < 0.8  # half canonical, plus random subsets that happen to be canonical


def test_rnn_examples_label_the_next_missing_effect():
    rng = np.random.default_rng(1)
    for _ in range(50):
        steps_taken, items = sample_rnn_batch(5, 8, rng)
        for family, target, currents in items:
            assert 0 <= family < 5 and len(currents) == steps_taken + 1 and currents[0] == 0
            assert currents == tuple(canonical_prefix(target, t) for t in range(steps_taken + 1))
            label = rnn_label(target, currents[-1])
            assert EFFECT_NAMES[label] == ordered_effects(target)[steps_taken]
            assert not currents[-1] >> label & 1


def test_off_path_rnn_examples_add_effects_the_target_may_lack():
    rng = np.random.default_rng(2)
    spurious = 0
    for _ in range(200):
        steps_taken, items = sample_rnn_batch(5, 4, rng, off_path_fraction=1.0)
        for _, target, currents in items:
            added = [after & ~before for before, after in zip(currents, currents[1:], strict=False)]
            assert currents[0] == 0 and all(bin(a).count("1") == 1 for a in added)  # one new effect per step
            label = rnn_label(target, currents[-1])
            assert target >> label & 1 and not currents[-1] >> label & 1
            assert EFFECT_NAMES[label] == next_effect(target, currents[-1])
            spurious += bool(currents[-1] & ~target)
    assert spurious > 100  # many sequences hold an effect the target does not have
    with pytest.raises(ValueError, match="nothing"):
        rnn_label(0b00011, 0b00011)


def _batch(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand(n, 128, 88, generator=g) - 1,
        torch.rand(n, 128, 88, generator=g) - 1,
        100 * torch.randn(n, 30, 88, generator=g),
        100 * torch.randn(n, 30, 88, generator=g),
    )


def test_effect_cnn_heads_learn_a_small_batch():
    torch.manual_seed(0)
    heads = heads_for(load_profile("vital").effect("distortion"))
    cnn = EffectCNN(heads, dropout=0.0)
    inputs = _batch(8)
    values = torch.tensor([[float(i % 5), 0.1 * i] for i in range(8)])
    optimiser = torch.optim.Adam(cnn.parameters(), lr=3e-3)
    first = cnn.loss(cnn(*inputs), values).item()
    for _ in range(60):
        loss = cnn.loss(cnn(*inputs), values)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert cnn.loss(cnn(*inputs), values).item() < 0.2 * first
    predicted = cnn.predict(*inputs)
    assert set(predicted[0]) == {"mode", "drive"}
    assert all(0.0 <= p["drive"] <= 1.0 and p["mode"] in range(5) for p in predicted)


def test_next_effect_rnn_never_names_a_used_effect():
    rnn = NextEffectRNN()
    target = torch.rand(3, 128, 88)
    currents = torch.rand(3, 2, 128, 88)
    used = torch.zeros(3, 2, 5)
    used[:, 1, 1] = 1.0  # distortion used after the first step
    logits = rnn(target, currents, used, torch.tensor([2, 2, 1]))
    assert torch.isinf(logits[:2, 1]).all() and torch.isfinite(logits[2]).all()


def test_presence_output_learns_every_missing_effect_beside_the_next_one():
    torch.manual_seed(0)
    rnn = NextEffectRNN(**NEXT_EFFECT_ARCHITECTURE, presence=True)
    target, currents = torch.rand(4, 128, 88) - 1, torch.rand(4, 1, 128, 88) - 1
    for k in range(4):  # each target louder in its own quarter of the mel bands
        target[k, 32 * k : 32 * (k + 1)] += 0.8
    used, lengths = torch.zeros(4, 1, 5), torch.ones(4, dtype=torch.long)
    # next effect (index in EFFECT_NAMES) and the mask of every effect the target has and the current lacks
    labels = torch.tensor([[1, 0b10011], [0, 0b00001], [4, 0b11000], [2, 0b00100]])
    with torch.no_grad():
        output = rnn.eval()(target, currents, used, lengths, with_presence=True)
        assert output.shape == (4, 10) and torch.equal(output[:, :5], rnn(target, currents, used, lengths))
    rnn.train()
    output = rnn(target, currents, used, lengths, with_presence=True)
    plain = next_effect_loss(output, labels)
    assert torch.isclose(plain, torch.nn.functional.cross_entropy(output[:, :5], labels[:, 0]))
    assert next_effect_loss(output, labels, 0.5) > plain
    optimiser = torch.optim.Adam(rnn.parameters(), lr=3e-3)
    for _ in range(60):
        loss = next_effect_loss(rnn(target, currents, used, lengths, with_presence=True), labels, 1.0)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    rnn.eval()
    presence = torch.sigmoid(rnn(target, currents, used, lengths, with_presence=True)[:, 5:])
    bits = (labels[:, 1:2] >> torch.arange(5)) & 1
    assert torch.equal(presence > 0.5, bits.bool())
    assert rnn(target, currents, used, lengths).shape == (4, 5)  # without the flag: the ranking logits only


@pytest.mark.parametrize("presence", [False, True], ids=["softmax", "with-presence"])
def test_ranker_encodes_each_step_once_and_matches_the_whole_sequence(presence):
    from models.coach.suggest import EffectRanker
    from models.synth.features import ClipFeatures

    torch.manual_seed(0)
    rnn = NextEffectRNN(**NEXT_EFFECT_ARCHITECTURE, presence=presence).eval()  # ranks by the softmax alone
    mels = torch.rand(4, 128, 88) - 1  # target, then three currents
    used = [set(), {"distortion"}, {"distortion", "reverb"}]
    models = type("Models", (), {"next_effect": rnn})()
    ranker = EffectRanker(models, ClipFeatures(mels[0].numpy(), None))
    for k in range(3):
        ranker.add(ClipFeatures(mels[k + 1].numpy(), None))
        ranked = ranker.rank(used[: k + 1])
        one_hots = torch.tensor([[float(n in u) for n in EFFECT_NAMES] for u in used[: k + 1]])[None]
        with torch.no_grad():
            whole = torch.softmax(rnn(mels[:1], mels[None, 1 : k + 2], one_hots, torch.tensor([k + 1]))[0], -1)
        assert len(ranker.encoded) == k + 1
        assert [name for name, _ in ranked] == [
            n for n in sorted(EFFECT_NAMES, key=lambda n: -float(whole[EFFECT_NAMES.index(n)])) if n not in used[k]
        ]
        assert all(abs(p - float(whole[EFFECT_NAMES.index(n)])) < 1e-5 for n, p in ranked)


@pytest.mark.parametrize("architecture", [{"n_effects": 5}, NEXT_EFFECT_ARCHITECTURE], ids=["first-shipped", "current"])
def test_store_round_trip_and_foreign_files(tmp_path, architecture):
    profile = load_profile("vital")
    for name in EFFECT_NAMES:
        cnn = EffectCNN(heads_for(profile.effect(name)))
        sidecar = {"kind": "effect", "effect": name, "heads": [h.to_json() for h in cnn.heads], "architecture": {}}
        save_module(cnn, {**sidecar, "profile": "vital", "step_order": list(DEFAULT_STEP_ORDER)}, tmp_path, name)
    rnn = NextEffectRNN(**architecture)
    side = {"kind": "next_effect", "architecture": architecture, "profile": "vital"}
    save_module(rnn, {**side, "step_order": list(DEFAULT_STEP_ORDER)}, tmp_path, "next_effect")
    models = load_coach(tmp_path)
    assert models.step_order == DEFAULT_STEP_ORDER
    # the coach's order is the RNN's; CNNs trained with another order's canonical pairs still load
    reordered = list(reversed(DEFAULT_STEP_ORDER))
    save_module(rnn, {**side, "step_order": reordered}, tmp_path, "next_effect")
    assert load_coach(tmp_path).step_order == tuple(reordered)
    save_module(rnn, {**side, "step_order": reordered[:4]}, tmp_path, "next_effect")
    with pytest.raises(ReaTimbreError, match="no step order"):
        load_coach(tmp_path)
    save_module(rnn, {**side, "step_order": list(DEFAULT_STEP_ORDER)}, tmp_path, "next_effect")
    x = _batch(1)
    assert torch.allclose(models.next_effect.out.weight, rnn.out.weight, atol=1e-3)  # stored as float16
    assert models.effect_cnns["eq"](*x).shape == (1, 3)
    with pytest.raises(ReaTimbreError, match="cannot load coach weights"):  # a head the file lacks
        load_state(NextEffectRNN(**architecture, presence=True), tmp_path, "next_effect")
    grown = NextEffectRNN(**architecture, presence=True)
    load_state(grown, tmp_path, "next_effect", may_lack=("presence.",))  # fine-tuning adds it on purpose
    assert torch.allclose(grown.out.weight, rnn.out.weight, atol=1e-3)
    (tmp_path / "eq.safetensors").write_bytes(b"not weights")
    with pytest.raises(ReaTimbreError, match="cannot load coach weights"):
        load_coach(tmp_path)


def test_coach_models_without_a_profile_are_refused(tmp_path):
    profile = load_profile("vital")
    for name in EFFECT_NAMES:
        cnn = EffectCNN(heads_for(profile.effect(name)))
        sidecar = {"kind": "effect", "effect": name, "heads": [h.to_json() for h in cnn.heads], "architecture": {}}
        save_module(cnn, sidecar, tmp_path, name)
    rnn_side = {"kind": "next_effect", "architecture": {}, "step_order": list(DEFAULT_STEP_ORDER)}
    save_module(NextEffectRNN(), rnn_side, tmp_path, "next_effect")
    with pytest.raises(ReaTimbreError, match="name no effect profile"):  # loaded with profile None before
        load_coach(tmp_path)


def test_target_clip_any_rate_channels_and_start():
    rate = 22050
    t = np.arange(3 * rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 220 * t) * (t >= 1.0)).astype(np.float32)
    clip = target_clip(np.stack([tone] * 4), rate, start_seconds=1.0)  # 4 channels at 22.05 kHz
    assert clip.shape == (2, CLIP_SAMPLES) and np.allclose(clip[0], clip[1])
    spectrum = np.abs(np.fft.rfft(clip[0]))
    assert abs(np.argmax(spectrum) * 44100 / CLIP_SAMPLES - 220) < 2
    short = target_clip(tone[rate : rate + 1000], rate)  # shorter than a clip: zero-padded
    assert short.shape == (2, CLIP_SAMPLES) and not short[:, 3000:].any()
    with pytest.raises(ReaTimbreError, match="silent"):
        target_clip(np.zeros((1, rate), np.float32), rate)
    with pytest.raises(ReaTimbreError, match="past the end"):
        target_clip(tone, rate, start_seconds=5.0)


def test_tidy_text():
    assert tidy_text("0.500000 dB") == "0.5 dB"
    assert tidy_text("Soft Clip") == "Soft Clip"


def _record(mse: list[float], picks=()):
    curves = {m: [v * k for v in mse] for m, k in (("mse", 1), ("mae", 3), ("mfcc_distance", 1000), ("lsd_db", 300))}
    return RunRecord(curves, 0.1, sum(b < a for a, b in zip(mse, mse[1:], strict=False)), False, list(picks))


def test_summary_tables_follow_the_paper_layout():
    coach = [_record([0.05, 0.02, 0.01, 0.01, 0.01, 0.01], [(1, True), (2, True), (3, False)])]
    coach.append(_record([0.03, 0.01, 0.005, 0.005, 0.005, 0.005], [(1, True)]))
    baseline = [_record([0.05, 0.04, 0.03, 0.03, 0.03, 0.03]), _record([0.03, 0.03, 0.02, 0.02, 0.02, 0.02])]
    summary = summarize(coach)
    assert summary["mse"]["initial"] == pytest.approx(0.04)
    assert summary["mse"]["final"] == pytest.approx(0.0075)
    assert summary["mse"]["per_step"][0] == pytest.approx(-0.025)
    assert sum(summary["mse"]["per_step"]) == pytest.approx(summary["mse"]["change"])
    assert summary["mse"]["ratio"] == pytest.approx(0.1875)
    accuracy = accuracy_by_step(coach)
    assert accuracy["1"] == 1.0 and accuracy["3"] == 0.0 and accuracy["5"] is None and accuracy["all"] == 0.75
    table = format_group_table("basic shapes", coach, baseline)
    lines = table.splitlines()
    assert lines[0].startswith("basic shapes — 2 held-out targets")
    assert [line.split()[0] for line in lines[2:6]] == ["MSE", "MAE", "MFCC", "LSD"]
    assert "ok" in lines[2] and "0.188" in lines[2] and "0.625" in lines[2]


def test_candidates_add_the_runner_up_class_only_for_categorical_effects():
    profile = load_profile("vital")
    distortion = EffectCNN(heads_for(profile.effect("distortion")))
    eq = EffectCNN(heads_for(profile.effect("eq")))
    inputs = _batch(1)
    first, second = distortion.predict_candidates(*inputs, count=2)
    assert first == distortion.predict(*inputs)[0]
    assert second["drive"] == first["drive"] and second["mode"] != first["mode"]
    assert eq.predict_candidates(*inputs, count=2) == eq.predict(*inputs)


def _indices(*names: str) -> tuple[int, ...]:
    return tuple(EFFECT_NAMES.index(n) for n in names)


def test_chains_stop_before_the_step_that_leaves_nothing_to_name():
    target = subset_mask(["distortion", "reverb", "eq"])
    # on the path: the last of the target's effects is never applied (no label would be left)
    assert steps_with_labels(target, _indices("distortion", "reverb", "eq")) == _indices("distortion", "reverb")
    # off the path: effects the target lacks are applied too, until only one of its effects is missing
    order = _indices("phaser", "eq", "compressor", "reverb", "distortion")
    assert steps_with_labels(target, order) == _indices("phaser", "eq", "compressor", "reverb")


def test_a_chain_step_without_predicted_settings_is_a_one_line_error(monkeypatch):
    class Renderer:
        def load_preset(self, preset: str) -> None:
            pass

    monkeypatch.setattr(chains_module, "predict_settings", lambda *args, **kwargs: [])
    clip = ClipFeatures(np.zeros((128, 88), np.float32), np.zeros((30, 88), np.float32))
    plan = ChainPlan(0, subset_mask(["distortion", "reverb"]), _indices("distortion", "reverb"))
    with pytest.raises(ReaTimbreError, match="the distortion CNN predicted no settings"):  # a TypeError before
        render_chain(None, Renderer(), "any", 48, clip, clip, plan)


def test_chain_plans_follow_the_step_order_or_go_off_path():
    plans = plan_chains(5, 200, np.random.default_rng(0), off_path_fraction=0.3)
    on_path = [p for p in plans if len(p.order) < len(EFFECT_NAMES)]
    assert {p.row for p in plans} == set(range(5))
    assert all(bin(p.target_mask).count("1") >= 2 for p in plans)  # a one-effect target has no chain
    assert 0.15 < 1 - len(on_path) / len(plans) < 0.45  # the off-path share
    assert all(p.order == _indices(*ordered_effects(p.target_mask)) for p in on_path)
    for plan in plans:
        used = 0
        for index in steps_with_labels(plan.target_mask, plan.order):
            used |= 1 << index
            rnn_label(plan.target_mask, used)  # raises if nothing were left to name
