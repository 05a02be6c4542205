"""The history a block renderer keeps in front of each block (models.stream_history)."""

from __future__ import annotations

import pytest
import torch

from models.stream_history import SampleHistory


def test_blocks_joined_with_their_history_are_windows_of_the_whole_signal() -> None:
    signal = torch.arange(1.0, 41.0).reshape(1, 2, 20)  # two channels
    history = SampleHistory(5)
    padded = torch.cat((torch.zeros(1, 2, 5), signal), dim=-1)  # silence before the first block
    start = 0
    for length in (3, 1, 7, 2, 7):  # blocks shorter and longer than the history
        joined = history.join(signal[..., start : start + length])
        assert torch.equal(joined, padded[..., start : start + 5 + length])
        start += length


def test_no_history_passes_blocks_through_and_a_negative_one_is_refused() -> None:
    history = SampleHistory(0)
    block = torch.randn(3, 1, 8)
    assert torch.equal(history.join(block), block) and torch.equal(history.join(block * 2), block * 2)
    with pytest.raises(ValueError, match="cannot hold"):
        SampleHistory(-1)
