"""Loading reads a safetensors checkpoint one tensor at a time: the peak memory while
loading stays under 1.5x the checkpoint's size (measured in a fresh process from
/proc/self/status; benchmarks/pretrained_load_memory.py runs the 1 GB version)."""

from __future__ import annotations

import sys

import pytest
from benchmarks.pretrained_load_memory import measure


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_peak_memory_while_loading_a_200mb_checkpoint_stays_under_1_5x_its_size(tmp_path):
    result = measure(200, tmp_path)
    assert result["ok"]  # the child loaded the right values
    assert result["file_bytes"] > 190 * 2**20
    assert result["ratio"] < 1.5, result
