"""The synth coach (SerumRNN): suggest the next effect to turn on and how to set it, one step at a time.

* :mod:`~models.coach.families` — training material: one random setting of all five effects per preset,
  rendered with every one of the 32 effect subsets, so (target, current) pairs share their parameter values;
* :mod:`~models.coach.steps` — the order the coach programs effects in, and the training pairs/sequences;
* :mod:`~models.coach.nets` — the per-effect CNNs and the next-effect RNN;
* :mod:`~models.coach.store` — coach weights as safetensors + JSON sidecar (loading executes no code);
* :mod:`~models.coach.train` — training with progress and early stopping (``reatimbre coach-train``);
* :mod:`~models.coach.target` — any audio file as a one-note target clip;
* :mod:`~models.coach.suggest` — the suggestion loop and its JSON for the REAPER bridge;
* :mod:`~models.coach.report` — the spectrogram progression PNG and per-step audio;
* :mod:`~models.coach.evaluate` — the paper's tables against a random-order baseline;
* :mod:`~models.coach.ood` — out-of-distribution targets, drawn by samplers of another origin than training's.
"""
