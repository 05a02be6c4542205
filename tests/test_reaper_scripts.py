"""The ReaScripts in reaper_scripts/, run end to end: REAPER emulator <-> the real ReaTimbre HTTP server.

The server is ``server.app.create_app`` on uvicorn with the real render job and a tiny (untrained) neural
effect written with the real model library. Steer uses the real job kind; the coach uses a stand-in kind that
returns a result in the coach's documented shape through the real job machinery (queue, progress, polling, auth).
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from pydantic import BaseModel
from reaper_emulator import EmuParam, ReaperEmulator

from extension.rpp import RppProject

SCRIPTS = Path(__file__).resolve().parent.parent / "reaper_scripts"
RENDER = SCRIPTS / "ReaTimbre_Render selected items through a neural effect.py"
STEER = SCRIPTS / "ReaTimbre_Steer an effect from two selected items.py"
COACH = SCRIPTS / "ReaTimbre_Synth coach - suggest steps toward the selected item.py"
NEXT = SCRIPTS / "ReaTimbre_Audition next coach step.py"
PREVIOUS = SCRIPTS / "ReaTimbre_Audition previous coach step.py"
START = SCRIPTS / "ReaTimbre_Start local server.py"
STOP = SCRIPTS / "ReaTimbre_Stop local server.py"

COACH_RESULT = {
    "profile": "vital",
    "steps": [
        {
            "effect": "distortion",
            "changes": [
                {
                    "fx_name": "Vital",
                    "param_index": 1,
                    "param_name": "Distortion Drive",
                    "value": 0.9,
                    "display": "+12 dB",
                    "cc": 20,
                }
            ],
        },
        {
            "effect": "reverb",
            "changes": [
                {"fx_name": "Vital", "param_index": 2, "param_name": "Reverb Mix", "value": 0.5, "display": "50 %"}
            ],
        },
    ],
    "metrics": {"mse_before": 0.05, "mse_after": 0.01},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wav(path: Path, seconds: float = 0.5) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(44100 * seconds)) / 44100
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 44100)
    return path


def _test_kinds() -> list[Any]:
    """Steer and coach kinds with the documented result shapes, for servers that do not have them yet."""
    from server.job_kinds import JobKind, PreparedJob

    class SteerRequest(BaseModel):
        dry: str
        wet: str
        name: str
        memory: str = "auto"
        minutes: float = 3.0

    class CoachRequest(BaseModel):
        target: str
        start_seconds: float = 0.0
        preset: str | None = None
        patch: str | None = None
        max_steps: int = 5

    def steer(request: BaseModel, env: Any) -> PreparedJob:
        def run(ctx: Any) -> dict[str, Any]:
            ctx.progress(0.5, "training")
            return {"model": request.name, "heldout_mrstft": 0.42}

        return PreparedJob(run=run)

    def coach(request: BaseModel, env: Any) -> PreparedJob:
        def run(ctx: Any) -> dict[str, Any]:
            ctx.progress(0.5, "step 1")
            return COACH_RESULT

        return PreparedJob(run=run)

    return [JobKind("steer", SteerRequest, steer, "test steer"), JobKind("coach", CoachRequest, coach, "test coach")]


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    import uvicorn

    from models.knobs import Knob
    from models.library import save_model
    from models.tcn import ConditionedTCN, TCNConfig
    from models.userdirs import user_models_dir
    from server.app import create_app
    from server.auth import load_or_create_token
    from server.job_kinds import registered_kinds
    from server.serverconfig import ServerConfig, write_server_info

    monkeypatch.setenv("REATIMBRE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("REATIMBRE_DATA_DIR", str(tmp_path / "data"))
    knobs = [Knob("gain", "dB", -12, 12, 0).to_dict(), Knob("tone", "", 0, 1, 0.5).to_dict()]
    config = TCNConfig(channels=4, kernel_size=3, dilation_growth=2, layers=2, cond_dim=2, cond_hidden=8)
    save_model(
        ConditionedTCN(config),
        {"description": "tiny test effect", "sample_rate": 44100, "knobs": knobs},
        user_models_dir(),
        "tiny",
    )
    # Real render and steer jobs. The coach job is the stand-in below: the emulated synth here has three
    # parameters, not Vital's 700+, and the real coach job is tested on its own (tests/test_coach_job.py).
    kinds = [k for k in registered_kinds() if k.name != "coach"]
    names = {k.name for k in kinds}
    kinds += [k for k in _test_kinds() if k.name not in names]
    token = load_or_create_token()
    port = _free_port()
    output_dir = tmp_path / "data" / "renders"
    app = create_app(ServerConfig(token=token, port=port, output_dir=output_dir), kinds=kinds)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    write_server_info("127.0.0.1", port)
    yield {"port": port, "output_dir": output_dir, "token": token}
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def emu(tmp_path: Path) -> ReaperEmulator:
    emulator = ReaperEmulator.new(tmp_path / "project" / "song.rpp", bpm=120)
    (tmp_path / "project").mkdir()
    dry = emulator.add_track("guitar")
    emulator.add_item(dry, _wav(tmp_path / "project" / "Audio" / "dry.wav"), 0.0, 0.5)
    synth = emulator.add_track("synth", selected=True)
    emulator.add_fx(
        synth,
        "VSTi: Vital (Vital Audio)",
        [EmuParam("Volume", 0.7), EmuParam("Distortion Drive", 0.2), EmuParam("Reverb Mix", 0.1)],
    )
    return emulator


def run_action(
    emu: ReaperEmulator, script: Path, answers: list[str | None] | None = None, timeout_seconds: float = 60
) -> None:
    """Run a ReaScript as REAPER would and pump the defer loop until it has nothing left to do."""
    for name in ("reatimbre_action", "reatimbre_client", "reatimbre_audition", "reatimbre_server"):
        sys.modules.pop(name, None)
    emu.user_inputs = list(answers or [])
    emu.run_script(script)
    deadline = time.monotonic() + timeout_seconds

    def pace() -> None:
        time.sleep(0.01)  # REAPER runs deferred code ~30-100 times a second
        if time.monotonic() > deadline:
            raise AssertionError(f"{script.name} was still deferring after {timeout_seconds} s")

    emu.run_deferred(max_ticks=100_000, tick=pace)
    assert emu.user_inputs == [], "the script did not ask every question the test answered"


def test_render_adds_a_rendered_take_in_one_undo_point(server, emu: ReaperEmulator, tmp_path: Path) -> None:
    run_action(emu, RENDER, ["tiny,gain=3 tone=0.25,0.8,"])
    assert emu.message_boxes == []
    assert emu.undo_history == ["ReaTimbre: render 1 item(s) through tiny"] and emu.edits_outside_undo == 0
    assert any("rendering 1 item(s) through tiny: 100%" in line for line in emu.console)
    saved = RppProject.load(emu.save(tmp_path / "project" / "song.rpp"))
    item = saved.items(track=0)[0]
    take = item.active_take
    assert take.index == 1 and take.name == "dry.wav (neural: tiny)"
    assert take.path.parent == server["output_dir"]
    audio, rate = sf.read(take.path)
    assert rate == 44100 and len(audio) >= 22050 and np.isfinite(audio).all()


def test_render_reports_user_errors_in_one_message(server, emu: ReaperEmulator) -> None:
    run_action(emu, RENDER, ["tiny,loudness=3,1,"])
    assert emu.message_boxes == [("ReaTimbre", "unknown knob 'loudness' for tiny (knobs: gain, tone)")]
    run_action(emu, RENDER, ["tiny,gain=99,1,"])
    assert "knob gain must be between -12 and 12" in emu.message_boxes[-1][1]
    run_action(emu, RENDER, [None])  # cancelled dialog: nothing happens
    assert len(emu.message_boxes) == 2 and emu.undo_history == []
    emu.RPR_SetMediaItemSelected(emu.RPR_GetSelectedMediaItem(0, 0), False)
    run_action(emu, RENDER)
    assert emu.message_boxes[-1][1].startswith("select one or more audio items")


def test_render_without_a_server_says_how_to_start_it(
    emu: ReaperEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REATIMBRE_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "token").write_text("t" * 32)
    (tmp_path / "config" / "server.json").write_text(f'{{"host": "127.0.0.1", "port": {_free_port()}}}')
    run_action(emu, RENDER)
    ((title, message),) = emu.message_boxes
    assert "not reachable" in message and "Start local server" in message


def test_steer_reports_the_new_model(server, emu: ReaperEmulator, tmp_path: Path) -> None:
    """The real steer job trains briefly on a dry/wet pair taken from two selected items."""
    audio_dir = tmp_path / "project" / "Audio"
    dry_path = _wav(audio_dir / "dry-long.wav", seconds=4.0)
    dry, rate = sf.read(dry_path, dtype="float32")
    sf.write(audio_dir / "wet.wav", np.tanh(4.0 * dry), rate)
    emu.RPR_SetMediaItemSelected(emu.RPR_GetSelectedMediaItem(0, 0), False)  # only the pair is selected
    dry_track = emu.add_track("dry")
    emu.add_item(dry_track, dry_path, 0.0, 4.0, selected=True)
    wet_track = emu.add_track("wet")
    emu.add_item(wet_track, audio_dir / "wet.wav", 0.0, 4.0, selected=True)
    run_action(emu, STEER, ["fuzz,short,0.1,upper"], timeout_seconds=180)
    assert emu.message_boxes[-1][1].startswith("new effect 'fuzz' is ready")


def test_coach_writes_automation_and_auditions_steps(server, emu: ReaperEmulator) -> None:
    emu.RPR_SetEditCurPos(4.0, False, False)
    run_action(emu, COACH, ["default,0,2,both,cursor"])
    assert emu.message_boxes == []
    assert emu.undo_history == ["ReaTimbre: coach wrote 2 steps"] and emu.edits_outside_undo == 0
    assert emu.envelope_points(1, 0, 1) == [(4.0, 0.9, 1)]
    assert emu.envelope_points(1, 0, 2) == [(4.0, 0.1, 1), (6.0, 0.5, 1)]
    midi = emu.project.items(track=1)[0]
    assert [(e.ppq, e.data1, e.data2) for e in emu.project.midi_events(midi)][0] == (0, 20, 114)

    values = lambda: [round(p.value, 3) for p in emu.params(1, 0)]  # noqa: E731
    run_action(emu, NEXT)
    assert values() == [0.7, 0.9, 0.1]
    run_action(emu, NEXT)
    assert values() == [0.7, 0.9, 0.5]
    run_action(emu, NEXT)  # already at the last step: stays there
    assert values() == [0.7, 0.9, 0.5]
    run_action(emu, PREVIOUS)
    run_action(emu, PREVIOUS)
    assert values() == [0.7, 0.2, 0.1]  # back to the sound the coach started from
    assert emu.undo_history[-1] == "ReaTimbre: audition the original sound"


def test_coach_needs_a_target_and_a_synth_track(server, emu: ReaperEmulator) -> None:
    emu.RPR_SetTrackSelected(emu.RPR_GetTrack(0, 1), False)
    run_action(emu, COACH)
    assert emu.message_boxes[-1][1].startswith("select the track whose synth")
    run_action(emu, NEXT)
    assert emu.message_boxes[-1][1].startswith("no coach suggestion yet")


def test_start_and_stop_the_local_server(emu: ReaperEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REATIMBRE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("REATIMBRE_DATA_DIR", str(tmp_path / "data"))
    port = _free_port()
    run_action(emu, START)
    assert "not set up for REAPER" in emu.message_boxes[-1][1]
    command = [sys.executable, "-m", "server", "serve", "--port", str(port)]
    emu.RPR_SetExtState("ReaTimbre", "server_command", __import__("json").dumps(command), True)
    try:
        run_action(emu, START, timeout_seconds=120)
        assert emu.console[-1] == f"ReaTimbre: server running at 127.0.0.1:{port}\n", emu.message_boxes
        assert (tmp_path / "config" / "token").exists()
    finally:
        run_action(emu, STOP)
    assert emu.console[-1] == "ReaTimbre: server stopped\n"
    run_action(emu, STOP)
    assert emu.message_boxes[-1][1] == "the ReaTimbre server is not running"
