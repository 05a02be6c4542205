"""CEQ (thesis Ch. 4, Table 4.1) and CAFx (Ch. 5, Table 5.1): the convolutional EQ and effects modelling networks.

Adaptive front-end (Conv1D filter bank, |x|, locally connected Conv1D, softplus, max-pooling to 64 latent samples),
a latent-space DNN (a locally connected dense layer per channel, then one dense layer shared by the channels, both
over the 64 latent samples, both softplus), an unpooling back to the frame's length, the product with the residual
``R = X1`` and the synthesis layer: the transpose of the first convolution, tied to its weights. CAFx adds between
the product and the synthesis a DNN-SAAF over the channel dimension (dense layers with softplus, then a linear one
and per-channel SAAFs) acting as trainable waveshapers.

Unpooling: the pretraining stage (Sec. 4.2.1) upsamples the latent only at the max positions the pooling recorded
(:func:`models.afx.train.reconstruct`); the end-to-end model upsamples by repetition ("only during this step the
unpooling layer of the back-end uses the time positions of the maximum values"), unless ``unpool="indices"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from models.afx.conditioning import condition, film_for
from models.afx.framing import FrameModel, Framing
from models.afx.layers import AdaptiveFrontEnd, DenseLocal, DenseSAAF, TiedDeconvolution, unpool


@dataclass(frozen=True)
class CEQConfig:
    """CEQ at the thesis's settings (Table 4.1): 16 kHz, frames of 1024 with hop 256, Hann-windowed in and out."""

    sample_rate: int = 16_000
    frame_samples: int = 1024
    hop_samples: int = 256
    filters: int = 128
    kernel_samples: int = 64
    local_kernel_samples: int = 128
    latent_samples: int = 64
    dense_units: int = 64
    unpool: str = "repeat"  # or "indices": upsample only at the recorded max positions
    window: str = "hann"  # of input and target frames
    knobs: int = 0  # control inputs (models.afx.conditioning); 0: the thesis's unconditioned model

    @property
    def framing(self) -> Framing:
        return Framing(self.frame_samples, self.hop_samples, 0, self.window, self.window)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CAFxConfig(CEQConfig):
    """CAFx at the thesis's settings (Table 5.1): CEQ's layers plus a DNN-SAAF of 128, 64, 64 and 128 units;
    rectangular frames with a Hann window at synthesis."""

    window: str = "rect"
    saaf_dense_units: tuple[int, ...] = (128, 64, 64, 128)
    saaf_segments: int = 12

    def __post_init__(self) -> None:
        object.__setattr__(self, "saaf_dense_units", tuple(int(u) for u in self.saaf_dense_units))


class CEQ(FrameModel):
    """The convolutional EQ modelling network: (B, 1, N) frames in, (B, 1, N) out."""

    config: CEQConfig

    def __init__(self, config: CEQConfig | None = None):
        super().__init__()
        c = self.config = config or CEQConfig()
        if c.unpool not in ("repeat", "indices"):
            raise ValueError(f"unpool must be 'repeat' or 'indices', got {c.unpool!r}")
        self.framing = c.framing
        self.front_end = AdaptiveFrontEnd(c.filters, c.kernel_samples, c.local_kernel_samples, c.latent_samples)
        self.dense_local = DenseLocal(c.filters, c.latent_samples, c.dense_units)
        self.dense = torch.nn.Linear(c.dense_units, c.latent_samples)
        self.deconv = TiedDeconvolution(self.front_end)
        self.film = film_for(c.knobs, c.filters)

    def latent(self, z: torch.Tensor) -> torch.Tensor:
        """The latent-space DNN: (B, filters, 64) envelopes to modified envelopes of the same shape."""
        return F.softplus(self.dense(F.softplus(self.dense_local(z))))

    def shape_bands(self, bands: torch.Tensor) -> torch.Tensor:
        """What the back-end does to ``R x X2`` before synthesis (CEQ: nothing)."""
        return bands

    def forward(self, frames: torch.Tensor, control: torch.Tensor | None = None) -> torch.Tensor:
        residual, _, z, indices = self.front_end(frames[:, :1], indices=self.config.unpool == "indices")
        z = condition(self.film, z, control)
        envelopes = unpool(self.latent(z), indices, frames.shape[-1])
        return self.deconv(self.shape_bands(residual * envelopes))


class CAFx(CEQ):
    """The convolutional audio effects modelling network: CEQ with a DNN-SAAF waveshaping back-end."""

    def __init__(self, config: CAFxConfig | None = None):
        config = config or CAFxConfig()
        super().__init__(config)
        self.dnn_saaf = DenseSAAF(config.filters, config.saaf_dense_units, "softplus", config.saaf_segments)

    def shape_bands(self, bands: torch.Tensor) -> torch.Tensor:
        return self.dnn_saaf(bands.transpose(1, 2)).transpose(1, 2)
