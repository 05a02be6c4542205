"""`reatimbre render` and `reatimbre models` as a user runs them, including every kind of bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from signals import tone

from server.cli import main


@pytest.fixture()
def song(tmp_path: Path) -> Path:
    path = tmp_path / "song.wav"
    sf.write(str(path), tone(0.5, 44_100, 2).T, 44_100, subtype="FLOAT")
    return path


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_render_command_writes_the_output(tmp_path, song, tiny_model, capsys) -> None:
    out = tmp_path / "out.wav"
    code, stdout, _ = _run(
        capsys,
        "render",
        str(song),
        "-o",
        str(out),
        "--effect",
        tiny_model,
        "--knob",
        "drive=24",
        "--knob",
        "tone=0.3",
        "--mix",
        "0.8",
        "--tail",
        "0.1",
    )
    assert code == 0 and out.exists()
    assert "drive=24" in stdout and "tone=0.3" in stdout
    assert sf.info(str(out)).frames == 22_050 + 4_410


def _corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(40)))
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.wav"
    sf.write(str(path), np.zeros((0, 2), np.float32), 44_100)
    return path


def _with_value(tmp_path: Path, value: float) -> Path:
    audio = tone(0.5, 44_100, 2)
    audio[1, 11_025] = value
    path = tmp_path / f"bad-{value}.wav"
    sf.write(str(path), audio.T, 44_100, subtype="FLOAT")
    return path


BAD_CASES = {
    "missing file": (lambda t, s: [str(t / "nope.wav")], "no such file"),
    "folder": (lambda t, s: [str(t)], "is a folder"),
    "corrupt": (lambda t, s: [str(_corrupt(t))], "not a readable audio file"),
    "text file": (lambda t, s: [str(t / "notes.txt")], "not a readable audio file"),
    "empty": (lambda t, s: [str(_empty(t))], "holds no audio"),
    "nan": (lambda t, s: [str(_with_value(t, float("nan")))], "NaN or infinite"),
    "inf": (lambda t, s: [str(_with_value(t, float("inf")))], "NaN or infinite"),
    "unknown effect": (lambda t, s: [str(s), "--effect", "flanger9000"], "unknown effect"),
    "unknown knob": (lambda t, s: [str(s), "--knob", "wobble=1"], "unknown knob 'wobble'"),
    "knob out of range": (lambda t, s: [str(s), "--knob", "drive=99"], "out of range"),
    "knob not a number": (lambda t, s: [str(s), "--knob", "drive=loud"], "not a number"),
    "knob nan": (lambda t, s: [str(s), "--knob", "drive=nan"], "finite"),
    "mix out of range": (lambda t, s: [str(s), "--mix", "1.5"], "--mix"),
    "negative tail": (lambda t, s: [str(s), "--tail", "-1"], "--tail"),
    "output is input": (lambda t, s: [str(s), "-o", str(s)], "output path is the input"),
    "output folder missing": (lambda t, s: [str(s), "-o", str(t / "no" / "out.wav")], "does not exist"),
    "unknown extension": (lambda t, s: [str(s), "-o", str(t / "out.xyz")], "unknown audio file extension"),
    "output name too long": (lambda t, s: [str(s), "-o", str(t / ("n" * 300 + ".wav"))], "file name too long"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_gets_one_line_and_no_output(case, tmp_path, song, tiny_model, capsys) -> None:
    (tmp_path / "notes.txt").write_text("not audio")
    build, message = BAD_CASES[case]
    argv = build(tmp_path, song)
    if "--effect" not in argv:
        argv += ["--effect", tiny_model]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "result.wav")]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = _run(capsys, "render", *argv)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reatimbre: error:") and message in lines[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no temp files left


def test_models_lists_knobs_and_user_models(tiny_model, capsys) -> None:
    code, stdout, _ = _run(capsys, "models", "--json")
    assert code == 0
    models = {m["name"]: m for m in json.loads(stdout)["models"]}
    assert models[tiny_model]["kind"] == "user"
    assert [k["name"] for k in models[tiny_model]["knobs"]] == ["drive", "tone"]
    code, stdout, _ = _run(capsys, "models")
    assert f"{tiny_model} [user]" in stdout and "--knob drive=VALUE  0..36 dB, default 18" in stdout


def test_damaged_user_model_is_reported_not_fatal(tiny_model, capsys) -> None:
    from models.userdirs import user_models_dir

    broken = user_models_dir() / "broken.json"
    broken.write_text("{not json")
    try:
        code, stdout, err = _run(capsys, "models")
    finally:
        broken.unlink()
    assert code == 0 and tiny_model in stdout
    assert "broken" in err and "unreadable" in err


def test_a_model_below_its_goals_warns_on_every_render_even_quiet(tmp_path, song, capsys) -> None:
    from models.library import save_model
    from models.tcn import ConditionedTCN, TCNConfig
    from models.userdirs import user_models_dir

    knob = {"name": "drive", "unit": "", "minimum": 0.0, "maximum": 1.0, "default": 0.5}
    metrics = {"heldout_other_origin": {"summary": {"geometric_mean_ratio": 0.8, "meets_goals": False}}}
    info = save_model(
        ConditionedTCN(TCNConfig(channels=4, layers=2, cond_dim=1)),
        {"sample_rate": 44100, "knobs": [knob], "metrics": metrics},
        user_models_dir(),
        "below-goals",
    )
    try:
        code, _, err = _run(
            capsys, "render", str(song), "-o", str(tmp_path / "out.wav"), "--effect", "below-goals", "--quiet"
        )
        assert code == 0 and (tmp_path / "out.wav").is_file()
        assert "warning: below-goals misses the goals of its heldout_other_origin evaluation" in err
    finally:
        info.weights_path.unlink()
        info.weights_path.with_suffix(".json").unlink()
