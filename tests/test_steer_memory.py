"""``--memory auto`` on real effects: third-party plug-ins hosted by DawDreamer and pedalboard's effects.

The set is ``benchmarks/steer_memory.py``'s: reverbs need ``reverb``, delays ``long``, compressors, limiters and
distortions ``short``, on material with pauses and on material that never pauses. A plug-in whose Debian package is
not installed is skipped with its package's name (``python3 install.py --dev`` installs them as root).
"""

from __future__ import annotations

import pytest

from benchmarks.steer_memory import CASES, MemoryCase, classify

THIRD_PARTY = [case for case in CASES if case.package is not None]


def test_the_set_covers_every_kind_and_is_half_third_party() -> None:
    assert len(CASES) >= 8 and len(THIRD_PARTY) >= len(CASES) / 2
    assert {case.kind for case in CASES} == {"reverb", "delay", "compressor", "distortion"}
    assert {case.kind for case in THIRD_PARTY} == {"reverb", "delay", "compressor", "distortion"}


@pytest.mark.parametrize("material", ["pauses", "continuous"])
@pytest.mark.parametrize("case", CASES, ids=[case.name.split(" (")[0] for case in CASES])
def test_memory_auto_picks_the_class_the_effect_needs(case: MemoryCase, material: str) -> None:
    if not case.available():
        pytest.skip(f"{case.plugin} is not installed (Debian package {case.package})")
    choice = classify(case, material, seconds=12.0, seed=3)
    assert choice.memory == case.expected, choice.reason
    evidence = choice.evidence
    assert f"auto -> {case.expected}" in choice.reason and "impulse response rings" in choice.reason
    assert evidence["impulse_late_excess_db"] is not None and "decided_by" in evidence
    if material == "continuous":
        assert evidence["envelope_tail_seconds"] is None and "never pauses" in choice.reason
