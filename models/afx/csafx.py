"""CSAFx (thesis Ch. 8, Tables 8.1-8.2): the convolutional recurrent and sparse filtering network for reverberation.

Front-end as CRAFx (32 filters over the frame and 4 context frames either side, frames of 4096 with 50 % hop).
Latent space: Bi-LSTMs of 64 and 32 units, then two independent Bi-LSTMs of 16 units, each followed by per-channel
SAAFs: ``Z^1`` (envelopes) and ``Z^2``, from which the SFIR layer makes one sparse FIR filter per channel
``Z^3`` (2000 taps per second: an interval of 8 samples at 16 kHz, 512 taps over a 4096 frame). Back-end: each
channel of ``R`` is convolved with its filter (X^5 = R * Z^3, Eq. 8.1; causal, by FFT) and multiplied by the
upsampled envelopes (X^3 = X^5 x X^4, Eq. 8.2); a DNN-SAAF (32, 16, 16, 32 units, tanh) shapes ``R`` into X^2; two
SE-LSTM blocks (|x|, global average, LSTM 32 with ReLU, dense 512 ReLU, dense 32 sigmoid) give the mixing gains
(Eqs. 8.3-8.5), and the tied transposed convolution synthesises the frame, which leaves the model Hann-windowed.

Where the envelope branch reads from is the one uncertain layer: the text of Sec. 8.1 says both 16-unit branches
follow the shared 32-unit layer (402,369 parameters, 2.1 % under Table C.1's 410,977), while Table 8.1's two columns
and Table C.1's count fit the envelope branch reading the 64-unit layer's output (410,561, 0.1 % under; the released
code also has a SAAF after the SFIR convolution, the other 416). ``envelope_from_first_lstm`` chooses; the default
follows Table C.1.

Told the effect's LFO clocks (``clocks``, :mod:`models.afx.clocks`), the clocks' phase harmonics join the first
Bi-LSTM's input at each latent step, and a per-sample clock term is added to the upsampled envelopes Z^1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.afx.clocks import latent_steps
from models.afx.crafx import ContextFrameModel, CRAFxConfig, recurrent_sequence
from models.afx.framing import Framing
from models.afx.layers import BiLSTMStack, SqueezeExcitation, unpool
from models.afx.saaf import SAAF
from models.afx.sfir import SparseFIR, fft_convolve


@dataclass(frozen=True)
class CSAFxConfig(CRAFxConfig):
    """CSAFx at the thesis's settings: shared Bi-LSTMs of 64 and 32 units, two branches of 16, SFIR interval of 8."""

    lstm_units: tuple[int, ...] = (64, 32)
    branch_units: int = 16
    sfir_interval_samples: int = 8
    envelope_from_first_lstm: bool = True  # the envelope branch reads the first Bi-LSTM (else the last shared one)

    @property
    def framing(self) -> Framing:
        return Framing(self.frame_samples, self.hop_samples, self.context_frames, "rect", "hann")

    @property
    def sfir_taps(self) -> int:
        return self.frame_samples // self.sfir_interval_samples


class CSAFx(ContextFrameModel[CSAFxConfig]):
    """The convolutional recurrent and sparse filtering audio effects modelling network."""

    output_window: torch.Tensor  # a buffer: the Hann window the synthesised frame is multiplied by

    def __init__(self, config: CSAFxConfig | None = None):
        super().__init__(config or CSAFxConfig())
        c = self.config
        if c.frame_samples % c.sfir_interval_samples:
            raise ValueError(f"the SFIR interval {c.sfir_interval_samples} must divide the frame")
        if 2 * c.branch_units != c.filters:
            raise ValueError(f"each latent branch must give {c.filters} channels (2 x {c.filters // 2} units)")
        frames = 2 * c.context_frames + 1
        self.first = BiLSTMStack(frames * c.filters + c.clock_feature_count, c.lstm_units[:1], c.dropout)
        self.shared = BiLSTMStack(self.first.output_size, c.lstm_units[1:], c.dropout)
        envelope_input = self.first.output_size if c.envelope_from_first_lstm else self.shared.output_size
        self.envelope_branch = BiLSTMStack(envelope_input, (c.branch_units,), c.dropout)
        self.filter_branch = BiLSTMStack(self.shared.output_size, (c.branch_units,), c.dropout)
        self.envelope_saaf = SAAF(c.filters, c.saaf_segments)
        self.filter_saaf = SAAF(c.filters, c.saaf_segments)
        self.sfir = SparseFIR(c.latent_samples, c.sfir_taps, c.sfir_interval_samples)
        self.se = SqueezeExcitation(c.filters, c.se_ratio, recurrent=True)  # se2, for the waveshaped R
        self.reverb_se = SqueezeExcitation(c.filters, c.se_ratio, recurrent=True)  # se1, for the reverberant bands
        self.register_buffer("output_window", torch.hann_window(c.frame_samples), persistent=False)

    def latent_space(
        self, latents: torch.Tensor, clock_steps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 2k+1, filters, latent) (and, told clocks, their features at the latent steps (B, F, latent)) ->
        envelopes Z^1 and SFIR latent Z^2, each (B, filters, latent)."""
        first = self.first(recurrent_sequence(latents, clock_steps))
        shared = self.shared(first)
        envelope_input = first if self.config.envelope_from_first_lstm else shared
        envelopes = self.envelope_saaf(self.envelope_branch(envelope_input)).transpose(1, 2)
        return envelopes, self.filter_saaf(self.filter_branch(shared)).transpose(1, 2)

    def decode(
        self,
        residual: torch.Tensor,
        latents: torch.Tensor,
        control: torch.Tensor | None = None,
        first_sample: torch.Tensor | None = None,
    ) -> torch.Tensor:
        clock = self.clock_inputs(residual, control, first_sample)
        steps = None if clock is None else latent_steps(clock, self.config.latent_samples)
        envelopes, filter_latent = self.latent_space(latents, steps)
        reverberant = fft_convolve(residual, self.sfir(filter_latent))  # X^5
        envelope = unpool(envelopes, None, residual.shape[-1])
        if clock is not None:
            assert self.clock_modulation is not None, "built with the clocks"
            envelope = envelope + self.clock_modulation(clock, control)
        reverberant = (reverberant * envelope).transpose(1, 2)  # X^3
        direct = self.dnn_saaf(residual.transpose(1, 2))  # X^2
        mixed = reverberant * self.reverb_se(reverberant) + direct * self.se(direct)  # X^0
        return self.deconv(mixed.transpose(1, 2)) * self.output_window
