"""Training losses and the matching distances for effect models (torch, differentiable).

The multi-resolution STFT distance follows the steerable-effects paper: FFT sizes 32, 128, 512 and 2048 with a hop
of half the FFT size and a Hann window of the FFT size; at each resolution the spectral convergence plus the mean
absolute difference of log magnitudes, averaged over resolutions. With the same settings it gives the same numbers as
auraloss's ``MultiResolutionSTFTLoss`` (the test suite checks this).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

PAPER_FFT_SIZES: tuple[int, ...] = (32, 128, 512, 2048)


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1, averaged over several STFT resolutions.

    Inputs are (..., samples) tensors; leading dimensions are flattened into a batch.
    """

    def __init__(self, fft_sizes: Sequence[int] = PAPER_FFT_SIZES, eps: float = 1e-8):
        super().__init__()
        self.fft_sizes = tuple(int(n) for n in fft_sizes)
        self.eps = eps
        for n in self.fft_sizes:
            self.register_buffer(f"window_{n}", torch.hann_window(n), persistent=False)

    def _magnitude(self, x: torch.Tensor, n_fft: int) -> torch.Tensor:
        spec = torch.stft(
            x,
            n_fft=n_fft,
            hop_length=n_fft // 2,
            win_length=n_fft,
            window=getattr(self, f"window_{n_fft}"),
            return_complex=True,
        )
        return torch.sqrt(torch.clamp(spec.real**2 + spec.imag**2, min=self.eps))

    def forward(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        estimate = estimate.reshape(-1, estimate.shape[-1])
        target = target.reshape(-1, target.shape[-1])
        total = estimate.new_zeros(())
        for n_fft in self.fft_sizes:
            est_mag = self._magnitude(estimate, n_fft)
            tgt_mag = self._magnitude(target, n_fft)
            convergence = torch.linalg.norm(tgt_mag - est_mag, ord="fro", dim=(-2, -1)) / torch.linalg.norm(
                tgt_mag, ord="fro", dim=(-2, -1)
            )
            log_distance = torch.mean(torch.abs(torch.log(tgt_mag) - torch.log(est_mag)), dim=(-2, -1))
            total = total + torch.mean(convergence) + torch.mean(log_distance)
        return total / len(self.fft_sizes)


def error_to_signal_ratio(estimate: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """ESR = sum (y - y_hat)^2 / sum y^2 over the last axis, averaged over the rest."""
    error = torch.sum((target - estimate) ** 2, dim=-1)
    energy = torch.sum(target**2, dim=-1) + eps
    return torch.mean(error / energy)


def frame_level_distance_db(
    estimate: torch.Tensor, target: torch.Tensor, frame_samples: int = 2048, floor_db: float = -80.0
) -> torch.Tensor:
    """Mean absolute difference, in dB, of the RMS levels of half-overlapping frames of ``frame_samples``.

    The level envelope a compressor shapes and a loudness meter integrates: a model that compresses too little is
    louder frame by frame, which the spectral terms weigh little on quiet material. Levels below ``floor_db`` count
    as the floor, so silence in both costs nothing. Inputs are (..., samples) with at least ``frame_samples``.
    """
    estimate = estimate.reshape(-1, estimate.shape[-1])
    target = target.reshape(-1, target.shape[-1])
    hop = max(1, frame_samples // 2)
    floor = 10.0 ** (floor_db / 10.0)

    def level_db(x: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10(torch.mean(x.unfold(-1, frame_samples, hop) ** 2, dim=-1) + floor)

    return torch.mean(torch.abs(level_db(estimate) - level_db(target)))


def band_level_distance_db(
    estimate: torch.Tensor,
    target: torch.Tensor,
    sample_rate_hz: int,
    fft_samples: int = 8192,
    bands_per_octave: int = 3,
    low_hz: float = 30.0,
    range_db: float = 60.0,
) -> torch.Tensor:
    """Mean absolute difference, in dB, of the long-term levels of log-spaced frequency bands.

    Each row's power spectrum (Hann window of ``fft_samples``, or the row's length rounded down to a power of two
    when shorter; hop half of it) is averaged over its frames and summed into bands of ``1 / bands_per_octave``
    octave from ``low_hz`` up to Nyquist (bands holding no FFT bin are left out). A band more than ``range_db``
    below the target row's loudest band counts as that floor in both, so inaudible bands cost nothing. This is the
    tonal balance a loudness meter integrates over a clip: a model whose low end is 3 dB short on a bass line is off
    here at every step, where the short frames of an MR-STFT loss hardly resolve 40 to 130 Hz. Inputs are
    (..., samples); leading dimensions are flattened into rows, and the mean is over rows and bands.
    """
    estimate = estimate.reshape(-1, estimate.shape[-1])
    target = target.reshape(-1, target.shape[-1])
    n_fft = min(fft_samples, 1 << (int(target.shape[-1]).bit_length() - 1))
    window = torch.hann_window(n_fft, device=target.device, dtype=target.dtype)

    def power(x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(x, n_fft=n_fft, hop_length=n_fft // 2, window=window, center=False, return_complex=True)
        return torch.mean(spec.real**2 + spec.imag**2, dim=-1)  # (rows, bins)

    bins_hz = torch.arange(n_fft // 2 + 1, device=target.device, dtype=target.dtype) * sample_rate_hz / n_fft
    band = torch.floor(torch.log2(torch.clamp(bins_hz, min=1e-6) / low_hz) * bands_per_octave)
    valid = band >= 0
    used = torch.unique(band[valid])
    membership = (band[valid][None, :] == used[:, None]).to(target.dtype)  # (bands, bins from low_hz)

    def levels_db(x: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10(power(x)[:, valid] @ membership.T + 1e-20)

    tgt = levels_db(target)
    floor = torch.amax(tgt, dim=-1, keepdim=True) - range_db
    est = levels_db(estimate)
    return torch.mean(torch.abs(torch.maximum(est, floor) - torch.maximum(tgt, floor)))
