"""The synth coach end to end: a tiny training run, the suggestion loop, the coach JSON, the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from extension.coach_steps import CoachPlan
from models.coach.chains import load_chains
from models.coach.families import Families, FamilyRenderer, load_families
from models.coach.steps import next_effect, rnn_label
from models.coach.store import NEXT_EFFECT_NAME, load_coach, read_sidecar
from models.coach.suggest import MIN_RELATIVE_GAIN, coach_json, run_coach
from models.coach.train import TrainSettings, split_families, train_coach
from models.errors import ReaTimbreError
from models.synth.dataset import DatasetConfig, generate
from models.synth.features import CLIP_SAMPLES
from models.synth.profiles import EFFECT_NAMES, load_profile
from server.cli import main

TARGET_SETTINGS = {
    "distortion": {"mode": 1.0, "drive": 0.7},
    "eq": {"high_frequency": 0.6, "high_resonance": 0.2, "high_gain": 0.1},
    "reverb": {"mix": 0.6, "low_cut": 0.1, "high_cut": 0.8},
}


@pytest.fixture(scope="module")
def renderer() -> FamilyRenderer:
    return FamilyRenderer(load_profile("vital"))


@pytest.fixture(scope="module")
def tiny_coach(tmp_path_factory) -> Path:
    """Coach weights from a tiny run: coach-data of 3 draws (96 renders), a few training steps per model."""
    root = tmp_path_factory.mktemp("coach")
    generate(DatasetConfig(group="basic_shapes", clips=96, shard_clips=32), root / "families", 1, progress=False)
    settings = TrainSettings(
        cnn_steps=4,
        rnn_steps=4,
        cnn_batch=8,
        rnn_batch=4,
        validate_every=2,
        validation_examples=16,
        average_decay=0.9,
    )
    train_coach(root / "families", root / "weights", settings, progress=False, command="test")
    return root / "weights"


def test_chains_replay_the_loop_and_train_the_rnn(tiny_coach, tmp_path, capsys):
    data, out = tiny_coach.parent / "families", tmp_path / "chains"
    command = ["coach-chains", "--data", str(data), "--max-draws", "3", "--models", str(tiny_coach)]
    command += ["--out", str(out), "--quiet"]
    assert main([*command, "--chains", "12"]) == 0
    chains, families = load_chains(out), load_families(data)
    assert len(chains) == 12 and chains.mel_db80.shape[1:] == (4, 128, 88)
    assert set(chains.draw_index) <= set(families.draw_index)
    first = load_chains(out, families.draw_index[:1])  # one draw's chains, read on their own
    assert np.array_equal(first.mel_db80, chains.on_draws(families.draw_index[:1]).mel_db80) and len(first)
    rows = [list(families.draw_index).index(d) for d in chains.draw_index]
    for target, applied, mels, row in zip(chains.target_mask, chains.applied, chains.mel_db80, rows, strict=True):
        used, dry = 0, families.mel_db80[row, 0].astype(np.float32)
        for step, index in enumerate(applied[applied >= 0]):
            used |= 1 << int(index)
            rnn_label(int(target), used)  # every stored step leaves an effect to name
            assert np.abs(mels[step].astype(np.float32) - dry).mean() > 1e-3  # a rendered, changed sound
        assert not mels[len(applied[applied >= 0]) :].any()  # padding after the last step
    assert main([*command, "--chains", "12"]) == 0 and "0 chains" in capsys.readouterr().out  # resumes
    assert main([*command, "--chains", "20"]) == 1
    assert "other settings" in capsys.readouterr().err
    # --skip-draws: chains for the draws rendered since, and only those
    later = ["--out", str(tmp_path / "later"), "--chains", "3"]
    assert main([*command[:-3], *later, "--skip-draws", "2", "--quiet"]) == 0
    assert set(load_chains(tmp_path / "later").draw_index) == {families.draw_index[2]}
    assert main([*command[:-3], *later, "--skip-draws", "3", "--quiet"]) == 1
    assert "--skip-draws must be in 0..2" in capsys.readouterr().err
    settings = TrainSettings(rnn_steps=4, rnn_batch=4, validate_every=2, validation_examples=16)
    fields = train_coach(data, tmp_path / "w", settings, only=(NEXT_EFFECT_NAME,), progress=False, chain_dirs=(out,))
    rnn = fields[NEXT_EFFECT_NAME]
    assert sum(rnn["chains"].values()) == int((chains.lengths > 0).sum())
    assert read_sidecar(tmp_path / "w", NEXT_EFFECT_NAME)["data"]["chain_folders"] == [str(out)]
    assert rnn["chains"]["test"] > 0  # the held-out draw has chains: they are scored
    assert set(rnn["test_chain_accuracy"]["per_step"]) <= {"2", "3", "4", "5"}
    # fine-tuning starts from those weights and keeps their record; here it adds the presence output
    train_coach(
        data,
        tmp_path / "w2",
        replace(settings, init_from=str(tmp_path / "w"), rnn_presence_weight=0.5),
        only=(NEXT_EFFECT_NAME,),
        progress=False,
        chain_dirs=(out,),
    )
    sidecar = read_sidecar(tmp_path / "w2", NEXT_EFFECT_NAME)
    record = sidecar["started_from"]
    assert record["folder"] == str(tmp_path / "w") and record["test_chain_accuracy"] == rnn["test_chain_accuracy"]
    assert sidecar["architecture"]["presence"] is True and sidecar["settings"]["rnn_presence_weight"] == 0.5
    for name in EFFECT_NAMES:  # a full set again: the tiny CNNs with the fine-tuned RNN
        for suffix in (".safetensors", ".json"):
            (tmp_path / "w2" / f"{name}{suffix}").write_bytes((tiny_coach / f"{name}{suffix}").read_bytes())
    assert load_coach(tmp_path / "w2").next_effect.presence is not None


def _target(renderer: FamilyRenderer, preset: str = "saw", settings=None) -> np.ndarray:
    renderer.load_preset(preset)
    return renderer.render(TARGET_SETTINGS if settings is None else settings, 48)


def _dry(renderer: FamilyRenderer, preset: str = "saw"):
    renderer.load_preset(preset)
    renderer.synth.set_controls(renderer.profile.controls({}))
    return renderer.synth


def test_families_are_complete_draws_of_coach_data(tiny_coach):
    families = load_families(tiny_coach.parent / "families")
    assert families.mel_db80.shape == (3, 32, 128, 88) and families.mfcc.shape == (3, 32, 30, 88)
    assert families.values.shape == (3, len(families.columns)) and not np.isnan(families.values).any()
    assert [families.presets[i] for i in families.preset_index] == ["sine", "triangle", "saw"]
    # subset 0 is the dry preset, subset 31 has every effect on: they differ
    assert np.abs(families.mel_db80[0, 0].astype(float) - families.mel_db80[0, 31].astype(float)).mean() > 0.01
    # an incomplete draw (a missing shard) is left out, not mixed
    (tiny_coach.parent / "families" / "shard-00001.json").rename(tiny_coach.parent / "shard-00001.json")
    try:
        assert len(load_families(tiny_coach.parent / "families")) == 2
    finally:
        (tiny_coach.parent / "shard-00001.json").rename(tiny_coach.parent / "families" / "shard-00001.json")
    # the first N draws only: a folder rendered further keeps the draw set (and split) of an earlier run
    first_two = load_families(tiny_coach.parent / "families", max_draws=2)
    assert first_two.draw_index.tolist() == families.draw_index[:2].tolist()
    assert np.array_equal(first_two.mel_db80, families.mel_db80[:2])
    mel_only = load_families(tiny_coach.parent / "families", with_mfcc=False)  # what an RNN-only run loads
    assert np.array_equal(mel_only.mel_db80, families.mel_db80) and mel_only.mfcc.shape[2] == 0
    with pytest.raises(ReaTimbreError, match="only 3 complete draws"):
        load_families(tiny_coach.parent / "families", max_draws=4)


def test_keep_split_extends_the_split_of_the_first_draws():
    n = 60
    families = Families(
        np.zeros((n, 1, 1, 1)), np.zeros((n, 1, 1, 1)), np.zeros((n, 1)), np.zeros(n, np.int16),
        np.full(n, 48, np.int16), ["a.b"], ["saw"], np.arange(n) * 10,
    )  # fmt: skip
    first, grown = split_families(families.subset(np.arange(40))), split_families(families, keep_split=40)
    for name in ("train", "validation", "test"):
        old, new = getattr(first, name).draw_index, getattr(grown, name).draw_index
        assert new[new < 400].tolist() == old.tolist()  # the first 40 draws keep their split
        assert 0 < len(new[new >= 400]) < 20  # the 20 new draws are split too
    assert sorted(np.concatenate([getattr(grown, k).draw_index for k in ("train", "validation", "test")])) == list(
        families.draw_index
    )
    with pytest.raises(ReaTimbreError, match="at least 3 families on each side"):
        split_families(families, keep_split=59)
    again = split_families(families, keep_split=(40, 50))  # grown twice: 40, then 50, then 60 draws
    once = split_families(families.subset(np.arange(50)), keep_split=40)
    for name in ("train", "validation", "test"):
        old, new = getattr(once, name).draw_index, getattr(again, name).draw_index
        assert new[new < 500].tolist() == old.tolist()  # the 50-draw run's split, itself kept from 40
        assert 0 < len(new[new >= 500]) < 10
    with pytest.raises(ReaTimbreError, match="must increase"):
        split_families(families, keep_split=(50, 40))


def test_a_consuming_split_gives_the_same_parts_without_copying_the_clips():
    n, rng = 30, np.random.default_rng(0)
    families = Families(
        rng.random((n, 2, 3, 4)).astype(np.float16), rng.random((n, 2, 2, 4)).astype(np.float16),
        rng.random((n, 1)), np.arange(n, dtype=np.int16) % 3, np.full(n, 48, np.int16), ["a.b"], ["saw"],
        np.arange(n) * 10,
    )  # fmt: skip
    copied = split_families(families, keep_split=20)
    consumed = split_families(families, keep_split=20, consume=True)
    for name in ("train", "validation", "test"):
        a, b = getattr(copied, name), getattr(consumed, name)
        assert np.shares_memory(b.mel_db80, families.mel_db80)  # views of the one set of clips
        for field in ("mel_db80", "mfcc", "values", "preset_index", "draw_index"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_tiny_training_writes_loadable_models_with_sidecars(tiny_coach):
    models = load_coach(tiny_coach)
    assert set(models.effect_cnns) == set(EFFECT_NAMES)
    distortion = models.sidecars["distortion"]
    assert [h["name"] for h in distortion["heads"]] == ["mode", "drive"]
    assert distortion["heads"][0]["classes"] == len(
        load_profile("vital").effect("distortion").parameter("mode").classes
    )
    assert distortion["data"]["families"] == 3 and distortion["command"] == "test"
    assert distortion["settings"]["average_decay"] == 0.9  # the training recipe is on record
    assert "mae_0_1" in distortion["test"]["drive"] and "accuracy" in distortion["test"]["mode"]
    accuracy = models.sidecars[NEXT_EFFECT_NAME]["test_next_effect_accuracy"]
    assert set(accuracy["per_step"]) == {"1", "2", "3", "4", "5"}
    size_bytes = sum(p.stat().st_size for p in tiny_coach.glob("*.safetensors"))
    assert size_bytes < 6_000_000


def test_loop_never_ends_worse_and_suggests_up_to_the_closest_sound(tiny_coach, renderer):
    models = load_coach(tiny_coach)
    target = _target(renderer)
    result = run_coach(models, _dry(renderer), target, max_steps=5)
    assert result.final.metrics["mse"] <= result.initial.metrics["mse"]
    best = result.initial.metrics["mse"]
    for step in result.steps:  # a step not closer on its own is suggested only when a later one makes up for it
        if step.kept:
            assert step.after.metrics["mse"] < best
            best = step.after.metrics["mse"]
    if result.steps:
        assert result.steps[-1].kept and result.final.metrics["mse"] == best
    for step in result.undone:  # nothing tried after the suggested steps got closer than they did
        assert step.after.metrics["mse"] >= best * (1 - MIN_RELATIVE_GAIN)
    assert [s.number for s in result.tried] == list(range(1, len(result.tried) + 1))
    if result.undone:
        # undone steps left the synth as it was: a re-render matches the final state
        again = renderer.synth.render(48, 1.0, 1.0, CLIP_SAMPLES / 44100)
        assert np.allclose(again, result.final.audio, atol=1e-4)


class _OracleCNN:
    """Test double: returns the target's true settings, so the loop's apply/render/measure path is exercised."""

    def __init__(self, values):
        self.values = values

    def predict(self, *tensors):
        return [dict(self.values)]


def test_loop_with_perfect_predictions_reaches_the_target(tiny_coach, renderer):
    models = load_coach(tiny_coach)
    oracle = replace(models, effect_cnns={name: _OracleCNN(TARGET_SETTINGS.get(name, {})) for name in EFFECT_NAMES})
    target = _target(renderer)
    mask = sum(1 << EFFECT_NAMES.index(n) for n in TARGET_SETTINGS)
    used = [0]

    def in_order(options):
        name = next_effect(mask, used[0], models.step_order)
        used[0] |= 1 << EFFECT_NAMES.index(name)
        return name

    result = run_coach(oracle, _dry(renderer), target, max_steps=3, choose=in_order)
    assert [s.effect for s in result.steps] == ["distortion", "reverb", "eq"]
    assert result.initial.metrics["mse"] > 0.002
    assert result.final.metrics["mse"] < 1e-4
    assert not result.out_of_reach
    assert result.steps[0].description == "Distortion on: Hard Clip, Distortion Drive +19.6 dB"


def test_target_equal_to_the_patch_is_not_out_of_reach(tiny_coach, renderer):
    synth = _dry(renderer)
    target = synth.render(48, 1.0, 1.0, CLIP_SAMPLES / 44100)
    result = run_coach(load_coach(tiny_coach), synth, target, max_steps=2)
    assert result.initial.metrics["mse"] < 1e-4
    if not result.steps:
        assert not result.out_of_reach and "already sounds like the target" in result.message


def test_target_the_effects_cannot_make_is_out_of_reach(tiny_coach, renderer):
    synth = _dry(renderer)
    target = synth.render(72, 1.0, 1.0, CLIP_SAMPLES / 44100)  # two octaves up: no effect setting makes that
    result = run_coach(load_coach(tiny_coach), synth, target, max_steps=3)
    assert result.final.metrics["mse"] <= result.initial.metrics["mse"]
    assert result.out_of_reach and "out of reach" in result.message


def test_coach_json_matches_the_reaper_bridge(tiny_coach, renderer):
    models = load_coach(tiny_coach)
    oracle = replace(models, effect_cnns={name: _OracleCNN(TARGET_SETTINGS.get(name, {})) for name in EFFECT_NAMES})
    order = iter(["distortion", "reverb", "eq"])
    target = _target(renderer)
    synth = _dry(renderer)
    result = run_coach(oracle, synth, target, max_steps=3, choose=lambda options: next(order))
    body = json.loads(json.dumps(coach_json(result, preset="saw")))
    plan = CoachPlan.from_coach_json(body)
    assert plan.profile == "vital" and len(plan.steps) == 3
    names = synth.control_names()
    first = body["steps"][0]
    assert first["effect"] == "distortion" and first["metrics"]["mse_before"] == body["initial_metrics"]["mse"]
    assert body["steps"][-1]["helped"] and body["final_metrics"]["mse"] < body["initial_metrics"]["mse"] / 10
    by_control = {c["control"]: c for c in first["changes"]}
    assert by_control["distortion_on"]["value"] == 1.0 and by_control["distortion_on"]["cc"] == 103
    drive = by_control["distortion_drive"]
    assert drive["param_name"] == synth.display_name("distortion_drive") == "Distortion Drive"
    assert drive["param_index"] == synth.host_index("distortion_drive") != names.index("distortion_drive")
    assert drive["value"] == pytest.approx(synth.normalized_value("distortion_drive"), abs=1e-6)
    assert drive["display"] == "+19.6 dB" and drive["cc"] == 24
    assert by_control["distortion_type"]["display"] == "Hard Clip"
    for step in plan.steps:
        for change in step.changes:
            assert 0.0 <= change.value <= 1.0 and change.fx_name == "Vital"
            assert 0 <= change.param_index < len(names)


def test_coach_cli_any_rate_target_json_report_and_patch(tiny_coach, renderer, tmp_path, capsys):
    target = _target(renderer, "square")
    resampled = soxr.resample(target.T, 44100, 48000)
    padded = np.concatenate([np.zeros((24_000, 2), np.float32), resampled])  # the note starts at 0.5 s
    sf.write(tmp_path / "target.flac", padded[:, :1], 48000)  # mono FLAC at 48 kHz
    args = ["coach", "--target", str(tmp_path / "target.flac"), "--preset", "square", "--start", "0.5"]
    args += ["--models", str(tiny_coach), "--max-steps", "2", "--json", str(tmp_path / "steps.json")]
    args += ["--report", str(tmp_path / "report"), "--save-patch", str(tmp_path / "suggested.vital")]
    assert main(args) == 0
    out = capsys.readouterr().out
    first, rest = out.split("\n", 1)
    assert first.startswith("note: heard ") and "target from 0.500 s" in first  # --start given, note heard
    assert rest.startswith("start: MSE×100") and "stopped:" in out
    body = json.loads((tmp_path / "steps.json").read_text())
    assert body["preset"] == "square" and body["start_seconds"] == 0.5
    assert body["target_note"]["heard"]["kind"] == "pitched" and body["target_note"]["note"] == 48
    CoachPlan.from_coach_json(body)
    assert (tmp_path / "report" / "progression.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "report" / "00-current.wav").exists() and (tmp_path / "report" / "target.wav").exists()
    assert len(list((tmp_path / "report").glob("0[1-9]-*.wav"))) == len(body["steps"])
    assert json.loads((tmp_path / "suggested.vital").read_text())["settings"]
    # the patch file starts a second run; an existing --json is never overwritten
    again = ["coach", "--target", str(tmp_path / "target.flac"), "--patch", str(tmp_path / "suggested.vital")]
    again += ["--start", "0.5", "--models", str(tiny_coach), "--json", str(tmp_path / "steps.json")]
    before = (tmp_path / "steps.json").read_bytes()
    assert main(again) == 1
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "steps.json").read_bytes() == before


def test_coach_cli_rejects_bad_input_in_one_line(tiny_coach, tmp_path, capsys):
    sf.write(tmp_path / "short.wav", np.full(4410, 0.1, np.float32), 44100)
    base = ["coach", "--target", str(tmp_path / "short.wav"), "--models", str(tiny_coach)]
    assert main([*base, "--preset", "saw", "--start", "3"]) == 1
    assert "past the end" in capsys.readouterr().err
    assert main([*base, "--preset", "no-such-preset"]) == 1
    assert "unknown preset" in capsys.readouterr().err
    (tmp_path / "bad.vital").write_text("not json")
    assert main([*base, "--patch", str(tmp_path / "bad.vital")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a Vital patch" in err
    assert main([*base, "--preset", "saw", "--max-steps", "9"]) == 1
    assert "--max-steps" in capsys.readouterr().err
    assert main([*base, "--preset", "saw", "--threads", "0"]) == 1
    assert "--threads must be at least 1" in capsys.readouterr().err


def test_effects_already_on_in_the_patch_are_left_alone(tiny_coach, renderer):
    target = _target(renderer)
    synth = _dry(renderer)
    synth.set_controls(renderer.profile.controls({"distortion": TARGET_SETTINGS["distortion"]}))
    result = run_coach(load_coach(tiny_coach), synth, target, max_steps=4)
    assert result.already_on == ("distortion",)
    assert all(step.effect != "distortion" for step in result.steps)
    assert synth.get_control("distortion_on") == 1.0 and synth.get_control("distortion_type") == 1.0
    assert coach_json(result)["already_on"] == ["distortion"]


def test_coach_eval_prints_the_paper_tables_and_its_seed_picks_the_targets(tmp_path, capsys):
    from models.coach.evaluate import vital_targets

    first, again = (next(vital_targets("basic_shapes", 1, 48, seed=s)) for s in (1, 1))
    other = next(vital_targets("basic_shapes", 1, 48, seed=2))
    assert np.array_equal(first.audio, again.audio)  # a seed is one fixed target set
    assert not np.allclose(first.audio, other.audio)  # another seed, another target
    out = tmp_path / "eval.json"
    args = ["coach-eval", "--targets", "2", "--groups", "basic_shapes", "--seed", "7", "--json", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "basic shapes — 2 held-out targets" in printed and "Next-effect accuracy" in printed
    body = json.loads(out.read_text())["basic shapes"]
    assert body["seed"] == 7 and body["targets"] == 2
    mse = body["coach"]["mse"]
    assert mse["final"] <= mse["initial"] and len(mse["per_step"]) == 5  # the coach never ends farther away
    assert main(args) == 1 and "already exists" in capsys.readouterr().err  # never overwrites its JSON


def test_coach_eval_ood_sets_side_by_side(tmp_path, capsys):
    out = tmp_path / "ood.json"
    args = ["coach-eval", "--ood", "--targets", "3", "--seed", "3", "--max-steps", "2", "--json", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "basic shapes" not in printed  # --ood alone runs only the two sets
    assert "Final/initial means, in distribution (3) and out of distribution (3):" in printed
    body = json.loads(out.read_text())
    inside, outside = (body[k] for k in body)
    assert "out of distribution" in list(body)[1] and outside["targets"] == 3
    assert set(outside["by_start"]) == {"ood-init", "ood-init_filter", "ood-random_osc"}
    assert len(inside["by_start"]) == 3  # the first three presets
    assert outside["coach"]["mse"]["final"] <= outside["coach"]["mse"]["initial"]


def test_wide_coach_data_keeps_each_draws_note_and_chains_refuse_varied_presets(tmp_path, capsys):
    from models.synth.dataset import plan_clip

    config = DatasetConfig(group="basic_shapes", clips=64, shard_clips=32, note=36, note_high=84, variation=1.0)
    generate(config, tmp_path / "wide", 1, progress=False)
    families = load_families(tmp_path / "wide")
    assert list(families.note) == [plan_clip(config, 32 * d).note for d in range(2)]
    dry_sine, dry_triangle = (families.mel_db80[d, 0].astype(np.float32) for d in range(2))
    assert np.abs(dry_sine - dry_triangle).mean() > 1e-3  # each draw renders its own patch and note
    command = ["coach-chains", "--data", str(tmp_path / "wide"), "--out", str(tmp_path / "chains"), "--quiet"]
    assert main([*command, "--chains", "2"]) == 1
    assert "varied presets" in capsys.readouterr().err
