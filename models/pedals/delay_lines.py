"""Differentiable delay lines: reading a signal at a (time-varying, fractional) delay, and a feedback comb.

These are the parts of the chorus and echo networks (:mod:`models.pedals.swept_delay`, :mod:`models.pedals.echo`)
that gradient descent flows through. Delays are in samples:

- :func:`read_delayed` reads ``x[n - d(n)]`` with linear interpolation between the two neighbouring samples, so
  the output is differentiable in ``d(n)`` (the slope between them) and a swept delay is as smooth as its sweep;
- :func:`rounded` rounds a delay to whole samples on the way forward and lets the gradient through as if it had
  not (a straight-through estimator): a delay line without interpolation, which is what an integer delay is;
- :func:`comb_response` is the impulse response of ``w[n] = x[n - D] + g w[n - D]`` (echoes at ``k D`` with
  amplitudes ``g^(k-1)``), each echo placed by linear interpolation at ``k D`` so that it is differentiable in
  ``D`` and ``g``; :func:`fft_convolve` applies it to a signal in the frequency domain (one pass, however long).
"""

from __future__ import annotations

import torch


def read_delayed(x: torch.Tensor, delay: torch.Tensor, first_output: int) -> torch.Tensor:
    """(B, 1, T) read at ``first_output + j - delay[:, j]`` for j in 0..N-1 (``delay`` (B, N) in samples, at least
    1 and at most ``first_output``), linearly interpolated: (B, 1, N)."""
    batch, _, length = x.shape
    steps = delay.shape[-1]
    # n - d = (n - floor(d) - 1) + (1 - frac(d)): the fraction from the delay alone, exact however long the signal
    whole = torch.floor(delay).detach()
    fraction = 1 - (delay - whole)
    n = torch.arange(first_output, first_output + steps, device=x.device)
    low = (n - whole.long() - 1).clamp(0, length - 1)
    high = (low + 1).clamp(max=length - 1)
    flat = x.reshape(batch, length)
    return ((1 - fraction) * flat.gather(1, low) + fraction * flat.gather(1, high)).reshape(batch, 1, steps)


def rounded(delay: torch.Tensor) -> torch.Tensor:
    """``delay`` rounded to whole samples, with the gradient of the unrounded delay (straight through)."""
    return delay + (torch.round(delay) - delay).detach()


def comb_response(delay: torch.Tensor, feedback: torch.Tensor, length: int) -> torch.Tensor:
    """(B, length): the impulse response of ``w[n] = x[n - D] + g w[n - D]`` for each row's delay ``D`` (B,) in
    samples (at least 1) and feedback ``g`` (B,): ``sum_k g^(k-1) delta(n - k D)`` over the echoes that land
    before ``length``, each placed at ``k D`` by linear interpolation."""
    batch = delay.shape[0]
    echoes = max(1, int((length - 2) // max(1.0, float(delay.detach().min()))))
    k = torch.arange(1, echoes + 1, device=delay.device, dtype=delay.dtype)
    position = delay[:, None] * k[None, :]
    amplitude = torch.cumprod(
        torch.cat((torch.ones_like(feedback[:, None]), feedback[:, None].expand(-1, echoes - 1)), 1), 1
    )
    inside = (position <= length - 2).to(delay.dtype)
    index = torch.floor(position).detach()
    fraction = position - index
    low = index.long().clamp(0, length - 1)
    response = torch.zeros(batch, length + 1, device=delay.device, dtype=delay.dtype)
    response = response.scatter_add(1, low, amplitude * (1 - fraction) * inside)
    response = response.scatter_add(1, low + 1, amplitude * fraction * inside)
    return response[:, :length]


def fft_convolve(x: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
    """(B, 1, T) convolved with each row's causal ``response`` (B, L), the first T samples: (B, 1, T)."""
    length = x.shape[-1]
    size = 1 << (length + response.shape[-1] - 2).bit_length()
    spectrum = torch.fft.rfft(x[:, 0], size) * torch.fft.rfft(response, size)
    return torch.fft.irfft(spectrum, size)[:, None, :length]
