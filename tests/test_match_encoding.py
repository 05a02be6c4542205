"""Parameter encoding for patch matching: every parameter of a patch survives encode → decode → synth → render."""

from __future__ import annotations

import numpy as np
import pytest

from models.asp.data import MatchDataConfig, generate, load_match_data, patch_key, plan_patches, rms_dbfs, split_of
from models.errors import ReaTimbreError
from models.metrics import lsd_db
from models.synth.features import clip_features
from models.synth.match_synths import (
    AMSYNTH_BANK_DIR,
    AmsynthMatch,
    DexedMatch,
    KarsMatch,
    VitalMatch,
    parse_amsynth_bank,
)
from models.synth.plugin import AMSYNTH_VST_PATH
from models.synth.spaces import CATEGORICAL, ParameterSpace, ParameterSpec

needs_amsynth = pytest.mark.skipif(
    not (AMSYNTH_VST_PATH.exists() and AMSYNTH_BANK_DIR.is_dir()), reason="amsynth (Debian package) not installed"
)
needs_kars = pytest.mark.skipif(not KarsMatch.plugin_path.exists(), reason="Kars (dpf-plugins-vst) not installed")


def _close(space: ParameterSpace, a: dict[str, float], b: dict[str, float], relative: float) -> list[str]:
    """Names whose values differ by more than ``relative`` of their range (categoricals: at all)."""
    bad = []
    for p in space.parameters:
        if p.kind == CATEGORICAL:
            if p.class_index(a[p.name]) != p.class_index(b[p.name]) or abs(a[p.name] - b[p.name]) > 1e-5:
                bad.append(p.name)
        elif abs(a[p.name] - b[p.name]) > relative * (p.high - p.low):
            bad.append(p.name)
    return bad


def test_one_hot_and_continuous_layout() -> None:
    space = ParameterSpace(
        "toy",
        [
            ParameterSpec("level", "continuous", 0.5, 0.0, 2.0),
            ParameterSpec("wave", CATEGORICAL, 0.0, classes=(0.0, 1.0, 2.0)),
            ParameterSpec("pitch", "continuous", 0.0, -12.0, 12.0),
        ],
    )
    vector = space.encode({"level": 1.5, "wave": 2.0, "pitch": -6.0})
    np.testing.assert_allclose(vector, [0.75, 0, 0, 1, 0.25])
    layout = space.layout()
    assert layout.continuous == (0, 4) and layout.groups == ((1, 3),) and layout.size == 5
    assert space.decode(vector) == {"level": 1.5, "wave": 2.0, "pitch": -6.0}
    assert space.decode(np.array([1.7, 0.1, 0.3, 0.2, -1.0]))["wave"] == 1.0  # largest score; clipped values
    assert space.decode(np.array([1.7, 0.1, 0.3, 0.2, -1.0]))["pitch"] == -12.0
    with pytest.raises(ReaTimbreError, match="no matched parameter"):
        space.encode({"cutoff": 1.0})


def _round_trip(synth, patches: list[dict[str, float]], render_patches: int, read_tolerance: float) -> None:
    space = synth.space
    for native in patches:
        native = space.complete(native)
        decoded = space.decode(space.encode(native))
        assert not _close(space, native, {**native, **decoded}, 1e-6), _close(space, native, decoded, 1e-6)
        synth.apply(decoded)
        assert not _close(space, native, synth.read(), read_tolerance)
    for native in patches[:render_patches]:
        a = synth.render(native, 48, 1.0, 0.5, 0.75)
        again = synth.render(native, 48, 1.0, 0.5, 0.75)
        b = synth.render(space.decode(space.encode(native)), 48, 1.0, 0.5, 0.75)
        assert float(np.abs(a).max()) > 1e-4
        if np.abs(a - again).max() <= 1e-4:
            np.testing.assert_allclose(a, b, atol=1e-4)
        else:  # renders that vary by design (noise, free-running phases): as close as the patch to itself,
            # on average over pairs (one pair's distance varies by several dB: Kars's plucks are noise-excited, so
            # six renders of each: with three, the means once differed beyond the bound by chance, in CI)
            more = [synth.render(native, 48, 1.0, 0.5, 0.75) for _ in range(4)]
            originals = [clip_features(x).mel_db80 for x in (a, again, *more)]
            decoded = space.decode(space.encode(native))
            decoded_mels = [clip_features(x).mel_db80 for x in (b, *[synth.render(decoded, 48, 1.0, 0.5, 0.75)
                                                                      for _ in range(5)])]  # fmt: skip
            self_db = np.mean([lsd_db(x, y) for i, x in enumerate(originals) for y in originals[i + 1 :]])
            cross_db = np.mean([lsd_db(x, y) for x in originals for y in decoded_mels])
            assert cross_db <= 1.3 * self_db + 0.5, (cross_db, self_db)


