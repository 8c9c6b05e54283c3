"""Process-wide settings: JAX's persistent compilation cache.

Compiling a model's programs (initialization, the training step, evaluation) takes seconds
to minutes; JAX can keep compiled programs on disk and load them in the next process
instead. axon turns this on by default, in a private folder of the user's cache directory
(``$XDG_CACHE_HOME/axon/jax``, else ``~/.cache/axon/jax``), bounded in size (least
recently used entries are evicted), so that running the same script again starts
training without compiling again.

One setting controls it, the environment variable ``AXON_COMPILATION_CACHE`` (read when
axon is imported) or :func:`compilation_cache` (at any time):

* unset (or ``default``): the default folder, when it is safe to use: it is created
  private (mode ``0700``), must belong to the current user and be writable by no one
  else (a compiled program loaded from the cache runs as code, so anyone who can write
  the folder could run code in your process), and JAX's own cache must not have been set
  up by the user (``JAX_COMPILATION_CACHE_DIR`` or ``jax_compilation_cache_dir``: then
  axon leaves it as it is). Otherwise the cache stays off;
* ``off`` (or ``0``, ``false``, ``no``, ``none``): off, nothing written;
* a folder path: that folder (same checks; an unsafe folder is refused with a warning).

Caveats: the setting is JAX's, so it applies to every JAX program of the process, not
only axon's. On some Intel CPUs, jaxlib 0.9-0.10 rejects CPU cache entries when loading
them (jax-ml/jax#38445: it logs an error and compiles again; results are unaffected);
turn the cache off there.

>>> import axon
>>> previous = axon.config.compilation_cache_dir()
>>> axon.config.compilation_cache(None) is None
True
>>> axon.config.compilation_cache_dir() is None
True
>>> _ = axon.config.compilation_cache(previous)  # back as it was
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path
from typing import Literal

import jax

__all__ = [
    "CACHE_ENV",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_MIN_COMPILE_TIME",
    "compilation_cache",
    "compilation_cache_dir",
    "default_cache_dir",
]

CACHE_ENV = "AXON_COMPILATION_CACHE"
"""The environment variable read at ``import axon``: ``off``, ``default`` or a folder."""

DEFAULT_MAX_SIZE = 1 << 30
"""The cache's default size bound in bytes (1 GiB); older entries are evicted beyond it."""

DEFAULT_MIN_COMPILE_TIME = 0.0
"""Programs that compile faster than this (seconds) are not written to the cache."""

_OFF = ("off", "0", "false", "no", "none")
_state: dict[str, Path | None] = {"dir": None}


def default_cache_dir() -> Path:
    """The default cache folder: ``$XDG_CACHE_HOME/axon/jax``, else ``~/.cache/axon/jax``.

    Returns:
        The folder's path (it may not exist yet).

    >>> default_cache_dir().parts[-2:]
    ('axon', 'jax')
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "axon" / "jax"


def compilation_cache_dir() -> Path | None:
    """The folder of the persistent compilation cache axon turned on, or ``None`` when axon
    has not turned it on (off, or left to the user's own JAX settings).

    Returns:
        A ``Path`` or ``None``.

    >>> isinstance(compilation_cache_dir(), (type(None), Path))
    True
    """
    return _state["dir"]


def _unsafe_reason(path: Path) -> str | None:
    """Why ``path`` may not hold a compilation cache (``None`` if it may)."""
    info = path.stat()
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a folder"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return "it belongs to another user"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "other users can write to it"
    return None


def _prepare(path: Path) -> str | None:
    """Create ``path`` privately if missing; return why it cannot be used, or ``None``."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return _unsafe_reason(path)
    except OSError as e:
        return f"it cannot be created or read ({e.strerror or e})"


def _user_configured_jax_cache() -> bool:
    return bool(os.environ.get("JAX_COMPILATION_CACHE_DIR")) or (
        jax.config.jax_compilation_cache_dir is not None and _state["dir"] is None
    )


def _apply(path: Path | None, max_size: int, min_compile_time: float) -> None:
    from jax.experimental.compilation_cache import compilation_cache as jax_cache

    if path is None:
        jax.config.update("jax_compilation_cache_dir", None)
    else:
        jax.config.update("jax_compilation_cache_max_size", max_size)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_time)
        jax.config.update("jax_enable_compilation_cache", True)
        jax_cache.set_cache_dir(str(path))
    jax_cache.reset_cache()  # takes effect from the next compilation, even after earlier ones
    _state["dir"] = path


