"""`reatimbre demo`: the main job on embedded defaults, headless."""

import re
from pathlib import Path

import soundfile as sf

from models.effects import REFERENCE_EFFECTS
from models.library import list_models
from server.cli import main


def test_demo_renders_every_shipped_effect_and_prints_a_table(tmp_path: Path, capsys) -> None:
    code = main(["demo", "--out", str(tmp_path), "--seconds", "1.5"])
    out = capsys.readouterr().out
    assert code == 0
    shipped = [m for m in list_models() if m.kind == "shipped"]
    assert len(shipped) >= 3
    for info in shipped:
        path = tmp_path / f"demo-{info.name}.wav"
        assert path.exists() and f"render {info.name}" in out
        assert sf.info(str(path)).frames >= int(1.5 * 44_100)
    assert "MR-STFT to the real effect" in out
    # Each model is compared with the real effect lined up as the render is (latency removed), and each is nearer
    # the real effect than the dry input at its default knobs.
    figures = re.findall(r"MR-STFT to the real effect ([0-9.]+) \(dry input ([0-9.]+)\)", out)
    assert len(figures) == len([m for m in shipped if m.name in REFERENCE_EFFECTS])
    assert all(float(model) < float(dry) for model, dry in figures), figures
