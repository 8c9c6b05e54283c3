"""A local launcher: ``python -m axon.distributed.launch --nprocs N script.py [args]``.

Starts ``N`` copies of ``script.py`` on this machine, one per process rank, with a free
coordinator port and the environment :func:`axon.distributed.initialize` reads
(``AXON_COORDINATOR_ADDRESS``, ``AXON_NUM_PROCESSES``, ``AXON_PROCESS_ID``). Each line a rank
prints is streamed with a ``[rank i]`` prefix. When one rank fails (a non-zero exit, or a
signal: a JAX process whose peer vanished aborts with SIGABRT rather than raising) the
launcher stops the others at once and exits non-zero, naming the rank.

``--devices-per-process K`` gives each process K virtual CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=K``); on GPUs, give each process its
GPUs with ``CUDA_VISIBLE_DEVICES`` in your own environment or use a cluster launcher (SLURM,
``mpirun``, Kubernetes), which ``initialize()`` detects by itself.

>>> parse_args(["--nprocs", "2", "train.py", "--epochs", "3"]).script_args
['--epochs', '3']
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from axon.distributed.runtime import ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID

__all__ = ["free_port", "launch", "main", "parse_args"]


def free_port() -> int:
    """A TCP port on the loopback interface that is free right now.

    >>> 0 < free_port() < 65536
    True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The launcher's command line: ``--nprocs N [--devices-per-process K] script [args...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m axon.distributed.launch",
        description="Run a script as N JAX processes on this machine (axon.distributed.initialize() joins them).",
    )
    parser.add_argument("--nprocs", type=int, required=True, help="number of processes to start")
    parser.add_argument("--devices-per-process", type=int, default=None,
                        help="virtual CPU devices per process (sets XLA_FLAGS)")
    parser.add_argument("--port", type=int, default=None, help="coordinator port (default: a free one)")
    parser.add_argument("--grace", type=float, default=5.0,
                        help="seconds the other ranks get to exit after one failed, before SIGKILL")
    parser.add_argument("script", help="the Python script to run")
    parser.add_argument("script_args", nargs=argparse.REMAINDER, help="arguments for the script")
    args = parser.parse_args(list(argv))
    if args.nprocs < 1:
        parser.error(f"--nprocs must be >= 1, got {args.nprocs}")
    if args.devices_per_process is not None and args.devices_per_process < 1:
        parser.error(f"--devices-per-process must be >= 1, got {args.devices_per_process}")
    return args


def _stream(rank: int, pipe, out, lock: threading.Lock) -> None:
    for line in iter(pipe.readline, b""):
        with lock:
            out.write(f"[rank {rank}] {line.decode(errors='replace')}")
            if not line.endswith(b"\n"):
                out.write("\n")
            out.flush()
    pipe.close()


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def launch(
    script: str,
    script_args: Sequence[str] = (),
    *,
    nprocs: int,
    devices_per_process: int | None = None,
    port: int | None = None,
    grace: float = 5.0,
    out=None,
) -> int:
    """Run ``script`` as ``nprocs`` processes and wait for them.

    Args:
        script: path of the Python script each rank runs.
        script_args: arguments passed to every rank.
        nprocs: the number of processes.
        devices_per_process: virtual CPU devices per process (``XLA_FLAGS``), or ``None``.
        port: the coordinator's port on 127.0.0.1 (default: a free one).
        grace: seconds the other ranks get after one failed, before they are killed.
        out: where prefixed output goes (default ``sys.stdout``).

    Returns:
        0 when every rank exited 0; otherwise the failing rank's exit code (128 + signal
        number for a signal).
    """
    out = out or sys.stdout
    port = port or free_port()
    lock = threading.Lock()
    procs: list[subprocess.Popen] = []
    threads = []
    for rank in range(nprocs):
        env = dict(os.environ)
        env[ENV_COORDINATOR] = f"127.0.0.1:{port}"
        env[ENV_NUM_PROCESSES] = str(nprocs)
        env[ENV_PROCESS_ID] = str(rank)
        env["PYTHONUNBUFFERED"] = "1"
        if devices_per_process is not None:
            flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith("--xla_force_host_platform_device_count")]
            env["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={devices_per_process}"])
        proc = subprocess.Popen([sys.executable, script, *script_args], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(proc)
        t = threading.Thread(target=_stream, args=(rank, proc.stdout, out, lock), daemon=True)
        t.start()
        threads.append(t)
    failed: tuple[int, int] | None = None
    try:
        while True:
            codes = [p.poll() for p in procs]
            bad = [(r, c) for r, c in enumerate(codes) if c not in (None, 0)]
            if bad:
                failed = bad[0]
                break
            if all(c == 0 for c in codes):
                break
            time.sleep(0.05)
    except KeyboardInterrupt:
        failed = (-1, -signal.SIGINT)
    if failed is not None:
        _stop(procs, grace)
    for t in threads:
        t.join(timeout=1.0)
    if failed is None:
        return 0
    rank, code = failed
    who = "interrupted" if rank < 0 else f"rank {rank} {_describe_exit(code)}"
    with lock:
        print(f"axon.distributed.launch: {who}; stopped the other ranks", file=sys.stderr, flush=True)
    return 128 - code if code < 0 else code


def _stop(procs: list[subprocess.Popen], grace: float) -> None:
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """The command-line entry point; returns the exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return launch(args.script, args.script_args, nprocs=args.nprocs,
                  devices_per_process=args.devices_per_process, port=args.port, grace=args.grace)


if __name__ == "__main__":
    sys.exit(main())
