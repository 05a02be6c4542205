"""Which step order lets the coach improve at every step? Applies held-out targets' own effect settings one effect
at a time in every one of the 120 orders and counts the steps that do not lower the spectral MSE.

    python benchmarks/coach_order.py [--targets 36]

Every state along any order is a subset of the target's effects, so each target needs at most 32 renders and all
orders are scored from them. Prints the best orders and Vital's signal-flow order (per-target mean of steps
that do not help).
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from models.coach.families import FamilyRenderer, subset_effects
from models.coach.suggest import MIN_RELATIVE_GAIN
from models.metrics import spectral_mse
from models.synth import presets as preset_data
from models.synth.features import clip_features
from models.synth.profiles import EFFECT_NAMES, load_profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=36)
    args = parser.parse_args()
    profile = load_profile("vital")
    renderer = FamilyRenderer(profile)
    presets = preset_data.preset_names()
    orders = list(itertools.permutations(EFFECT_NAMES))
    not_helping = np.zeros(len(orders))
    for i in range(args.targets):
        rng = np.random.default_rng([5, i])
        mask = int(rng.integers(1, 32))
        settings = {e.name: e.sample(rng) for e in profile.effects}
        renderer.load_preset(presets[i % len(presets)])
        mel = {}
        for sub in range(32):
            if sub & ~mask == 0:
                mel[sub] = clip_features(renderer.render({k: settings[k] for k in subset_effects(sub)}, 48)).mel_db80
        for o, order in enumerate(orders):
            current, previous = 0, spectral_mse(mel[0], mel[mask])
            for name in order:
                bit = 1 << EFFECT_NAMES.index(name)
                if mask & bit:
                    current |= bit
                    mse = spectral_mse(mel[current], mel[mask])
                    not_helping[o] += mse >= previous * (1 - MIN_RELATIVE_GAIN)
                    previous = mse
    for o in np.argsort(not_helping, kind="stable")[:8]:
        print(f"{' > '.join(orders[o]):55s} {not_helping[o] / args.targets:.3f} steps not helping per target")
    flow = orders.index(tuple(profile.rack_order))
    print(f"{'signal flow: ' + ' > '.join(orders[flow]):55s} {not_helping[flow] / args.targets:.3f}")


if __name__ == "__main__":
    main()
