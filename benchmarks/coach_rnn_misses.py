"""Where does the next-effect RNN miss? Teacher-forced predictions on the held-out draws of a coach-data folder,
broken down by step, label effect, predicted effect, preset group and how audible the label effect is.

    python benchmarks/coach_rnn_misses.py --data runs/coach/cd-all --max-draws 6000 --keep-split 4300 \
        --models models/weights/coach/vital [--models runs/coach/rnn-w11 ...]

Several ``--models`` folders are scored one by one and, when there are several, also as an ensemble (mean of
their softmax probabilities). "Audibility" of a label effect is the spectral MSE (dB-mel/80) between the target
and the target without that effect: how much the sound it names actually changes the target.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from models.coach.chains import load_chains
from models.coach.families import load_families
from models.coach.nets import NextEffectRNN
from models.coach.steps import canonical_currents, ordered_effects
from models.coach.store import NEXT_EFFECT_NAME, load_next_effect, read_sidecar
from models.coach.train import ChainPart, rnn_chain_accuracy, sequence_batch, split_families
from models.synth import presets as preset_data
from models.synth.profiles import EFFECT_NAMES

AUDIBILITY_EDGES = (1e-4, 1e-3, 1e-2)


def presence_next(presence_logits: torch.Tensor, used: torch.Tensor, order: list[int]) -> torch.Tensor:
    """The next effect read from presence logits: the chance that an effect is missing while no unused effect
    before it in step ``order`` is, normalised over the effects (used ones are never next)."""
    missing = torch.sigmoid(presence_logits).masked_fill(used > 0.5, 0.0)
    out, none_before = torch.zeros_like(missing), torch.ones_like(missing[:, 0])
    for index in order:
        out[:, index] = missing[:, index] * none_before
        none_before = none_before * (1.0 - missing[:, index])
    return out / out.sum(-1, keepdim=True).clamp_min(1e-12)


@torch.no_grad()
def probabilities(rnn: NextEffectRNN, families, items, step_order) -> dict[str, np.ndarray]:
    """Next-effect probabilities for each (family, target, currents) item (items grouped by length): the
    softmax (how the coach ranks), and for an RNN with a presence output also those read from it and the mean
    of the two."""
    out: dict[str, list[np.ndarray]] = {}
    order = [EFFECT_NAMES.index(name) for name in step_order]
    starts = [i for i in range(len(items)) if i == 0 or len(items[i][2]) != len(items[i - 1][2])]
    for start, end in zip(starts, [*starts[1:], len(items)], strict=True):
        for first in range(start, end, 256):
            mels, used, _ = sequence_batch(families, items[first : min(first + 256, end)], step_order)
            lengths = torch.full((mels.shape[0],), mels.shape[1] - 1, dtype=torch.long)
            output = rnn(mels[:, 0], mels[:, 1:], used, lengths, with_presence=True)
            n = len(EFFECT_NAMES)
            softmax = torch.softmax(output[:, :n], -1)
            out.setdefault("softmax", []).append(softmax.numpy())
            if output.shape[1] > n:
                presence = presence_next(output[:, n:], used[:, -1], order)
                out.setdefault("presence", []).append(presence.numpy())
                out.setdefault("mean", []).append((0.5 * (softmax + presence)).numpy())
    return {key: np.concatenate(value) for key, value in out.items()}


def report(name: str, right: np.ndarray, table: dict[str, np.ndarray]) -> None:
    print(f"\n== {name}: accuracy {right.mean():.4f} on {len(right)} examples, {int((~right).sum())} misses")
    for key, values in table.items():
        cells = []
        for value in sorted(set(values.tolist()), key=str):
            chosen = values == value
            cells.append(f"{value}: {right[chosen].mean():.3f} ({int((~right[chosen]).sum())}/{int(chosen.sum())})")
        print(f"  by {key}: " + ", ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--max-draws", type=int, required=True)
    parser.add_argument("--keep-split", type=int, nargs="*", default=[])
    parser.add_argument("--models", nargs="+", default=["models/weights/coach/vital"])
    parser.add_argument("--part", choices=["test", "validation"], default="test")
    parser.add_argument("--chains", nargs="*", default=[], help="coach-chains folders: also score on their chains")
    args = parser.parse_args()
    torch.set_num_threads(2)
    families = load_families(args.data, args.max_draws, with_mfcc=False)
    part = getattr(split_families(families, 0, args.keep_split), args.part)
    del families
    orders = {tuple(read_sidecar(Path(folder), NEXT_EFFECT_NAME)["step_order"]) for folder in args.models}
    if len(orders) != 1:
        parser.error("the --models RNNs were trained in different step orders; score them one order at a time")
    step_order = orders.pop()
    print(f"step order: {', '.join(step_order)}")
    items, steps, labels, audible = [], [], [], []
    for t in range(len(step_order)):  # by step, so that every batch holds sequences of one length
        for f in range(len(part)):
            for s in (s for s in range(1, 32) if len(ordered_effects(s, step_order)) > t):
                currents = canonical_currents(s, t, step_order)
                label = ordered_effects(s & ~currents[-1], step_order)[0]
                bit = 1 << EFFECT_NAMES.index(label)
                diff = part.mel_db80[f, s].astype(np.float32) - part.mel_db80[f, s & ~bit].astype(np.float32)
                items.append((f, s, currents))
                steps.append(t + 1)
                labels.append(EFFECT_NAMES.index(label))
                audible.append(float(np.mean(diff**2)))
    steps_a, labels_a, audible_a = np.array(steps), np.array(labels), np.array(audible)
    groups = {name: group for group, names in preset_data.preset_groups().items() for name in names}
    group_a = np.array([groups.get(part.presets[int(part.preset_index[f])], "?") for f, _, _ in items])
    bucket = np.digitize(audible_a, AUDIBILITY_EDGES)
    bucket_names = np.array(["<1e-4", "1e-4..1e-3", "1e-3..1e-2", ">=1e-2"])[bucket]
    print(f"{len(part)} {args.part} draws, {len(items)} teacher-forced examples")
    print("label audibility: " + ", ".join(f"{n} {np.mean(bucket_names == n):.3f}" for n in sorted(set(bucket_names))))
    chains = ChainPart(part, load_chains(args.chains, part.draw_index)) if args.chains else None
    all_probs = []
    for folder in args.models:
        rnn = load_next_effect(Path(folder))
        decodings = probabilities(rnn, part, items, step_order)
        for name, probs in decodings.items() if len(decodings) > 1 else ():
            print(f"{folder} read by {name}: accuracy {np.mean(probs.argmax(-1) == labels_a):.4f}")
        if chains is not None:
            print(f"{folder} on {len(chains.chains)} chains: {rnn_chain_accuracy(rnn, chains, step_order)}")
        probs = decodings["softmax"]
        all_probs.append(probs)
        predicted = probs.argmax(-1)
        right = predicted == labels_a
        table = {
            "step": steps_a,
            "label": np.array(EFFECT_NAMES)[labels_a],
            "predicted (misses)": np.where(right, "-", np.array(EFFECT_NAMES)[predicted]),
            "group": group_a,
            "label audibility": bucket_names,
        }
        report(folder, right, table)
        loud = audible_a >= 1e-3
        print(f"  without labels under 1e-3: {right[loud].mean():.4f} ({loud.mean():.1%} of examples)")
    if len(all_probs) > 1:
        right = np.mean(all_probs, axis=0).argmax(-1) == labels_a
        report("ensemble (mean probability)", right, {"step": steps_a, "label audibility": bucket_names})


if __name__ == "__main__":
    main()