def test_vital_round_trip() -> None:
    synth = VitalMatch()
    rng = np.random.default_rng(3)
    patches = [synth.space.random_patch(rng) for _ in range(6)]
    _round_trip(synth, patches, render_patches=2, read_tolerance=1e-5)


@needs_amsynth
def test_amsynth_presets_round_trip() -> None:
    synth = AmsynthMatch()
    presets = synth.presets()
    assert len(presets) == 3482  # Debian's 28 banks
    picks = [presets[i].values for i in np.random.default_rng(0).choice(len(presets), 12, replace=False)]
    # every parameter of a human preset survives, within the host's float32 normalised resolution
    _round_trip(synth, picks, render_patches=3, read_tolerance=1e-6)


@needs_amsynth
def test_amsynth_native_values_reach_the_plugin() -> None:
    """The table's ranges are amsynth's: native values set through the host show as amsynth's control values."""
    synth = AmsynthMatch()
    synth.apply({"filter_cutoff": 1.0, "master_vol": 0.5, "osc2_range": 2.0, "amp_attack": 0.5})
    assert float(synth.synth.control_text("filter_cutoff")) == pytest.approx(16.0, rel=1e-3)  # 16^value
    assert float(synth.synth.control_text("master_vol")) == pytest.approx(0.25, rel=1e-3)  # value^2
    assert float(synth.synth.control_text("osc2_range")) == pytest.approx(4.0)  # 2^value
    assert float(synth.synth.control_text("amp_attack").split()[0]) == pytest.approx(0.5**3 + 0.0005, rel=1e-3)


def test_amsynth_bank_parsing_and_writing() -> None:
    text = "amSynth\n<preset> <name> one\n<parameter> osc1_waveform 3\n<parameter> bogus 1\n<preset> <name> two\n"
    presets = parse_amsynth_bank(text, "bank")
    assert [p.name for p in presets] == ["bank/one#0", "bank/two#1"]
    assert presets[0].values == {"osc1_waveform": 3.0}
    synth = AmsynthMatch()
    written = synth.patch_file_bytes({"osc1_waveform": 1.0}, "my patch").decode()
    again = parse_amsynth_bank(written, "x")[0]
    assert again.name == "x/my_patch#0" and again.values == synth.space.complete({"osc1_waveform": 1.0})


@needs_kars
def test_kars_round_trip() -> None:
    synth = KarsMatch()
    rng = np.random.default_rng(5)
    _round_trip(synth, [synth.space.random_patch(rng) for _ in range(6)], render_patches=2, read_tolerance=1e-6)


@needs_amsynth
def test_amsynth_presets_deduplicated_so_no_preset_leaks() -> None:
    synth = AmsynthMatch()
    plans = plan_patches(MatchDataConfig(synth="amsynth"), synth)
    keys = [patch_key(synth.space, p.values) for p in plans]
    assert len(set(keys)) == len(keys) < len(synth.presets())  # duplicates (e.g. 59 init patches) removed
    by_key = {}
    for preset in synth.presets():  # every copy of a preset lands in its one split
        key = patch_key(synth.space, synth.space.complete(preset.values))
        by_key.setdefault(key, set()).add(split_of(key, 0))
    assert all(len(splits) == 1 for splits in by_key.values())
    assert {p.split for p in plans} == {0, 1, 2}


