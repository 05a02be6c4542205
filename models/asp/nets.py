"""The multi-task VAE's networks: a mel-spectrogram encoder and decoder, and parameter decoders in three variants.

* ``separate`` — one whole VAE per synth (its own encoder, spectrogram decoder and parameter decoder); a clip goes
  through its synth's VAE only.
* ``joint_encoder`` — one encoder and spectrogram decoder for every synth, one parameter decoder per synth
  (the paper's "separate decoders"; a clip's parameter loss reaches its synth's decoder only).
* ``joint_decoder`` — one encoder, spectrogram decoder and parameter decoder for every synth; the decoder gets
  the synth as a one-hot input next to the latent and outputs a vector as long as the longest synth's, shorter
  synths' vectors padded (the padding is masked out of the loss).

Parameter outputs come back padded to the longest synth's vector, row by row for the row's synth: continuous
slots as raw scores (a sigmoid gives 0..1), one-hot groups as logits (:func:`prediction_vector`).

**Hypotheses** (``Architecture.hypotheses`` above 1): each parameter decoder proposes that many whole patches and
scores them. Many settings sound alike, so a single regression lands on the average of the patches a sound could
be, each parameter pulled towards the middle, which no human preset holds; trained winner-takes-all
(:func:`models.asp.losses.hypotheses_loss`), each hypothesis settles on one family of patches, and the scores learn
which family a sound belongs to. ``params`` is the best-scored hypothesis; the others are further guesses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from models.errors import ReaTimbreError
from models.synth.features import CLIP_FRAMES, N_MELS
from models.synth.spaces import Layout

VARIANTS = ("separate", "joint_encoder", "joint_decoder")
#: mel_db80 is dB/80 re full scale (a clip's loudest bins near 0, the floor 1.0 below its peak): shifted to centre.
INPUT_SHIFT = 0.5
MAX_HYPOTHESES = 32


@dataclass(frozen=True)
class Architecture:
    """What a model is: its variant, synths (in order), their parameter layouts, and sizes."""

    variant: str
    synths: tuple[str, ...]
    layouts: tuple[Layout, ...]
    latent: int = 64
    channels: int = 16
    hidden: int = 128
    hypotheses: int = 1  # whole patches each parameter decoder proposes (1: the paper's single regression)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ReaTimbreError(f"unknown variant {self.variant!r}; variants: {', '.join(VARIANTS)}")
        if not self.synths or len(self.synths) != len(self.layouts):
            raise ReaTimbreError("a model needs one parameter layout per synth")
        if len(set(self.synths)) != len(self.synths):
            raise ReaTimbreError("synths repeat")
        if not 1 <= self.latent <= 4096:
            raise ReaTimbreError(f"latent size must be 1..4096, got {self.latent}")
        if not 1 <= self.hypotheses <= MAX_HYPOTHESES:
            raise ReaTimbreError(f"hypotheses must be 1..{MAX_HYPOTHESES}, got {self.hypotheses}")

    @property
    def padded_size(self) -> int:
        return max(layout.size for layout in self.layouts)

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["synths"] = list(self.synths)
        body["layouts"] = [layout.to_json() for layout in self.layouts]
        return body

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Architecture:
        return cls(
            variant=str(raw["variant"]),
            synths=tuple(str(s) for s in raw["synths"]),
            layouts=tuple(Layout.from_json(layout) for layout in raw["layouts"]),
            latent=int(raw["latent"]),
            channels=int(raw["channels"]),
            hidden=int(raw["hidden"]),
            hypotheses=int(raw.get("hypotheses", 1)),  # weights from before hypotheses have one
        )


class Encoder(nn.Module):
    """mel (B, 128, 88) → (mu, logvar), each (B, latent): four stride-2 convolutions and an MLP."""

    def __init__(self, latent: int, channels: int, hidden: int) -> None:
        super().__init__()
        c = channels
        self.convs = nn.Sequential(
            nn.Conv2d(1, c // 2, 4, 2, 1), nn.GELU(),
            nn.Conv2d(c // 2, c, 4, 2, 1), nn.GELU(),
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.GELU(),
            nn.Conv2d(2 * c, 2 * c, 4, 2, 1), nn.GELU(),
        )  # fmt: skip
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, 1, N_MELS, CLIP_FRAMES)).numel()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden), nn.GELU(), nn.Linear(hidden, 2 * latent))

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(self.convs((mel + INPUT_SHIFT).unsqueeze(1)))
        mu, logvar = out.chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)


class SpectrogramDecoder(nn.Module):
    """latent (B, latent) → mel (B, 128, 88): an MLP to an 8×6 map and four stride-2 transposed convolutions."""

    def __init__(self, latent: int, channels: int, hidden: int) -> None:
        super().__init__()
        c = channels
        self.shape = (2 * c, N_MELS // 16, -(-CLIP_FRAMES // 16))
        self.mlp = nn.Sequential(
            nn.Linear(latent, hidden), nn.GELU(), nn.Linear(hidden, 2 * c * self.shape[1] * self.shape[2])
        )
        self.deconvs = nn.Sequential(
            nn.GELU(),
            nn.ConvTranspose2d(2 * c, 2 * c, 4, 2, 1), nn.GELU(),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.GELU(),
            nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.GELU(),
            nn.ConvTranspose2d(c // 2, 1, 4, 2, 1),
        )  # fmt: skip

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        maps = self.mlp(z).view(z.shape[0], *self.shape)
        return self.deconvs(maps)[:, 0, :N_MELS, :CLIP_FRAMES] - INPUT_SHIFT


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, outputs)
    )


class Output(NamedTuple):
    mu: torch.Tensor
    logvar: torch.Tensor
    mel: torch.Tensor  # reconstructed (B, 128, 88)
    params: torch.Tensor  # (B, padded) raw parameter outputs of each row's synth (its best-scored hypothesis)
    hypotheses: torch.Tensor  # (B, hypotheses, padded) every hypothesis's raw outputs
    scores: torch.Tensor  # (B, hypotheses) the hypotheses' scores (logits; zeros with one hypothesis)


def decoder_outputs(size: int, hypotheses: int) -> int:
    """A parameter decoder's output width: ``hypotheses`` vectors of ``size``, then a score each (if several)."""
    return hypotheses * size + (hypotheses if hypotheses > 1 else 0)


