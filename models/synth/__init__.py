"""The synth layer of the step-by-step synth coach.

* :class:`~models.synth.base.Synth` — the interface: controls by name, patch load/save, repeatable renders.
* :class:`~models.synth.vital.VitalSynth` — Vital through ``vita`` (the default);
  :class:`~models.synth.plugin.PluginSynth` — any VST2/VST3 instrument through DawDreamer.
* :mod:`~models.synth.profiles` — the five coach effects mapped onto a synth's controls (JSON data).
* :mod:`~models.synth.presets` — SerumRNN's 12 presets in 3 groups, rebuilt on Vital (JSON data).
* :mod:`~models.synth.features` — dB-mel/80 and MFCC features; :mod:`~models.synth.dataset` — training shards.
"""

from models.synth.base import Synth
from models.synth.profiles import EFFECT_NAMES, EffectProfile, load_profile

__all__ = ["EFFECT_NAMES", "EffectProfile", "Synth", "load_profile"]
