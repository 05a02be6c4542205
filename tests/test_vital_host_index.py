"""Vital's host parameter order (by version added, then name): the reference's examples, and its users."""

from __future__ import annotations

import pytest

from extension.coach_steps import CoachStep, ParamChange
from extension.osc_audition import step_targets
from models.synth.vital import VitalSynth, vital_host_order

# shared/reference/reaper-python-binding.md section 7: control -> host index (computed there from vita 0.1.0)
REFERENCE_EXAMPLES = {
    "beats_per_minute": 0,
    "chorus_cutoff": 1,
    "env_1_attack": 48,
    "filter_1_cutoff": 104,
    "macro_control_1": 211,
    "osc_1_level": 382,
    "volume": 462,
    "osc_3_level": 513,
    "reverb_size": 550,
    "modulation_33_amount": 560,
    "bypass": 727,
    "view_spectrogram": 771,
}


def test_order_is_version_then_name() -> None:
    assert vital_host_order({"b": 0x500, "a": 0x601, "c": 0, "Z": 0x500}) == ["c", "Z", "b", "a"]


@pytest.fixture(scope="module")
def synth() -> VitalSynth:
    return VitalSynth()


def test_host_indices_of_the_reference_examples(synth: VitalSynth) -> None:
    assert len(synth.control_names()) == 772
    assert {name: synth.host_index(name) for name in REFERENCE_EXAMPLES} == REFERENCE_EXAMPLES
    assert synth.control_names().index("bypass") == 1  # vita's dict order is alphabetical, not the host's


def test_coach_and_osc_audition_use_the_host_index(synth: VitalSynth) -> None:
    from models.coach.suggest import _host_index

    assert _host_index(synth, "osc_1_level", None) == 382
    assert _host_index(synth, "osc_1_level", 17) == 17  # a profile's own host index wins
    step = CoachStep((ParamChange(_host_index(synth, "reverb_size", None), "Reverb Size", 0.5, fx_index=0),))
    assert step_targets(step, ["VSTi: Vital (Vital Audio)"]) == [(0, 550, 0.5)]
