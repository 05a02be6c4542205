"""A VST instrument hosted through DawDreamer (amsynth, from Debian's packages) behind the Synth interface."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from models import metrics
from models.errors import ReaTimbreError
from models.synth.features import CLIP_SAMPLES, clip_features
from models.synth.plugin import AMSYNTH_VST_PATH, PluginSynth

CLIP_SECONDS = CLIP_SAMPLES / 44100


def _amsynth_available() -> bool:
    """amsynth is there, or install.py's --dev step can install it now (Linux, root, apt-get)."""
    if AMSYNTH_VST_PATH.exists():
        return True
    spec = importlib.util.spec_from_file_location(
        "reatimbre_install", Path(__file__).resolve().parents[1] / "install.py"
    )
    install = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(install)
    return bool(install.ensure_amsynth(quiet=True))


@pytest.fixture(scope="module")
def amsynth() -> PluginSynth:
    if not _amsynth_available():
        pytest.skip(
            f"amsynth ({AMSYNTH_VST_PATH}) is not installed and cannot be installed here "
            "(needs Linux, root and apt-get; `python3 install.py --dev` installs it)"
        )
    return PluginSynth(AMSYNTH_VST_PATH)


def test_plugin_controls_are_its_parameter_names_with_host_indices(amsynth: PluginSynth) -> None:
    names = amsynth.control_names()
    assert len(names) == 41 and "reverb_wet" in names and "filter_cutoff" in names
    assert amsynth.parameter_index("reverb_wet") == 27
    amsynth.set_controls({"amp_release": 0.0})
    assert amsynth.normalized_value("amp_release") == pytest.approx(0.0)
    assert amsynth.control_text("amp_attack").endswith("s")
    with pytest.raises(ReaTimbreError, match="0..1"):
        amsynth.set_controls({"reverb_wet": 1.5})
    with pytest.raises(ReaTimbreError, match="no control named 'drive'"):
        amsynth.set_controls({"drive": 0.5})
    amsynth.set_host_values({27: 0.25})  # how a Serum profile's indexed parameters are applied
    assert amsynth.get_control("reverb_wet") == pytest.approx(0.25)
    with pytest.raises(ReaTimbreError, match="no parameter index 270"):
        amsynth.set_host_values({270: 0.5})


def test_plugin_renders_the_note_in_stereo(amsynth: PluginSynth) -> None:
    audio = amsynth.render(48, 1.0, 1.0, CLIP_SECONDS)
    assert audio.shape == (2, CLIP_SAMPLES) and audio.dtype == np.float32
    assert np.abs(audio).max() > 0.05
    mono = audio.mean(axis=0)[4410:40000]
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(mono.size)))
    assert np.argmax(spectrum) * 44100 / mono.size == pytest.approx(130.8, abs=3.0)


def test_plugin_state_does_not_leak_into_the_next_render(amsynth: PluginSynth) -> None:
    amsynth.set_controls({"reverb_wet": 0.5, "reverb_roomsize": 0.9, "amp_release": 0.3, "distortion_crunch": 0.4})
    first = clip_features(amsynth.render(48, 1.0, 1.0, CLIP_SECONDS))
    amsynth.render(60, 1.0, 1.0, 1.0)  # leaves voices releasing and a reverb tail
    amsynth.render(36, 0.8, 0.9, 0.9)
    again = clip_features(amsynth.render(48, 1.0, 1.0, CLIP_SECONDS))
    report = metrics.spectral_report(first.mel_db80, again.mel_db80, first.mfcc, again.mfcc)
    assert report["lsd_db"] < 0.05 and report["mfcc_distance"] < 0.5, report


def test_plugin_patch_round_trip_and_mismatch(amsynth: PluginSynth, tmp_path) -> None:
    amsynth.set_controls({"filter_cutoff": 0.4, "osc1_waveform": 0.25})
    path = amsynth.save_patch(tmp_path / "patch.json")
    other = PluginSynth(AMSYNTH_VST_PATH)
    other.load_patch(path)
    assert other.get_control("filter_cutoff") == pytest.approx(0.4)
    a = clip_features(other.render(48, 1.0, 1.0, CLIP_SECONDS))
    b = clip_features(amsynth.render(48, 1.0, 1.0, CLIP_SECONDS))
    assert metrics.lsd_db(a.mel_db80, b.mel_db80) < 0.05  # same patch sounds the same in another instance
    path.write_text(path.read_text().replace("amsynth_vst.so", "serum.so"))
    with pytest.raises(ReaTimbreError, match="not 'amsynth_vst.so'"):
        other.load_patch(path)


def test_missing_plugin_is_one_clear_error(tmp_path) -> None:
    with pytest.raises(ReaTimbreError, match="plug-in not found"):
        PluginSynth(tmp_path / "Serum.so")


def test_plugin_noise_floor_over_random_settings_is_tiny(amsynth: PluginSynth) -> None:
    from models.synth.repeatability import plugin_noise_floor

    controls = ["reverb_wet", "reverb_roomsize", "distortion_crunch", "filter_cutoff", "filter_resonance"]
    controls += ["amp_release", "osc2_detune", "osc_mix"]  # not osc waveforms: amsynth's noise ones are random
    floor = plugin_noise_floor(lambda: PluginSynth(AMSYNTH_VST_PATH), controls, clips=3)
    assert floor["lsd_db"] < 0.05 and floor["mfcc_distance"] < 0.5, floor