class AspModel(nn.Module):
    """The multi-task VAE (see the module docstring for the variants)."""

    def __init__(self, architecture: Architecture) -> None:
        super().__init__()
        a = architecture
        self.architecture = a
        n = len(a.synths)
        n_vaes = n if a.variant == "separate" else 1
        self.encoders = nn.ModuleList(Encoder(a.latent, a.channels, a.hidden) for _ in range(n_vaes))
        self.spectrogram_decoders = nn.ModuleList(
            SpectrogramDecoder(a.latent, a.channels, a.hidden) for _ in range(n_vaes)
        )
        h = a.hypotheses
        if a.variant == "joint_decoder":
            self.parameter_decoders = nn.ModuleList([_mlp(a.latent + n, a.hidden, decoder_outputs(a.padded_size, h))])
        else:
            self.parameter_decoders = nn.ModuleList(
                _mlp(a.latent, a.hidden, decoder_outputs(layout.size, h)) for layout in a.layouts
            )

    def synth_index(self, name: str) -> int:
        if name not in self.architecture.synths:
            raise ReaTimbreError(f"this model knows {', '.join(self.architecture.synths)}, not {name!r}")
        return self.architecture.synths.index(name)

    def encode(self, mel: torch.Tensor, synth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(self.encoders) == 1:
            return self.encoders[0](mel)
        mu = mel.new_zeros(mel.shape[0], self.architecture.latent)
        logvar = torch.zeros_like(mu)
        for s, encoder in enumerate(self.encoders):
            rows = torch.nonzero(synth == s).flatten()
            if rows.numel():
                mu[rows], logvar[rows] = encoder(mel[rows])
        return mu, logvar

    def decode_mel(self, z: torch.Tensor, synth: torch.Tensor) -> torch.Tensor:
        if len(self.spectrogram_decoders) == 1:
            return self.spectrogram_decoders[0](z)
        out = z.new_zeros(z.shape[0], N_MELS, CLIP_FRAMES)
        for s, decoder in enumerate(self.spectrogram_decoders):
            rows = torch.nonzero(synth == s).flatten()
            if rows.numel():
                out[rows] = decoder(z[rows])
        return out

    def decode_hypotheses(self, z: torch.Tensor, synth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every hypothesis's raw outputs (B, hypotheses, padded), zero past each row's synth, and their scores
        (B, hypotheses)."""
        a = self.architecture
        h = a.hypotheses
        if a.variant == "joint_decoder":
            one_hot = nn.functional.one_hot(synth, len(a.synths)).to(z.dtype)
            out = self.parameter_decoders[0](torch.cat([z, one_hot], dim=-1))
            raw = out[:, : h * a.padded_size].reshape(z.shape[0], h, a.padded_size)
            return raw, out[:, h * a.padded_size :] if h > 1 else z.new_zeros(z.shape[0], 1)
        raw = z.new_zeros(z.shape[0], h, a.padded_size)
        scores = z.new_zeros(z.shape[0], h)
        for s, decoder in enumerate(self.parameter_decoders):
            rows = torch.nonzero(synth == s).flatten()
            if rows.numel():
                size = a.layouts[s].size
                out = decoder(z[rows])
                raw[rows, :, :size] = out[:, : h * size].reshape(-1, h, size)
                if h > 1:
                    scores[rows] = out[:, h * size :]
        return raw, scores

    def decode_params(self, z: torch.Tensor, synth: torch.Tensor) -> torch.Tensor:
        """Raw outputs (B, padded) of each row's best-scored hypothesis."""
        return best_hypothesis(*self.decode_hypotheses(z, synth))

    def forward(self, mel: torch.Tensor, synth: torch.Tensor, sample: bool = True) -> Output:
        mu, logvar = self.encode(mel, synth)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
        raw, scores = self.decode_hypotheses(z, synth)
        return Output(mu, logvar, self.decode_mel(z, synth), best_hypothesis(raw, scores), raw, scores)


def best_hypothesis(raw: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """(B, hypotheses, padded) and (B, hypotheses) → each row's best-scored hypothesis (B, padded)."""
    return raw[torch.arange(raw.shape[0], device=raw.device), scores.argmax(dim=1)]


def prediction_vector(raw: torch.Tensor, layout: Layout) -> torch.Tensor:
    """A row's raw outputs (padded) → its synth's encoded vector: continuous slots through a sigmoid (0..1),
    one-hot groups as softmax probabilities."""
    vector = raw[..., : layout.size].clone()
    if layout.continuous:
        index = torch.tensor(layout.continuous, device=raw.device)
        vector[..., index] = torch.sigmoid(vector[..., index])
    for start, classes in layout.groups:
        vector[..., start : start + classes] = torch.softmax(vector[..., start : start + classes], dim=-1)
    return vector