def compilation_cache(
    path: str | os.PathLike[str] | Literal["default"] | None = "default",
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    min_compile_time: float = DEFAULT_MIN_COMPILE_TIME,
) -> Path | None:
    """Turn JAX's persistent compilation cache on in ``path``, or off with ``None``.

    Args:
        path: a folder, ``"default"`` (:func:`default_cache_dir`) or ``None`` (off: nothing
            is read from or written to any cache folder afterwards).
        max_size: the most bytes the folder holds (least recently used entries are evicted);
            ``-1``: no bound.
        min_compile_time: programs compiling faster than this many seconds are not cached.

    Returns:
        The cache folder now in use, or ``None`` when off.

    Raises:
        PermissionError: the folder belongs to another user or others can write to it
            (a cached program runs as code in this process).
        OSError: the folder cannot be created.
        ImportError: a bounded cache needs the ``filelock`` package (an axon dependency).
        ValueError: a negative ``max_size`` other than ``-1`` or a negative ``min_compile_time``.

    >>> import tempfile, os
    >>> previous = compilation_cache_dir()
    >>> folder = os.path.join(tempfile.mkdtemp(), "jax")
    >>> compilation_cache(folder).name
    'jax'
    >>> oct(os.stat(folder).st_mode & 0o777)
    '0o700'
    >>> compilation_cache(None) is None
    True
    >>> _ = compilation_cache(previous)  # back as it was
    """
    if not isinstance(max_size, int) or (max_size < 0 and max_size != -1):
        raise ValueError(f"compilation_cache: expected max_size to be a non-negative int or -1, got {max_size!r}")
    if not isinstance(min_compile_time, (int, float)) or min_compile_time < 0:
        raise ValueError(f"compilation_cache: expected min_compile_time to be a non-negative number, got {min_compile_time!r}")
    if path is None:
        _apply(None, max_size, min_compile_time)
        return None
    folder = default_cache_dir() if path == "default" else Path(os.fspath(path)).expanduser()
    if max_size != -1:
        try:
            import filelock  # noqa: F401  (JAX's size-bounded cache locks its folder with it)
        except ImportError as e:
            raise ImportError(
                "compilation_cache: a size-bounded cache needs the filelock package; pip install filelock "
                "(or pass max_size=-1 for an unbounded cache)"
            ) from e
    reason = _prepare(folder)
    if reason is not None:
        if reason.startswith("it cannot"):
            raise OSError(f"compilation_cache: cannot use {str(folder)!r}: {reason}")
        raise PermissionError(
            f"compilation_cache: refusing {str(folder)!r} as a compilation cache: {reason} "
            "(cached programs run as code in this process)"
        )
    _apply(folder, max_size, min_compile_time)
    return folder


def _configure_from_environment() -> Path | None:
    """Apply ``AXON_COMPILATION_CACHE`` (called once by ``import axon``); never raises.

    Returns:
        The cache folder turned on, or ``None``.
    """
    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() in _OFF:
        return None
    explicit = value not in ("", "default")
    if not explicit and _user_configured_jax_cache():
        return None
    try:
        return compilation_cache(value if explicit else "default")
    except (OSError, ImportError) as e:  # PermissionError is an OSError
        if explicit:
            warnings.warn(f"{CACHE_ENV}={value!r}: the compilation cache stays off: {e}", stacklevel=2)
        return None
