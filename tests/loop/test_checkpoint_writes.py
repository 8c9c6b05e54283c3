"""Checkpoint writes: a writer killed mid-write leaves a temporary file, and the next write
into that folder removes it (and nothing else)."""

import os
import signal
import subprocess
import sys
import time

import jax.numpy as jnp

import axon
from axon.loop import LoopState
from axon.loop.checkpoint import write_atomic
from axon.serialization import container

_KILLED_WRITER = r"""
import os, sys, time
import numpy as np
import jax.numpy as jnp
import axon
from axon.loop import LoopState
from axon.loop.checkpoint import serialize_state, write_atomic

def stall(fd):  # the data is written; the writer is killed before the rename
    print("written", flush=True)
    time.sleep(600)

os.fsync = stall
write_atomic(sys.argv[1], serialize_state(LoopState(step_state={"w": jnp.asarray(np.ones((512, 1024), np.float32))})))
"""


def _killed_write(path):
    child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, path], stdout=subprocess.PIPE, text=True, env=_child_env())
    try:
        assert child.stdout.readline().strip() == "written"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()  # reaped: its pid no longer runs


def test_a_write_after_a_killed_write_removes_the_stale_temporary_file(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    _killed_write(str(folder / "checkpoint_0_1.ckpt"))
    left = [n for n in os.listdir(folder) if n.endswith(".tmp")]
    assert len(left) == 1 and left[0].startswith(".axon-")
    assert os.path.getsize(folder / left[0]) > 2 * 1024 * 1024  # the full-size state
    assert not (folder / "checkpoint_0_1.ckpt").exists()

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = container._host()
        live = f".axon-{host}-{sleeper.pid}-abcd1234.tmp"  # a writer that still runs
        other_host = ".axon-elsewhere-12-abcd1234.tmp"  # another host's writer: kept until old
        old_style = ".axon-k2j4h5g6.tmp"  # an earlier axon's name: removed once old
        old_style_fresh = ".axon-zzzzzzzz.tmp"
        unrelated = ["notes.tmp", ".axon-config", "model.axon", ".axon-x.tmp.bak", "checkpoint_0_0.ckpt"]
        for name in [live, other_host, old_style, old_style_fresh, *unrelated]:
            (folder / name).write_bytes(b"x")
        long_ago = time.time() - 2 * container.STALE_TEMP_SECONDS
        os.utime(folder / old_style, (long_ago, long_ago))
        for name in unrelated:
            os.utime(folder / name, (long_ago, long_ago))

        state = LoopState(step_state={"w": jnp.ones(3)}, epoch=1)
        write_atomic(str(folder / "checkpoint_1_1.ckpt"), axon.loop.serialize_state(state))
        assert sorted(os.listdir(folder)) == sorted(
            ["checkpoint_1_1.ckpt", live, other_host, old_style_fresh, *unrelated]
        )
        # the same cleaning runs for every writer of the package (models, parameters)
        os.utime(folder / other_host, (long_ago, long_ago))
        axon.save_state(folder / "w.safetensors", {"d": {"b": jnp.zeros(2)}})
        assert other_host not in os.listdir(folder) and live in os.listdir(folder)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert axon.loop.load_checkpoint(str(folder / "checkpoint_1_1.ckpt")).epoch == 1


def test_writes_in_a_clean_folder_leave_only_their_file(tmp_path):
    for i in range(3):
        axon.save_state(tmp_path / "w.safetensors", {"d": {"b": jnp.full(2, float(i))}})
    assert os.listdir(tmp_path) == ["w.safetensors"]


def _child_env():
    """The environment of a child Python that imports this axon (wherever it is imported from)."""
    src = os.path.dirname(os.path.dirname(axon.__file__))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
