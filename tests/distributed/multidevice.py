"""Run a snippet of Python on N forced CPU devices in a fresh interpreter.

JAX fixes its device count when its backend starts, so tests that need 8 devices run their
code in a subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` instead of
changing the flags of the whole test session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")


def run_on_devices(code: str, n: int = 8, timeout: float = 240.0) -> dict:
    """Run ``code`` (which must assign a JSON-able ``result``) on ``n`` CPU devices; return ``result``."""
    script = textwrap.dedent(code) + "\nimport json as _json\nprint('RESULT=' + _json.dumps(result))\n"
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n}"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT="):
            return json.loads(line[len("RESULT="):])
    raise AssertionError(f"no result printed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
