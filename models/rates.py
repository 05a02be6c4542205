"""The one sample rate of ReaTimbre's engines.

Every neural effect, synth render, coach feature and training clip runs at 44.1 kHz; audio at any other rate is
resampled to it on the way in and back on the way out (:mod:`models.resample`).
"""

from __future__ import annotations

SAMPLE_RATE_HZ = 44_100
