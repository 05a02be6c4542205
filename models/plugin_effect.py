"""A VST2/VST3 audio effect, hosted headless through DawDreamer: dry audio in, the plug-in's output back.

The instrument host (:mod:`models.synth.plugin`) does the same for synths; this one feeds a recording through an
effect, to make dry/wet pairs from real third-party plug-ins (Debian's ``dragonfly-reverb-vst``, ``zam-plugins``,
``dpf-plugins-vst`` load this way). Parameters are set by name to the plug-in's host-normalised 0..1 values. The
dry is rendered with ``tail_seconds`` of silence after it, so a reverb's or delay's tail is kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.errors import ReaTimbreError
from models.synth.plugin import _quiet_native_output

BLOCK_SAMPLES = 512


def render_effect(
    plugin_path: str | Path,
    dry: np.ndarray,
    sample_rate_hz: int,
    parameters: dict[str, float] | None = None,
    tail_seconds: float = 0.0,
) -> np.ndarray:
    """``dry`` (samples,) or (channels, samples) through the plug-in: (outputs, samples + tail) float32."""
    import dawdreamer

    path = Path(plugin_path)
    if not path.exists():
        raise ReaTimbreError(f"plug-in not found: {path}")
    audio = np.asarray(dry, dtype=np.float32)
    audio = audio[None, :] if audio.ndim == 1 else audio
    audio = np.pad(audio, ((0, 0), (0, int(round(tail_seconds * sample_rate_hz)))))
    engine = dawdreamer.RenderEngine(sample_rate_hz, BLOCK_SAMPLES)
    try:
        with _quiet_native_output():
            processor = engine.make_plugin_processor("effect", str(path))
    except Exception as exc:  # DawDreamer raises plain exceptions for unloadable plug-ins
        raise ReaTimbreError(f"cannot load plug-in {path}: {exc}") from exc
    inputs = processor.get_num_input_channels()
    if inputs < 1 or processor.get_num_output_channels() < 1:
        raise ReaTimbreError(f"{path.name} has no audio input or output; is it an effect?")
    names = {str(d["name"]): int(d["index"]) for d in processor.get_parameters_description()}
    for name, value in (parameters or {}).items():
        if name not in names:
            raise ReaTimbreError(f"{path.name} has no parameter {name!r} (it has: {', '.join(names)})")
        if not 0.0 <= value <= 1.0:
            raise ReaTimbreError(f"{path.name}: parameter {name!r} takes a normalised value in 0..1, got {value:g}")
        processor.set_parameter(names[name], float(value))
    # the plug-in's main inputs get the dry (mono duplicated); extra inputs (a side-chain) get silence
    feed = np.zeros((inputs, audio.shape[1]), np.float32)
    for channel in range(min(inputs, 2)):
        feed[channel] = audio[channel % audio.shape[0]]
    playback = engine.make_playback_processor("dry", feed)
    engine.load_graph([(playback, []), (processor, ["dry"])])
    with _quiet_native_output():
        engine.render(audio.shape[1] / sample_rate_hz)
    wet = np.asarray(engine.get_audio(), dtype=np.float32)[:, : audio.shape[1]]
    if wet.shape[1] < audio.shape[1]:
        wet = np.pad(wet, ((0, 0), (0, audio.shape[1] - wet.shape[1])))
    return np.ascontiguousarray(wet)
