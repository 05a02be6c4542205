"""Rendering files: rates, channels, lengths, formats, exact streaming, tails, mix, progress, cancellation."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from signals import tone

from models.errors import ReaTimbreError
from models.library import load_model
from models.render import render_file


def _write(path: Path, audio: np.ndarray, rate: int, subtype: str = "FLOAT") -> Path:
    sf.write(str(path), audio.T, rate, subtype=subtype)
    return path


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


@pytest.mark.parametrize(("rate", "channels"), [(44_100, 1), (48_000, 2), (22_050, 3), (96_000, 2), (8_000, 1)])
def test_any_rate_and_channel_count(tmp_path: Path, tiny_model: str, rate: int, channels: int) -> None:
    source = _write(tmp_path / "in.wav", tone(0.7, rate, channels), rate, "PCM_24")
    result = render_file(source, tmp_path / "out.wav", tiny_model, tail_seconds=0.25)
    info = sf.info(result.output_path)
    assert (info.samplerate, info.channels, info.subtype) == (rate, channels, "PCM_24")
    assert info.frames == int(0.7 * rate) + int(round(0.25 * rate))
    out, _ = sf.read(result.output_path, dtype="float32")
    assert np.all(np.isfinite(out)) and np.max(np.abs(out)) > 1e-3


def test_chunked_render_equals_one_pass_model_output(tmp_path: Path, tiny_model: str) -> None:
    rate = 44_100
    audio = tone(2.0, rate, 2, seed=3)
    source = _write(tmp_path / "in.wav", audio, rate)
    small = render_file(
        source, tmp_path / "small.wav", tiny_model, {"drive": 20}, tail_seconds=0, read_block_frames=997
    )
    large = render_file(
        source, tmp_path / "large.wav", tiny_model, {"drive": 20}, tail_seconds=0, read_block_frames=10**7
    )
    a, _ = sf.read(small.output_path, dtype="float32", always_2d=True)
    b, _ = sf.read(large.output_path, dtype="float32", always_2d=True)
    effect = load_model(tiny_model)
    x = torch.from_numpy(audio)[:, None, :]
    rf = effect.info.receptive_field
    with torch.no_grad():
        cond = effect.control_vector({"drive": 20}).expand(2, -1)
        one_pass = effect.model(torch.nn.functional.pad(x, (rf - 1, 0)), cond)[:, 0, :].numpy().T
    assert np.max(np.abs(a - one_pass)) < 1e-4
    assert np.max(np.abs(b - one_pass)) < 1e-4


def test_chunking_does_not_matter_with_resampling(tmp_path: Path, tiny_model: str) -> None:
    source = _write(tmp_path / "in.wav", tone(1.5, 48_000, 2), 48_000)
    a = render_file(source, tmp_path / "a.wav", tiny_model, read_block_frames=1_234)
    b = render_file(source, tmp_path / "b.wav", tiny_model, read_block_frames=10**7)
    x, _ = sf.read(a.output_path)
    y, _ = sf.read(b.output_path)
    assert x.shape == y.shape and np.max(np.abs(x - y)) < 1e-4


def test_mix_zero_returns_the_dry_input(tmp_path: Path, tiny_model: str) -> None:
    audio = tone(0.5, 48_000, 2)
    source = _write(tmp_path / "in.wav", audio, 48_000)
    result = render_file(source, tmp_path / "dry.wav", tiny_model, mix=0.0, tail_seconds=0)
    out, _ = sf.read(result.output_path, dtype="float32")
    assert np.max(np.abs(out.T - audio)) < 1e-6


def test_tail_renders_past_the_end(tmp_path: Path, tiny_model: str) -> None:
    source = _write(tmp_path / "in.wav", tone(0.5, 44_100), 44_100)
    result = render_file(source, tmp_path / "out.wav", tiny_model, tail_seconds=1.0)
    assert result.duration_seconds == pytest.approx(1.5, abs=1e-4)
    assert sf.info(result.output_path).frames == 22_050 + 44_100


@pytest.mark.parametrize(
    ("in_name", "subtype", "out_name", "expected"),
    [
        ("in.flac", "PCM_16", "out.flac", ("FLAC", "PCM_16")),
        ("in.wav", "PCM_16", "out.wav", ("WAV", "PCM_16")),
        ("in.flac", "PCM_24", "out.wav", ("WAV", "PCM_16")),  # another container: that format's default
        ("in.aiff", "PCM_24", "out.aiff", ("AIFF", "PCM_24")),
    ],
)
def test_output_format_follows_input(tmp_path, tiny_model, in_name, subtype, out_name, expected) -> None:
    source = _write(tmp_path / in_name, tone(0.3, 44_100, 2), 44_100, subtype)
    result = render_file(source, tmp_path / out_name, tiny_model)
    info = sf.info(result.output_path)
    assert (info.format, info.subtype) == expected


def test_integer_output_is_clipped_and_counted(tmp_path: Path, tiny_model: str) -> None:
    loud = np.clip(4.0 * tone(0.3, 44_100), -1, 1)
    source = _write(tmp_path / "in.wav", loud, 44_100, "PCM_16")
    result = render_file(source, tmp_path / "out.wav", tiny_model, {"drive": 36})
    out, _ = sf.read(result.output_path)
    assert np.max(np.abs(out)) <= 1.0
    assert result.clipped_samples == 0 or result.peak > 1.0


def test_progress_reaches_one(tmp_path: Path, tiny_model: str) -> None:
    source = _write(tmp_path / "in.wav", tone(1.0, 44_100), 44_100)
    seen: list[float] = []
    render_file(source, tmp_path / "out.wav", tiny_model, progress=seen.append, read_block_frames=4_410)
    assert len(seen) >= 10 and seen == sorted(seen) and seen[-1] == pytest.approx(1.0)


def test_cancel_leaves_no_file(tmp_path: Path, tiny_model: str) -> None:
    source = _write(tmp_path / "in.wav", tone(1.0, 44_100), 44_100)
    calls = []

    def cancel_on_third_block() -> bool:
        calls.append(1)
        return len(calls) >= 3

    with pytest.raises(ReaTimbreError, match="cancelled"):
        render_file(
            source, tmp_path / "out.wav", tiny_model, should_cancel=cancel_on_third_block, read_block_frames=4_410
        )
    assert not (tmp_path / "out.wav").exists() and _leftovers(tmp_path) == []


def test_default_output_is_beside_the_input_and_never_overwritten(tmp_path: Path, tiny_model: str) -> None:
    source = _write(tmp_path / "song.wav", tone(0.3, 44_100), 44_100)
    result = render_file(source, None, tiny_model)
    assert Path(result.output_path) == tmp_path / f"song-{tiny_model}.wav"
    before = Path(result.output_path).read_bytes()
    with pytest.raises(ReaTimbreError, match="already exists"):
        render_file(source, None, tiny_model, {"drive": 30})
    assert Path(result.output_path).read_bytes() == before


def test_write_audio_with_a_format_and_no_subtype_takes_the_formats_default(tmp_path) -> None:
    from models.audio_io import write_audio

    path = tmp_path / "x.flac"
    write_audio(path, np.zeros((2, 100), dtype=np.float32), 44100, fmt="FLAC")
    assert sf.info(str(path)).subtype == sf.default_subtype("FLAC")
