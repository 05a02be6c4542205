"""The thesis's training losses, over output and target frames (B, 1, N) (or any (..., samples)).

- :func:`eq49_loss` (Eq. 4.9, CEQ): ``KL(Y, Y^) + MSE(Y, Y^) + 0.1 * MAE(y, y^)`` with ``Y`` the 1024-point FFT
  magnitudes, the KL divergence taken between the spectra normalised to sum to one (per frame).
- :func:`eq86_loss` (Eq. 8.6, CSAFx): ``MAE(H y, H y^) + 1e-4 * MSE(Y_dB, Y^_dB)`` with ``H(z) = 1 - 0.95 z^-1``
  and ``Y_dB`` the log power spectrum in dB from a 4096-point FFT.
- :func:`mae` (Eq. 3.1): the loss of CAFx, WaveNet, CRAFx and CWAFx.
- :func:`mae_mrstft` (not the thesis's): MAE plus the multi-resolution STFT loss at 512, 1,024 and 2,048 samples,
  our TCNs' recipe, with the spectral convergence over the batch (a frame of 4,096 samples is often silent). Its
  spectral terms do not see the phase, so a component the model cannot line up in time (a Leslie horn's
  Doppler-shifted highs) is not pulled towards silence as a waveform loss pulls it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

EPS = 1e-10  # floor of magnitudes and powers before logs and divisions (power: -100 dB)


def mae(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error, Eq. 3.1."""
    return F.l1_loss(estimate, target)


def magnitude(frames: torch.Tensor, fft_samples: int) -> torch.Tensor:
    """|FFT| of each frame (zero-padded or cut to ``fft_samples``): (..., fft_samples // 2 + 1)."""
    return torch.fft.rfft(frames, fft_samples).abs()


def normalised_kl(target_spectrum: torch.Tensor, estimate_spectrum: torch.Tensor) -> torch.Tensor:
    """KL(P || Q) for magnitude spectra normalised to probability distributions per frame, averaged over frames."""
    p = target_spectrum + EPS
    q = estimate_spectrum + EPS
    p = p / p.sum(-1, keepdim=True)
    q = q / q.sum(-1, keepdim=True)
    return (p * (p.log() - q.log())).sum(-1).mean()


def eq49_loss(
    estimate: torch.Tensor,
    target: torch.Tensor,
    fft_samples: int = 1024,
    weights: tuple[float, float, float] = (1.0, 1.0, 0.1),
) -> torch.Tensor:
    """Eq. 4.9: ``a1 KL(Y, Y^) + a2 MSE(Y, Y^) + a3 MAE(y, y^)`` (a = 1, 1, 0.1 in the thesis)."""
    y, y_hat = magnitude(target, fft_samples), magnitude(estimate, fft_samples)
    kl, spectral, waveform = normalised_kl(y, y_hat), F.mse_loss(y_hat, y), mae(estimate, target)
    return weights[0] * kl + weights[1] * spectral + weights[2] * waveform


def pre_emphasis(x: torch.Tensor, coefficient: float = 0.95) -> torch.Tensor:
    """``H(z) = 1 - coefficient z^-1`` along the last axis (Eq. 8.7), from silence."""
    return x - coefficient * F.pad(x[..., :-1], (1, 0))


def log_power_db(frames: torch.Tensor, fft_samples: int) -> torch.Tensor:
    """``10 log10 |FFT|^2`` per frame, floored at -100 dB."""
    return 10 * torch.log10(magnitude(frames, fft_samples).square() + EPS)


def eq86_loss(
    estimate: torch.Tensor,
    target: torch.Tensor,
    fft_samples: int = 4096,
    weights: tuple[float, float] = (1.0, 1e-4),
) -> torch.Tensor:
    """Eq. 8.6: ``a1 MAE(H y, H y^) + a2 MSE(Y_dB, Y^_dB)`` (a = 1, 1e-4 in the thesis)."""
    waveform = mae(pre_emphasis(estimate), pre_emphasis(target))
    spectral = F.mse_loss(log_power_db(estimate, fft_samples), log_power_db(target, fft_samples))
    return weights[0] * waveform + weights[1] * spectral


MRSTFT_FFT_SAMPLES = (512, 1024, 2048)


def stft_magnitude(x: torch.Tensor, fft_samples: int) -> torch.Tensor:
    """|STFT| (Hann window, hop of half the window) of (..., samples) as (rows, bins, frames), floored at 1e-4."""
    window = torch.hann_window(fft_samples, device=x.device, dtype=x.dtype)
    spectrum = torch.stft(x.reshape(-1, x.shape[-1]), fft_samples, fft_samples // 2, window=window, return_complex=True)
    return torch.sqrt(torch.clamp(spectrum.real**2 + spectrum.imag**2, min=1e-8))


def batch_mrstft(estimate: torch.Tensor, target: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """The multi-resolution STFT loss (spectral convergence + mean log-magnitude distance, averaged over ``sizes``)
    with the spectral convergence taken over the whole batch: a silent target frame (a gap in the material) has no
    norm of its own to divide by."""
    total = estimate.new_zeros(())
    for n in sizes:
        e, t = stft_magnitude(estimate, n), stft_magnitude(target, n)
        convergence = torch.linalg.vector_norm(t - e) / torch.linalg.vector_norm(t).clamp(min=EPS)
        total = total + convergence + torch.mean(torch.abs(torch.log(t) - torch.log(e)))
    return total / len(sizes)


def mae_mrstft(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``MAE(y, y^) + MR-STFT(y, y^)`` (:func:`batch_mrstft` at 512, 1,024, 2,048 samples; frames shorter than
    2,048 samples use the sizes that fit, at least one of half the frame)."""
    length = target.shape[-1]
    sizes = tuple(n for n in MRSTFT_FFT_SAMPLES if n <= length) or (max(2, length // 2),)
    return mae(estimate, target) + batch_mrstft(estimate, target, sizes)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "eq49": eq49_loss,
    "eq86": eq86_loss,
    "mae": mae,
    "mae+mrstft": mae_mrstft,
}
DEFAULT_LOSS = {"ceq": "eq49", "cafx": "mae", "wavenet": "mae", "crafx": "mae", "cwafx": "mae", "csafx": "eq86"}
