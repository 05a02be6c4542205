"""CRAFx (thesis Ch. 6, Table 6.1) and CWAFx (Sec. 6.2, Table 6.2): time-varying effects from context frames.

The input is the current frame and ``k`` frames either side at the hop (Eq. 6.1). The adaptive front-end (as in
CAFx, 32 filters) runs on each of the ``2k + 1`` frames; their pooled latents (64 samples x 32 channels each) go to
the latent space, which learns per-channel modulators ``Z^`` (B, 32, 64):

- CRAFx: three Bi-LSTMs of 64, 32 and 16 units over the 64 latent steps, whose inputs are the 2k+1 frames' channels
  side by side (288 with k = 4), then per-channel SAAFs (the last Bi-LSTM keeps PyTorch's tanh output before them;
  the released code made that layer linear).
- CWAFx: the frames' latents end to end in time (576 samples x 32 channels) through a WaveNet (2 stacks of dilations
  1..64, 32 channels, summed skips kept at 32 channels, two 3-tap post convolutions), then a dense layer over the
  576 samples to 64 with tanh.

Back-end (DNN-SAAF-SE, Fig. 6.3): the modulators are upsampled (repeated) to the frame and multiply the current
frame's band decomposition ``R`` (X^2 = X^3 x R, Eq. 6.2); dense layers of 32, 16, 16, 32 units (tanh, the last
linear) and SAAFs shape it into X^'1, a squeeze-and-excitation block (|x|, global average, dense 512 ReLU, dense 32
sigmoid) scales its channels (Eq. 6.3), the result is added back to X^2 (Eq. 6.4), and the tied transposed
convolution synthesises the frame.

Told the effect's LFO clocks (``clocks``, e.g. a Leslie's rotors; :mod:`models.afx.clocks`), the models also take
the render sample each output frame starts at: the clocks' phase harmonics join CRAFx's Bi-LSTM input at each latent
step, and a per-sample clock term is added to the modulators of CRAFx and CWAFx. Without clocks (the default) the
models are the thesis's, with Table C.1's counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

import torch
from torch import nn

from models.afx.clocks import (
    DEFAULT_HARMONICS,
    ClockModulation,
    clock_features,
    clock_records,
    feature_count,
    latent_steps,
)
from models.afx.conditioning import condition, film_for
from models.afx.framing import ContextFrames, Framing
from models.afx.layers import AdaptiveFrontEnd, BiLSTMStack, DenseSAAF, SqueezeExcitation, TiedDeconvolution, unpool
from models.afx.saaf import SAAF
from models.afx.wavenet import DilatedStack


@dataclass(frozen=True)
class CRAFxConfig:
    """CRAFx at the thesis's settings (Table 6.1): 16 kHz, frames of 4096 with hop 2048 and 4 context frames either
    side, 32 filters, Bi-LSTMs of 64, 32 and 16 units."""

    sample_rate: int = 16_000
    frame_samples: int = 4096
    hop_samples: int = 2048
    context_frames: int = 4
    filters: int = 32
    kernel_samples: int = 64
    local_kernel_samples: int = 128
    latent_samples: int = 64
    lstm_units: tuple[int, ...] = (64, 32, 16)
    dense_units: tuple[int, ...] = (32, 16, 16, 32)
    se_ratio: int = 16
    saaf_segments: int = 12
    dropout: float = 0.1
    knobs: int = 0  # control inputs (models.afx.conditioning); 0: the thesis's unconditioned model
    clocks: tuple[dict[str, Any], ...] = ()  # the effect's LFO clocks the model is told (models.afx.clocks)
    clock_harmonics: int = DEFAULT_HARMONICS

    def __post_init__(self) -> None:
        for name in ("lstm_units", "dense_units"):
            object.__setattr__(self, name, tuple(int(u) for u in getattr(self, name)))
        object.__setattr__(self, "clocks", clock_records(self.clocks))

    @property
    def clock_feature_count(self) -> int:
        """Clock features per sample (0: a model not told any clocks)."""
        return feature_count(self.clocks, self.clock_harmonics)

    @property
    def framing(self) -> Framing:
        return Framing(self.frame_samples, self.hop_samples, self.context_frames, "rect", "rect")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CWAFxConfig(CRAFxConfig):
    """CWAFx at the thesis's settings (Table 6.2): CRAFx's front and back ends with a latent WaveNet of 2 stacks of
    dilations 1..64 and 32 channels."""

    wavenet_dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    wavenet_stacks: int = 2
    wavenet_kernel_samples: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "wavenet_dilations", tuple(int(d) for d in self.wavenet_dilations))


ConfigT = TypeVar("ConfigT", bound=CRAFxConfig)
"""The config class of a :class:`ContextFrameModel` (CRAFx's, or one that extends it: CWAFx's, CSAFx's)."""


class ContextFrameModel(ContextFrames, Generic[ConfigT]):
    """Front-end over the 2k+1 frames and the DNN-SAAF-SE back-end around a latent space ``self.latent`` (set by
    the subclass), which maps the frames' latents (B, 2k+1, filters, latent) to modulators (B, filters, latent)
    (and, if ``latent_reads_clocks``, the clock features at the latent steps (B, F, latent) besides)."""

    config: ConfigT
    latent: nn.Module
    latent_reads_clocks = False

    def __init__(self, config: ConfigT):
        super().__init__()
        c = self.config = config
        self.framing = c.framing
        self.front_end = AdaptiveFrontEnd(c.filters, c.kernel_samples, c.local_kernel_samples, c.latent_samples)
        self.dnn_saaf = DenseSAAF(c.filters, c.dense_units, "tanh", c.saaf_segments)
        self.se = SqueezeExcitation(c.filters, c.se_ratio)
        self.deconv = TiedDeconvolution(self.front_end)
        self.film = film_for(c.knobs, c.filters)
        self.clock_modulation = ClockModulation(c.clock_feature_count, c.filters, c.knobs) if c.clocks else None

    @property
    def told_clocks(self) -> bool:
        return bool(self.config.clocks)

    def clock_inputs(
        self, residual: torch.Tensor, control: torch.Tensor | None, first_sample: torch.Tensor | None
    ) -> torch.Tensor | None:
        """The clock features (B, F, N) of the current frames starting at render samples ``first_sample`` (B,);
        None for a model not told any clocks."""
        if not self.told_clocks:
            return None
        if first_sample is None:
            raise ValueError("this model is told its LFO clocks: give each frame's first render sample")
        c = self.config
        where = first_sample.reshape(-1).to(residual.device)
        return clock_features(c.clocks, c.clock_harmonics, control, where, residual.shape[-1], c.sample_rate).to(
            residual
        )

    def encode(self, frames: torch.Tensor, control: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames (B, 2k+1, N) -> the current frame's residual R (B, filters, N) and the latents
        (B, 2k+1, filters, latent), conditioned on ``control`` (B, knobs) if the model has knobs."""
        batch, count, n = frames.shape
        if count != 2 * self.config.context_frames + 1:
            raise ValueError(f"expected {2 * self.config.context_frames + 1} frames per example, got {count}")
        residual, z = self.encode_frames(frames.reshape(batch * count, n), control)
        current = self.config.context_frames
        return residual.reshape(batch, count, -1, n)[:, current], z.reshape(batch, count, *z.shape[1:])

    def encode_frames(
        self, frames: torch.Tensor, control: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        residual, _, z, _ = self.front_end(frames[:, None], indices=False)
        return residual, condition(self.film, z, control)

    def forward(
        self, frames: torch.Tensor, control: torch.Tensor | None = None, first_sample: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Frames (B, 2k+1, N) to output frames (B, 1, N); a model told clocks needs ``first_sample`` (B,), the
        render sample each current frame starts at."""
        return self.decode(*self.encode(frames, control), control, first_sample)

    def decode(
        self,
        residual: torch.Tensor,
        latents: torch.Tensor,
        control: torch.Tensor | None = None,
        first_sample: torch.Tensor | None = None,
    ) -> torch.Tensor:
        clock = self.clock_inputs(residual, control, first_sample)
        if clock is not None and self.latent_reads_clocks:
            modulators = self.latent(latents, latent_steps(clock, self.config.latent_samples))
        else:
            modulators = self.latent(latents)
        modulators = unpool(modulators, None, residual.shape[-1])
        if clock is not None:
            assert self.clock_modulation is not None, "built with the clocks"
            modulators = modulators + self.clock_modulation(clock, control)
        modulated = (modulators * residual).transpose(1, 2)  # X^2
        shaped = self.dnn_saaf(modulated)  # X^'1
        return self.deconv((modulated + shaped * self.se(shaped)).transpose(1, 2))


class RecurrentLatent(nn.Module):
    """CRAFx's latent space: Bi-LSTMs over the latent steps (all frames' channels side by side), then SAAFs."""

    def __init__(self, c: CRAFxConfig):
        super().__init__()
        inputs = (2 * c.context_frames + 1) * c.filters + c.clock_feature_count
        self.recurrent = BiLSTMStack(inputs, c.lstm_units, c.dropout)
        if self.recurrent.output_size != c.filters:
            raise ValueError(f"the last Bi-LSTM must give {c.filters} channels (2 x {c.filters // 2} units)")
        self.saaf = SAAF(c.filters, c.saaf_segments)

    def forward(self, latents: torch.Tensor, clock_steps: torch.Tensor | None = None) -> torch.Tensor:
        """Latents (B, 2k+1, C, L) and, for a model told clocks, their features at the steps (B, F, L)."""
        return self.saaf(self.recurrent(recurrent_sequence(latents, clock_steps))).transpose(1, 2)


def recurrent_sequence(latents: torch.Tensor, clock_steps: torch.Tensor | None) -> torch.Tensor:
    """The Bi-LSTM's input (B, L, (2k+1) x C [+ F]): every frame's latent channels side by side at each of the L
    latent steps, then the clock features at that step."""
    batch, count, channels, steps = latents.shape
    sequence = latents.permute(0, 3, 1, 2).reshape(batch, steps, count * channels)
    return sequence if clock_steps is None else torch.cat((sequence, clock_steps.transpose(1, 2)), dim=-1)


class WaveNetLatent(nn.Module):
    """CWAFx's latent space: the frames' latents end to end through a WaveNet, then a dense layer over time."""

    def __init__(self, c: CWAFxConfig):
        super().__init__()
        self.wavenet = DilatedStack(
            c.filters,
            c.filters,
            c.wavenet_kernel_samples,
            c.wavenet_dilations,
            c.wavenet_stacks,
            (c.filters, c.filters),
            pad=True,
        )
        self.dense = nn.Linear((2 * c.context_frames + 1) * c.latent_samples, c.latent_samples)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        batch, count, channels, steps = latents.shape
        sequence = latents.permute(0, 2, 1, 3).reshape(batch, channels, count * steps)  # frames end to end
        return torch.tanh(self.dense(self.wavenet(sequence)))


class CRAFx(ContextFrameModel[CRAFxConfig]):
    """The convolutional recurrent audio effects modelling network."""

    latent_reads_clocks = True

    def __init__(self, config: CRAFxConfig | None = None):
        super().__init__(config or CRAFxConfig())
        self.latent = RecurrentLatent(self.config)


class CWAFx(ContextFrameModel[CWAFxConfig]):
    """The convolutional and WaveNet audio effects modelling network."""

    def __init__(self, config: CWAFxConfig | None = None):
        super().__init__(config or CWAFxConfig())
        self.latent = WaveNetLatent(self.config)
