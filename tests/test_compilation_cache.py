"""The persistent compilation cache setting (axon.config, AXON_COMPILATION_CACHE): a chosen
folder receives compiled programs, the default folder is used when nothing is set, "off"
and compilation_cache(None) write nothing, unsafe folders are refused, and a cache the user
set up for JAX is left alone. Each case runs in a fresh process (the setting is read at
import and JAX's cache is process-wide)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import axon

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, os, sys
import jax, jax.numpy as jnp
import axon

def compile_something(scale):
    jax.jit(lambda x: jnp.tanh(x * scale) @ x.T)(jnp.ones((4, 4))).block_until_ready()

def entries(folder):
    return sorted(n for n in os.listdir(folder) if n.endswith("-cache")) if folder and os.path.isdir(folder) else []

out = {"dir": None if axon.config.compilation_cache_dir() is None else str(axon.config.compilation_cache_dir()),
       "jax_dir": jax.config.jax_compilation_cache_dir}
compile_something(2.0)
out["after_first"] = entries(out["jax_dir"])
if sys.argv[1] == "turn-off":
    folder = out["jax_dir"]
    axon.config.compilation_cache(None)
    compile_something(3.0)
    out["after_off"] = entries(folder)
print(json.dumps(out))
"""


def run(tmp_path, env_updates, mode="plain"):
    env = {k: v for k, v in os.environ.items() if k not in ("AXON_COMPILATION_CACHE", "JAX_COMPILATION_CACHE_DIR")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(ROOT / "src"), JAX_PLATFORMS="cpu", **env_updates)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, mode], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_a_chosen_folder_gets_entries_and_turning_off_stops_writes(tmp_path):
    folder = tmp_path / "chosen"
    out, _ = run(tmp_path, {"AXON_COMPILATION_CACHE": str(folder)}, "turn-off")
    assert out["dir"] == str(folder) and out["jax_dir"] == str(folder)
    assert out["after_first"], "no compiled program was written to the cache folder"
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert out["after_off"] == out["after_first"]  # compiled again with the cache off: nothing new
    assert not (tmp_path / "xdg").exists()


def test_the_default_folder_is_used_when_nothing_is_set(tmp_path):
    out, _ = run(tmp_path, {})
    default = tmp_path / "xdg" / "axon" / "jax"
    assert out["dir"] == str(default)
    assert out["after_first"] and sorted(p.name for p in default.glob("*-cache")) == out["after_first"]


def test_off_writes_nothing(tmp_path):
    out, _ = run(tmp_path, {"AXON_COMPILATION_CACHE": "off"})
    assert out["dir"] is None and out["jax_dir"] is None and out["after_first"] == []
    assert not (tmp_path / "xdg").exists()


# the cases below turn nothing on, so they run in this process: the environment is read by
# the same function ``import axon`` calls


@pytest.mark.parametrize("value", ["off", "0", "false", "No", " none "])
def test_off_spellings(monkeypatch, tmp_path, value):
    monkeypatch.setenv("AXON_COMPILATION_CACHE", value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert axon.config._configure_from_environment() is None
    assert list(tmp_path.iterdir()) == []


def test_a_cache_the_user_set_up_for_jax_is_left_alone(monkeypatch, tmp_path):
    monkeypatch.delenv("AXON_COMPILATION_CACHE", raising=False)
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "theirs"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert axon.config._configure_from_environment() is None
    assert not (tmp_path / "xdg").exists()


def test_a_folder_others_can_write_is_refused(monkeypatch, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(PermissionError, match="other users can write to it"):
        axon.config.compilation_cache(shared)
    monkeypatch.setenv("AXON_COMPILATION_CACHE", str(shared))
    with pytest.warns(UserWarning, match="stays off.*other users can write"):
        assert axon.config._configure_from_environment() is None
    assert list(shared.iterdir()) == []


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="max_size"):
        axon.config.compilation_cache("default", max_size=-5)
    with pytest.raises(ValueError, match="min_compile_time"):
        axon.config.compilation_cache("default", min_compile_time=-1.0)
