"""Ray, reapy and DawDreamer are optional: without one, the feature that needs it says what to install, in one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from models.errors import ReaTimbreError
from models.optional import require


def _without(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Make ``import package`` (and its submodules) fail as if it were not installed."""
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)


@pytest.mark.parametrize(
    ("module", "extra"), [("ray", "ray"), ("reapy.reascript_api", "reapy"), ("dawdreamer", "plugins")]
)
def test_a_missing_extra_is_one_line_naming_what_to_install(
    module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without(monkeypatch, module.split(".")[0])
    with pytest.raises(ReaTimbreError, match=rf"pip install 'reatimbre\[{extra}\]'") as caught:
        require(module, "this feature")
    assert "\n" not in str(caught.value)


def test_an_installed_extra_is_imported() -> None:
    assert require("ray", "a test").__name__ == "ray"


def test_batch_on_ray_without_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    from models.scaleout import map_tasks

    _without(monkeypatch, "ray")
    with pytest.raises(ReaTimbreError, match=r"--ray-address\) needs the ray package"):
        map_tasks(abs, [1, -2], ray_address="auto")


def test_reaper_through_reapy_without_reapy(monkeypatch: pytest.MonkeyPatch) -> None:
    from extension.reaper_ops import ReapyApi

    _without(monkeypatch, "reapy")
    with pytest.raises(ReaTimbreError, match="needs the python-reapy package"):
        ReapyApi()


def test_plugin_synth_without_dawdreamer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from models.synth.plugin import PluginSynth

    _without(monkeypatch, "dawdreamer")
    with pytest.raises(ReaTimbreError, match="hosting a plug-in synth needs the dawdreamer package"):
        PluginSynth(tmp_path / "any.so")
