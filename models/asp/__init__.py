"""Automatic synth programming across synths: the multi-task VAE of the seed paper (multi-task synth programming).

* :mod:`models.asp.data` — ``reatimbre match-data``: rendered clips per synth (mel spectrograms, encoded
  parameters), split by patch, in resumable shards.
* :mod:`models.asp.nets` — the three variants (separate VAEs; joint encoder with one parameter decoder per synth;
  joint encoder and one decoder over padded parameter vectors) with a spectrogram decoder.
* :mod:`models.asp.losses` — masked parameter losses, KL with warm-up.
* :mod:`models.asp.train` / :mod:`models.asp.store` — training with a time budget; weights with a sidecar.
* :mod:`models.asp.infer` — ``reatimbre match``: infer, render and rank a patch per synth for a target sound.
* :mod:`models.asp.evaluate` — ``reatimbre match-eval``: the paper's tables and the baselines.
"""
