"""The pedal board of issue 29 (after McCool et al.): DSP stages the reference effects need beyond pedalboard's
plugins, the LFO-phase network for time-varying effects, the paper's baseline networks, and their training."""
