"""Processes: start JAX's multi-process runtime and ask which process this is.

:func:`initialize` wraps :func:`jax.distributed.initialize`. With no arguments it reads the
environment that ``python -m axon.distributed.launch`` sets (``AXON_COORDINATOR_ADDRESS``,
``AXON_NUM_PROCESSES``, ``AXON_PROCESS_ID``, ``AXON_LOCAL_DEVICE_IDS``) and otherwise lets JAX
detect the cluster itself (SLURM, Open MPI, Kubernetes, Cloud TPU). Collectives between
processes run on JAX's own engine (gloo on CPU, NCCL on GPU); axon adds no transport.

>>> process_index(), process_count(), is_main_process()
(0, 1, True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import jax

__all__ = [
    "ENV_COORDINATOR",
    "ENV_LOCAL_DEVICE_IDS",
    "ENV_NUM_PROCESSES",
    "ENV_PROCESS_ID",
    "DistributedError",
    "initialize",
    "is_main_process",
    "process_count",
    "process_index",
]

ENV_COORDINATOR = "AXON_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "AXON_NUM_PROCESSES"
ENV_PROCESS_ID = "AXON_PROCESS_ID"
ENV_LOCAL_DEVICE_IDS = "AXON_LOCAL_DEVICE_IDS"


class DistributedError(RuntimeError):
    """A multi-device or multi-process setup that cannot work (the message says what to do)."""


def _int_env(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise DistributedError(f"initialize: environment variable {name}={raw!r} is not an integer") from None


def _settings_from_env(env: Mapping[str, str]) -> dict:
    ids = env.get(ENV_LOCAL_DEVICE_IDS)
    local_ids = None
    if ids:
        try:
            local_ids = [int(i) for i in ids.split(",")]
        except ValueError:
            raise DistributedError(
                f"initialize: {ENV_LOCAL_DEVICE_IDS}={ids!r} must be a comma-separated list of integers"
            ) from None
    return {
        "coordinator_address": env.get(ENV_COORDINATOR) or None,
        "num_processes": _int_env(env, ENV_NUM_PROCESSES),
        "process_id": _int_env(env, ENV_PROCESS_ID),
        "local_device_ids": local_ids,
    }


def _backends_started() -> bool:
    """Whether JAX has created its backends already (after which initialize cannot run)."""
    try:
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - layout of a future jax
        return False
    return bool(getattr(xla_bridge, "_backends", {}))


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: int | Sequence[int] | None = None,
) -> None:
    """Join this process to a multi-process JAX run (``jax.distributed.initialize``).

    Call it once, first thing in the program, before anything touches a JAX array. Every
    argument left ``None`` is read from the environment the axon launcher sets
    (``AXON_COORDINATOR_ADDRESS``, ``AXON_NUM_PROCESSES``, ``AXON_PROCESS_ID``,
    ``AXON_LOCAL_DEVICE_IDS``); where that is unset too, JAX detects the cluster (SLURM, Open
    MPI, Kubernetes, Cloud TPU).

    Args:
        coordinator_address: ``"host:port"`` of process 0's coordinator service.
        num_processes: the number of processes in the run.
        process_id: this process's index, ``0 <= process_id < num_processes``.
        local_device_ids: the local devices this process uses (default: all).

    Raises:
        DistributedError: when called twice, after JAX has already started its backends
            (computed something), or with inconsistent settings.

    Example (not run here: it would turn this process into one of a group)::

        import axon.distributed as dist
        dist.initialize()            # under `python -m axon.distributed.launch --nprocs 2 train.py`
        print(dist.process_index(), "of", dist.process_count())
    """
    if jax.distributed.is_initialized():
        raise DistributedError(
            "initialize: this process already joined a distributed run; call axon.distributed.initialize() once"
        )
    if _backends_started():
        raise DistributedError(
            "initialize: JAX has already started (an array was created or a computation ran) in this process; "
            "call axon.distributed.initialize() first thing in the program, before any JAX work"
        )
    env = _settings_from_env(os.environ)
    settings = {
        "coordinator_address": coordinator_address if coordinator_address is not None else env["coordinator_address"],
        "num_processes": num_processes if num_processes is not None else env["num_processes"],
        "process_id": process_id if process_id is not None else env["process_id"],
        "local_device_ids": local_device_ids if local_device_ids is not None else env["local_device_ids"],
    }
    n, pid = settings["num_processes"], settings["process_id"]
    if n is not None and (not isinstance(n, int) or n < 1):
        raise DistributedError(f"initialize: expected num_processes to be a positive int, got {n!r}")
    if n is not None and pid is not None and not 0 <= pid < n:
        raise DistributedError(f"initialize: expected 0 <= process_id < num_processes={n}, got process_id={pid}")
    jax.distributed.initialize(**{k: v for k, v in settings.items() if v is not None})


def process_index() -> int:
    """This process's index in the run (0 in a single-process run).

    >>> process_index()
    0
    """
    return jax.process_index()


def process_count() -> int:
    """The number of processes in the run (1 in a single-process run).

    >>> process_count()
    1
    """
    return jax.process_count()


def is_main_process() -> bool:
    """Whether this is process 0, the one that writes files and logs.

    >>> is_main_process()
    True
    """
    return jax.process_index() == 0