def test_dexed_round_trip() -> None:
    synth = DexedMatch()
    rng = np.random.default_rng(7)
    patches = [synth.random_patch(rng) for _ in range(8)]
    # the DX7 stores integers: a decoded value rounds back to the drawn one exactly
    _round_trip(synth, patches, render_patches=3, read_tolerance=1e-9)


def test_dexed_random_voices_sound_and_use_every_algorithm() -> None:
    synth = DexedMatch()
    patches = [synth.random_patch(np.random.default_rng([0, i])) for i in range(400)]
    assert {p["algorithm"] for p in patches} == set(range(32))
    assert all(float(v).is_integer() for p in patches for v in p.values())
    levels = [rms_dbfs(synth.render(p, 52, 1.0, 0.75, 1.01)) for p in patches[:40]]
    assert sum(level < -40.0 for level in levels) <= 2  # the algorithm's carriers are drawn loud


def test_dexed_patch_file_is_a_cartridge_dexed_loads(tmp_path) -> None:
    import dexed

    synth = DexedMatch()
    native = synth.random_patch(np.random.default_rng(11))
    data = synth.patch_file_bytes(native, "my bright bell")
    assert len(data) == 4104 and data[:6] == bytes([0xF0, 0x43, 0x00, 0x09, 0x20, 0x00]) and data[-1] == 0xF7
    (tmp_path / "bank.syx").write_bytes(data)
    voices = dexed.Patch.load_bank(str(tmp_path / "bank.syx"))  # dexed-py's own reader checks the checksum
    assert len(voices) == 32 and voices[0].name == "my bright " and voices[1].name.strip() == "INIT VOICE"
    assert voices[0].algorithm == native["algorithm"]
    assert [voices[0].op[i].output_level for i in range(6)] == [native[f"op{i + 1}_output_level"] for i in range(6)]
    assert [voices[0].op[i].frequency_coarse for i in range(6)] == [
        native[f"op{i + 1}_frequency_coarse"] for i in range(6)
    ]
    assert voices[0].op[2].envelope.rates[0] == native["op3_rate1"]
    assert voices[0].op[2].envelope.levels[2] == native["op3_level2"]  # the sustain is held


def test_dexed_match_data_holds_its_drawn_voices(tmp_path) -> None:
    config = MatchDataConfig(synth="dexed", patches=24, shard_patches=12)
    generate(config, tmp_path / "d", workers=1, progress=False)
    data = load_match_data(tmp_path / "d")
    synth = DexedMatch()
    assert sorted(data.patch_values) == list(range(24))
    for index, values in data.patch_values.items():
        assert values == synth.random_patch(np.random.default_rng([config.seed, index]))
    for row in range(len(data.note)):
        expected = synth.space.encode(data.patch_values[int(data.patch_index[row])])
        np.testing.assert_array_equal(data.params[row], expected)


def test_a_vital_search_render_sounds_as_the_patch_file_will() -> None:
    """`match` renders Vital's candidates on the previous patch (no init preset reloaded, a quarter of the time);
    what it measures must be what the written patch plays, which starts from the init preset."""
    from models.synth.features import CLIP_SAMPLES

    synth, rng = VitalMatch(), np.random.default_rng(11)
    patches = [synth.space.random_patch(rng) for _ in range(6)]
    seconds = CLIP_SAMPLES / 44_100
    fresh = [clip_features(synth.render(p, 52, 1.0, 0.75, seconds)).mel_db80 for p in patches]
    for patch, reference in zip(patches[::-1], fresh[::-1], strict=True):  # each after another patch
        searched = clip_features(synth.render(patch, 52, 1.0, 0.75, seconds, from_init=False)).mel_db80
        assert float(lsd_db(searched, reference)) < 0.05
    different = float(lsd_db(fresh[0], fresh[1]))
    assert different > 1.0  # the patches themselves differ: the check above could fail
