"""coach-data: deterministic clip plans, shards with provenance, resuming, refusing to touch other folders."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from models.atomic_files import leftover_partials
from models.errors import ReaTimbreError
from models.synth.dataset import (
    EFFECT_SUBSETS,
    MANIFEST_NAME,
    DatasetConfig,
    clip_without,
    generate,
    load_shard,
    plan_clip,
    render_shard,
    shard_paths,
)
from models.synth.profiles import EFFECT_NAMES, load_profile
from server.cli import main

SMALL = DatasetConfig(group="basic_shapes", clips=6, shard_clips=4, seed=3)


def test_draws_render_one_setting_under_all_thirty_two_effect_subsets() -> None:
    assert len(set(EFFECT_SUBSETS)) == 32 and EFFECT_SUBSETS[0] == () and EFFECT_SUBSETS[31] == EFFECT_NAMES
    assert EFFECT_SUBSETS[0b10010] == ("distortion", "reverb")
    config = DatasetConfig(group="advanced_shapes", clips=128)
    plans = [plan_clip(config, i) for i in range(128)]
    assert [p.preset for p in plans[::32]] == config.presets()  # one draw per preset, cycling
    for draw in range(4):
        full = plans[32 * draw + 31].settings
        for plan in plans[32 * draw : 32 * draw + 32]:
            assert plan.preset == plans[32 * draw].preset
            assert plan.settings == {name: full[name] for name in EFFECT_SUBSETS[plan.subset_mask]}
    assert plans[0].settings == {} and plans[31].settings != plans[63].settings


def test_clip_without_finds_the_same_sound_with_effects_removed() -> None:
    target = 5 * 32 + 0b10110  # draw 5: distortion, eq, reverb
    assert clip_without(target, ["eq"]) == 5 * 32 + 0b10010
    assert clip_without(target, ["eq", "reverb", "phaser"]) == 5 * 32 + 0b00010
    with pytest.raises(ReaTimbreError, match="unknown effect"):
        clip_without(target, ["chorus"])


def test_clip_plans_are_deterministic_and_within_the_profile() -> None:
    profile = load_profile("vital")
    for i in range(40):
        plan = plan_clip(SMALL, i)
        assert plan == plan_clip(SMALL, i)
        for effect, values in plan.settings.items():
            profile.effect(effect).controls(values)  # every value is valid for the profile
    assert plan_clip(SMALL, 5) != plan_clip(DatasetConfig(group="basic_shapes", clips=6, seed=4), 5)


def test_generate_writes_shards_with_features_and_full_provenance(tmp_path) -> None:
    out = tmp_path / "data"
    summary = generate(SMALL, out, workers=1, progress=False)
    assert summary["clips_rendered"] == 6 and summary["shards"] == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"] == SMALL.to_json() and manifest["presets"] == ["sine", "triangle", "saw", "square"]
    arrays, provenance = load_shard(out, 1)
    assert arrays["mel_db80"].shape == (2, 128, 88) and arrays["mel_db80"].dtype == np.float16
    assert arrays["mfcc"].shape == (2, 30, 88)
    assert list(arrays["clip_index"]) == [4, 5]
    assert list(arrays["draw_index"]) == [0, 0] and list(arrays["subset_mask"]) == [4, 5]
    columns = provenance["param_columns"]
    for row, clip in enumerate(provenance["clips"]):
        plan = plan_clip(SMALL, clip["clip"])
        assert clip["preset"] == plan.preset and clip["parameters"] == plan.settings
        assert list(arrays["effects_on"][row]) == [name in plan.settings for name in EFFECT_NAMES]
        for c, column in enumerate(columns):
            effect, parameter = column.split(".")
            expected = plan.settings.get(effect, {}).get(parameter, np.nan)
            np.testing.assert_equal(arrays["params"][row, c], np.float32(expected))
        assert arrays["peak"][row] > 0.01  # audible
    assert not list(out.glob(".*tmp"))


def test_render_shard_is_deterministic(tmp_path) -> None:
    first = render_shard(SMALL, 1)
    second = render_shard(SMALL, 1)
    np.testing.assert_array_equal(first.arrays["params"], second.arrays["params"])
    mel_difference = np.abs(first.arrays["mel_db80"].astype(np.float32) - second.arrays["mel_db80"]).max()
    assert mel_difference * 80 < 0.3  # dB; float16 storage and the measured render noise floor


def test_an_interrupted_run_resumes_with_only_the_missing_shards(tmp_path) -> None:
    out = tmp_path / "data"
    generate(SMALL, out, workers=1, progress=False)
    before, _ = load_shard(out, 0)
    shard_paths(out, 1)[1].unlink()  # shard 1 never finished (its JSON is written last)
    # a worker killed while writing shard 1's npz leaves the atomic write's temporary file behind
    killed = "import os, sys\nfrom models.atomic_files import atomic_path\n"
    killed += "with atomic_path(sys.argv[1]) as partial:\n    partial.write_bytes(b'half')\n    os._exit(9)\n"
    subprocess.run([sys.executable, "-c", killed, str(shard_paths(out, 1)[0])], check=False)
    assert len(leftover_partials(out)) == 1
    summary = generate(SMALL, out, workers=1, progress=False)
    assert summary["clips_rendered"] == 2 and summary["clips_present_before"] == 4
    after, _ = load_shard(out, 0)
    np.testing.assert_array_equal(before["mel_db80"], after["mel_db80"])  # untouched
    assert shard_paths(out, 1)[1].exists() and not leftover_partials(out)


def test_a_larger_clip_count_grows_the_folder_by_new_draws_only(tmp_path) -> None:
    out = tmp_path / "data"
    four = DatasetConfig(**(SMALL.to_json() | {"clips": 4}))
    generate(four, out, workers=1, progress=False)
    before, _ = load_shard(out, 0)
    summary = generate(SMALL, out, workers=1, progress=False)  # 6 clips: one more shard
    assert summary["clips_rendered"] == 2 and summary["clips_present_before"] == 4
    after, _ = load_shard(out, 0)
    np.testing.assert_array_equal(before["mel_db80"], after["mel_db80"])  # untouched
    grown, _ = load_shard(out, 1)
    np.testing.assert_array_equal(grown["params"], render_shard(SMALL, 1).arrays["params"])  # same draws as one run
    assert json.loads((out / MANIFEST_NAME).read_text())["config"]["clips"] == 6
    with pytest.raises(ReaTimbreError, match="partial shard"):
        generate(DatasetConfig(**(SMALL.to_json() | {"clips": 8})), out, workers=1, progress=False)
    with pytest.raises(ReaTimbreError, match="can only grow"):
        generate(four, out, workers=1, progress=False)


def test_other_folders_are_refused_untouched(tmp_path) -> None:
    out = tmp_path / "data"
    generate(SMALL, out, workers=1, progress=False)
    with pytest.raises(ReaTimbreError, match="different settings"):
        generate(DatasetConfig(group="basic_shapes", clips=8, shard_clips=4, seed=4), out, workers=1, progress=False)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "song.wav").write_bytes(b"RIFF")
    with pytest.raises(ReaTimbreError, match="not an empty folder"):
        generate(SMALL, busy, workers=1, progress=False)
    assert [p.name for p in busy.iterdir()] == ["song.wav"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("clips", 0, "--clips"), ("note", 200, "--note"), ("group", "pads", "unknown preset group")],
)
def test_bad_configs_raise_one_clear_error(field: str, value, message: str) -> None:
    config = DatasetConfig(**(SMALL.to_json() | {field: value}))
    with pytest.raises(ReaTimbreError, match=message):
        config.validate()


def test_cli_with_two_worker_processes(tmp_path, capsys) -> None:
    out = tmp_path / "cli"
    args = ["coach-data", "--group", "advanced_modulating_shapes", "--clips", "4", "--shard-clips", "2"]
    assert main([*args, "--out", str(out), "--workers", "2", "--quiet", "--note", "55"]) == 0
    assert "4 clips rendered into 2 shards" in capsys.readouterr().out
    arrays, provenance = load_shard(out, 1)
    assert provenance["config"]["note"] == 55 and arrays["mel_db80"].shape[0] == 2
    assert main([*args, "--out", str(out), "--workers", "2", "--quiet", "--note", "55"]) == 0
    assert "0 clips rendered (4 were already there)" in capsys.readouterr().out
    assert main(["coach-data", "--group", "all", "--clips", "0", "--out", str(tmp_path / "x"), "--quiet"]) == 1
    assert capsys.readouterr().err.strip() == "reatimbre: error: --clips must be at least 1, got 0"
