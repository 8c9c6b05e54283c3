"""The local launcher: two real JAX processes joined by jax.distributed (gloo on CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import axon.distributed.launch as launch
from tests.distributed.multidevice import SRC


def _launch(tmp_path, body: str, nprocs: int = 2, timeout: float = 180, extra=()):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), JAX_PLATFORMS="cpu")
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "axon.distributed.launch", "--nprocs", str(nprocs), *extra, str(script)],
        env=env, capture_output=True, text=True, timeout=timeout,
    )
    return proc, time.monotonic() - start


def test_two_processes_see_one_global_array(tmp_path):
    proc, _ = _launch(tmp_path, """
        import axon.distributed as dist
        dist.initialize()
        import jax, jax.numpy as jnp, numpy as np
        x = dist.DataParallel().shard_batch(np.arange(16, dtype=np.float32).reshape(8, 2))
        total = float(jax.jit(jnp.sum)(x))
        print("rank", dist.process_index(), "of", dist.process_count(), "devices", jax.device_count(),
              "main", dist.is_main_process(), "sum", total)
    """, extra=("--devices-per-process", "2"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = sorted(line for line in proc.stdout.splitlines() if " sum " in line)
    # the global batch 0..15 sums to 120 on both ranks; 2 processes x 2 devices = 4 devices
    assert lines == ["[rank 0] rank 0 of 2 devices 4 main True sum 120.0",
                     "[rank 1] rank 1 of 2 devices 4 main False sum 120.0"]


def test_a_dying_rank_stops_the_run_and_is_named(tmp_path):
    proc, elapsed = _launch(tmp_path, """
        import os, signal, time
        rank = int(os.environ["AXON_PROCESS_ID"])
        if rank == 1:
            time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(120)   # rank 0 would wait for its peer forever
    """, timeout=60)
    assert proc.returncode != 0
    assert "rank 1 was killed by SIGKILL" in proc.stderr
    assert elapsed < 30


def test_a_failing_rank_exit_code_is_returned(tmp_path):
    proc, _ = _launch(tmp_path, """
        import os, sys
        sys.exit(3 if os.environ["AXON_PROCESS_ID"] == "0" else 0)
    """, timeout=60)
    assert proc.returncode == 3
    assert "rank 0 exited with code 3" in proc.stderr


def test_parse_args_rejects_bad_counts(capsys):
    import pytest

    with pytest.raises(SystemExit):
        launch.parse_args(["--nprocs", "0", "x.py"])
    assert "--nprocs must be >= 1" in capsys.readouterr().err


def test_initialize_twice_says_so(tmp_path):
    proc, _ = _launch(tmp_path, """
        import axon.distributed as dist
        dist.initialize()
        try:
            dist.initialize()
        except dist.DistributedError as e:
            print("second:", e)
    """, nprocs=1, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "already joined a distributed run" in proc.stdout
