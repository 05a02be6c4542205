"""The coach's networks: a CNN per effect (its settings) and the next-effect RNN.

Both read a (target, current) pair of clips as SerumRNN does — dB-mel/80 spectrograms (128 × 88) and 30
MFCCs — stacked as channels, with their difference as a third channel. Sized for CPU training and sub-10 ms
inference, they (1) average-pool the mel pair 2 × 2 before the convolutions and (2) add a per-mel-bin summary
(time mean and spread of target and current), which carries most of what EQ, distortion and compression do.

* :class:`EffectCNN` — outputs per parameter of the effect's profile: a sigmoid for a continuous 0..1 value,
  logits for a categorical one (binary = two classes).
* :class:`NextEffectRNN` — a smaller CNN per step of the sequence, concatenated with the one-hot of the
  effects used so far, into a bidirectional LSTM; a dense layer and logits over the five effects, where
  effects already used are masked out. Optionally a second output (``presence``): one logit per effect for
  "the target has it and the current lacks it", trained beside the softmax as an auxiliary task only (the
  coach ranks by the softmax: on held-out draws, mixing the presence into the ranking scored lower).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from models.synth.features import N_MELS

MFCC_SCALE = 100.0  # MFCCs of dB mels span hundreds; scaled to order one


@dataclass(frozen=True)
class HeadSpec:
    """One output of an effect CNN: a parameter name and its class count (1 = continuous 0..1)."""

    name: str
    classes: int

    def to_json(self) -> dict:
        return asdict(self)


def pair_channels(target: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """(B, F, T) target and current → (B, 3, F, T): target, current, target − current."""
    return torch.stack([target, current, target - current], dim=1)


SUMMARY_BINS = N_MELS // 2


def spectral_summary(mel_target: torch.Tensor, mel_current: torch.Tensor) -> torch.Tensor:
    """(B, 4·64): time mean and standard deviation of target and current per pair of mel bins."""
    parts = [mel_target.mean(-1), mel_current.mean(-1), mel_target.std(-1), mel_current.std(-1)]
    pooled = [nn.functional.avg_pool1d(p.unsqueeze(1), N_MELS // SUMMARY_BINS).squeeze(1) for p in parts]
    return torch.cat(pooled, dim=-1)


def _conv_block(channels_in: int, channels_out: int, pool: tuple[int, int]) -> list[nn.Module]:
    return [nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.ELU(), nn.MaxPool2d(pool)]


class PairEncoder(nn.Module):
    """(target, current) mel and MFCC pair → one feature vector."""

    def __init__(self, widths: tuple[int, int, int], mfcc_widths: tuple[int, int] | None, features: int) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.mel = nn.Sequential(
            nn.AvgPool2d(2),
            *_conv_block(3, w1, (2, 2)),
            *_conv_block(w1, w2, (2, 2)),
            *_conv_block(w2, w3, (2, 2)),
            nn.Flatten(),
        )
        flat = w3 * (N_MELS // 16) * (88 // 16)
        self.mfcc = None
        if mfcc_widths is not None:
            m1, m2 = mfcc_widths
            self.mfcc = nn.Sequential(*_conv_block(3, m1, (2, 4)), *_conv_block(m1, m2, (2, 4)), nn.Flatten())
            flat += m2 * (30 // 4) * (88 // 16)
        flat += 4 * SUMMARY_BINS
        self.project = nn.Sequential(nn.Linear(flat, features), nn.ELU())

    def forward(
        self, mel_target: torch.Tensor, mel_current: torch.Tensor, mfcc_target: torch.Tensor, mfcc_current: torch.Tensor
    ) -> torch.Tensor:
        parts = [self.mel(pair_channels(mel_target, mel_current))]
        if self.mfcc is not None:
            parts.append(self.mfcc(pair_channels(mfcc_target / MFCC_SCALE, mfcc_current / MFCC_SCALE)))
        parts.append(spectral_summary(mel_target, mel_current))
        return self.project(torch.cat(parts, dim=-1))


class EffectCNN(nn.Module):
    """Predicts one effect's settings from a (target, current) pair."""

    def __init__(self, heads: list[HeadSpec], features: int = 96, dropout: float = 0.3) -> None:
        super().__init__()
        self.heads = list(heads)
        self.encoder = PairEncoder((16, 32, 32), (16, 16), features)
        self.dense = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, features), nn.ELU(), nn.Dropout(dropout))
        self.out = nn.Linear(features, sum(h.classes for h in self.heads))

    def forward(self, mel_target, mel_current, mfcc_target, mfcc_current) -> torch.Tensor:
        """Raw outputs (B, Σ classes): continuous heads are pre-sigmoid, categorical heads are logits."""
        return self.out(self.dense(self.encoder(mel_target, mel_current, mfcc_target, mfcc_current)))

    def split(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw outputs → per head: (B,) values in 0..1 (continuous) or (B, K) logits (categorical)."""
        out, start = {}, 0
        for head in self.heads:
            chunk = raw[:, start : start + head.classes]
            out[head.name] = torch.sigmoid(chunk[:, 0]) if head.classes == 1 else chunk
            start += head.classes
        return out

    def loss(self, raw: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """MSE on continuous values plus cross-entropy on class indices; ``values`` (B, heads) in paper space."""
        total = raw.new_zeros(())
        for i, (head, out) in enumerate(zip(self.heads, self.split(raw).values(), strict=True)):
            if head.classes == 1:
                total = total + nn.functional.mse_loss(out, values[:, i])
            else:
                total = total + 0.1 * nn.functional.cross_entropy(out, values[:, i].long())
        return total

    @torch.no_grad()
    def predict(self, mel_target, mel_current, mfcc_target, mfcc_current) -> list[dict[str, float]]:
        """Paper-space settings per item: continuous on the profile's 0.01 grid, categorical as a class index."""
        self.eval()
        parts = self.split(self(mel_target, mel_current, mfcc_target, mfcc_current))
        batch = next(iter(parts.values())).shape[0]
        result: list[dict[str, float]] = [{} for _ in range(batch)]
        for head in self.heads:
            values = parts[head.name]
            for b in range(batch):
                if head.classes == 1:
                    result[b][head.name] = round(float(values[b].clamp(0.0, 1.0)), 2)
                else:
                    result[b][head.name] = float(int(values[b].argmax()))
        return result

    @torch.no_grad()
    def predict_candidates(self, mel_target, mel_current, mfcc_target, mfcc_current, count: int = 2):
        """Up to ``count`` settings for one item, most likely first: the prediction, then the same with the
        runner-up class of each categorical parameter (closest call first)."""
        self.eval()
        parts = self.split(self(mel_target, mel_current, mfcc_target, mfcc_current))
        best = self.predict(mel_target, mel_current, mfcc_target, mfcc_current)[0]
        alternatives = []
        for head in self.heads:
            if head.classes > 1:
                probabilities = torch.softmax(parts[head.name][0], dim=-1)
                top = torch.topk(probabilities, 2)
                margin = float(top.values[0] - top.values[1])
                alternatives.append((margin, {**best, head.name: float(int(top.indices[1]))}))
        alternatives.sort(key=lambda pair: pair[0])
        return [best, *(values for _, values in alternatives)][: max(1, count)]


class NextEffectRNN(nn.Module):
    """Names the next effect from the sequence of (target, current) pairs and the effects used so far."""

    def __init__(
        self,
        n_effects: int = 5,
        features: int = 96,
        hidden: int = 64,
        dropout: float = 0.3,
        widths: tuple[int, int, int] | list[int] = (16, 32, 24),
        presence: bool = False,
    ) -> None:
        super().__init__()
        self.n_effects = n_effects
        w1, w2, w3 = widths
        self.encoder = PairEncoder((w1, w2, w3), None, features)
        self.lstm = nn.LSTM(features + n_effects, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(nn.Linear(2 * hidden, features), nn.ELU(), nn.Dropout(dropout))
        self.out = nn.Linear(features, n_effects)
        self.presence = nn.Linear(features, n_effects) if presence else None

    def encode(self, mel_target: torch.Tensor, mel_current: torch.Tensor) -> torch.Tensor:
        """Per-step features (N, features) of N (target, current) pairs, each (N, 128, 88).

        A step's features depend on its own pair only, so the coach encodes each new current once and keeps it.
        """
        return self.encoder(mel_target, mel_current, mel_target, mel_current)

    def forward(
        self,
        mel_target: torch.Tensor,
        mel_currents: torch.Tensor,
        used: torch.Tensor,
        lengths: torch.Tensor,
        with_presence: bool = False,
    ) -> torch.Tensor:
        """Logits (B, n_effects) after each sequence's last step, used effects masked to -inf; with
        ``with_presence`` (and a presence output) the presence logits follow them: (B, 2 · n_effects).

        ``mel_target`` (B, 128, 88); ``mel_currents`` (B, L, 128, 88); ``used`` (B, L, n_effects) one-hots of
        the effects used before each step; ``lengths`` (B,) steps per sequence (padding after).
        """
        batch, steps = mel_currents.shape[:2]
        flat_current = mel_currents.reshape(batch * steps, *mel_currents.shape[2:])
        flat_target = mel_target.unsqueeze(1).expand(-1, steps, -1, -1).reshape_as(flat_current)
        encoded = self.encode(flat_target, flat_current).reshape(batch, steps, -1)
        return self.classify(encoded, used, lengths, with_presence)

    def classify(
        self, encoded: torch.Tensor, used: torch.Tensor, lengths: torch.Tensor, with_presence: bool = False
    ) -> torch.Tensor:
        """:meth:`forward` from already encoded steps ``encoded`` (B, L, features)."""
        batch, steps = encoded.shape[:2]
        sequence = torch.cat([encoded, used], dim=-1)
        packed = nn.utils.rnn.pack_padded_sequence(sequence, lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, _ = self.lstm(packed)
        output, _ = nn.utils.rnn.pad_packed_sequence(output, batch_first=True, total_length=steps)
        last = self.head(output[torch.arange(batch), lengths - 1])
        last_used = used[torch.arange(batch), lengths - 1] > 0.5
        logits = self.out(last).masked_fill(last_used, float("-inf"))
        if with_presence and self.presence is not None:
            return torch.cat([logits, self.presence(last)], dim=-1)
        return logits
