"""Fuzzing every reader of untrusted files: model files (``axon.deserialize``/``axon.load``),
parameter files (``axon.serialization.deserialize_state``/``axon.load_state``) and loop
checkpoints (``axon.loop.deserialize_state``), with random bytes, bit flips, byte edits,
truncations, splices, header edits that put wrong types anywhere, and huge, negative or
empty shapes and offsets. Every case must load or raise ``SerializationError`` (the one
documented error of a bad file) within 2 s, and the whole run must not grow the process's
peak memory: no reader allocates more than the file can hold.

The cases come from a seeded numpy generator (the same cases on every run); set
``AXON_FUZZ_CASES`` (cases per reader) and ``AXON_FUZZ_SEED`` for a longer or another run.
"""

import contextlib
import faulthandler
import json
import os
import resource
import struct
import sys
import time

import jax.numpy as jnp
import numpy as np
import optax

import axon
from axon.loop import LoopState
from axon.serialization import SerializationError

CASES_PER_READER = int(os.environ.get("AXON_FUZZ_CASES", "1000"))
FILE_EVERY = 10  # every 10th case goes through the file readers (axon.load, load_state, load_checkpoint)
CASE_LIMIT_S = 2.0
WATCHDOG_S = 20.0  # a case stuck in C code (where no Python check runs) ends the process
RSS_GROWTH_LIMIT_MB = 64
_LOOP_PREFIX = struct.Struct("<8sIQ")


def _seeds():
    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 2).pipe(axon.batch_norm)
    state = axon.init(model, axon.template((1, 2)))
    model_file = axon.serialize(model, state)
    params_file = axon.serialization.serialize_state(state)
    opt_state = optax.adam(1e-2).init(state.data)
    loop_state = LoopState(
        step_state={"model_state": state, "optimizer_state": opt_state, "loss": jnp.float32(0.5), "key": jnp.arange(2, dtype=jnp.uint32)},
        epoch=2, max_epoch=3, iteration=1, metrics={"loss": jnp.float32(0.25)},
        history={0: {"loss": 1.0}, 1: {"loss": 0.5, "validation_loss": 0.75}},
        handler_metadata={"early_stop": {"best": 0.5, "since_last_improvement": 1}, "checkpoint": {"last": "c.ckpt"}},
        times={0: 0.1, 1: 0.2},
    )
    checkpoint_file = axon.loop.serialize_state(loop_state)
    return {"model": model_file, "params": params_file, "checkpoint": checkpoint_file}


SEEDS = _seeds()
READERS = {
    "model": axon.deserialize,
    "params": axon.serialization.deserialize_state,
    "checkpoint": axon.loop.deserialize_state,
}
FILE_READERS = {"model": axon.load, "params": axon.load_state, "checkpoint": axon.loop.load_checkpoint}
WRONG_VALUES = [
    None, True, False, 0, -1, 1, 7, 2**31, 2**63, -(2**63), 2**64 + 1, 1.5, -0.0, float("nan"), float("inf"), "", "x",
    "F32", "float32", "object", "$tensor", [], [0], [-1], [2**62, 2**62], [0, 2**60], [1.5], ["a"], [[]], {}, {"a": 1},
    {"$tuple": []}, {"leaf": 0}, {"dict": "x"}, [0] * 40,
]
HUGE_SHAPES = [[0, 2**62], [2**40], [-1], [0] * 33, [1] * 33, [2**31, 2**31], [0, 2**31], [3, -3], [1.0], [True], "3", None]
HUGE_OFFSETS = [[0, 2**62], [-8, 0], [4, 0], [0, -1], [2**64, 2**64], [0], [0, 1, 2], "0", None, [1.5, 2.0]]


# -- the parts of each file -------------------------------------------------------------------


def _split_safetensors(data):
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _join_safetensors(header, body):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def _split_loop(data):
    magic, version, n = _LOOP_PREFIX.unpack_from(data)
    return (magic, version), json.loads(data[_LOOP_PREFIX.size : _LOOP_PREFIX.size + n]), data[_LOOP_PREFIX.size + n :]


def _join_loop(prefix, header, body):
    text = json.dumps(header).encode()
    return _LOOP_PREFIX.pack(*prefix, len(text)) + text + body


def _json_paths(value, prefix=()):
    """Every path into a JSON value (dict keys and list positions), the root included."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _json_paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _json_paths(v, (*prefix, i))


def _replace(value, path, new):
    if not path:
        return new
    node = value
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = new
    return value


def _edit_json(rng, value):
    """``value`` with one entry replaced by a value of a (likely) wrong type, or deleted, or
    one entry added."""
    paths = list(_json_paths(value))
    path = paths[rng.integers(len(paths))]
    action = rng.integers(4)
    if action == 0 and path:
        parent = value
        for k in path[:-1]:
            parent = parent[k]
        del parent[path[-1]]
        return value
    if action == 1:
        node = value
        for k in path:
            node = node[k]
        if isinstance(node, dict):
            node[str(rng.choice(["extra", "__metadata__", "$tensor", "leaf", "0"]))] = WRONG_VALUES[rng.integers(len(WRONG_VALUES))]
            return value
        if isinstance(node, list):
            node.append(WRONG_VALUES[rng.integers(len(WRONG_VALUES))])
            return value
    return _replace(value, path, json.loads(json.dumps(WRONG_VALUES[rng.integers(len(WRONG_VALUES))])))


# -- mutations --------------------------------------------------------------------------------


def _random_bytes(rng, seed):
    blob = rng.integers(0, 256, rng.integers(0, 160), dtype=np.uint8).tobytes()
    if rng.random() < 0.5:  # a plausible start: a valid prefix, then garbage
        blob = seed[: rng.integers(0, 24)] + blob
    return blob


def _flip_bits(rng, seed):
    blob = bytearray(seed)
    for _ in range(rng.integers(1, 9)):
        i = rng.integers(len(blob))
        blob[i] ^= 1 << rng.integers(8)
    return bytes(blob)


def _overwrite_bytes(rng, seed):
    blob = bytearray(seed)
    i = rng.integers(len(blob))
    chunk = rng.integers(0, 256, rng.integers(1, 9), dtype=np.uint8).tobytes()
    blob[i : i + len(chunk)] = chunk
    return bytes(blob)


def _truncate(rng, seed):
    return seed[: rng.integers(0, len(seed))]


def _splice(rng, seed):
    i = rng.integers(0, len(seed) + 1)
    if rng.random() < 0.5:
        return seed[:i] + rng.integers(0, 256, rng.integers(1, 17), dtype=np.uint8).tobytes() + seed[i:]
    return seed[:i] + seed[i + rng.integers(1, 17) :]


def _length_field(rng, seed):
    """A huge, negative-as-unsigned or off-by-some header length."""
    offset = 12 if seed[:8] == b"AXONLOOP" else 0
    (n,) = struct.unpack_from("<Q", seed, offset)
    new = int(rng.choice([0, 1, n - 1, n + 1, n + 8, 2**63, 2**64 - 1, 2**32, len(seed)])) % 2**64
    return seed[:offset] + struct.pack("<Q", new) + seed[offset + 8 :]


def _tensor_table(seed):
    """The safetensors part of a file: ``(wrap, header, body)`` where ``wrap(bytes)`` puts a
    new safetensors part back into the file."""
    if seed[:8] == b"AXONLOOP":
        prefix, loop_header, st = _split_loop(seed)
        header, body = _split_safetensors(st)
        return (lambda new: _join_loop(prefix, loop_header, new)), header, body
    header, body = _split_safetensors(seed)
    return (lambda new: new), header, body


def _shapes_and_offsets(rng, seed):
    wrap, header, body = _tensor_table(seed)
    names = [k for k in header if k != "__metadata__"]
    name = names[rng.integers(len(names))]
    if rng.random() < 0.5:
        header[name]["shape"] = HUGE_SHAPES[rng.integers(len(HUGE_SHAPES))]
        if rng.random() < 0.5:
            header[name]["data_offsets"] = [0, 0]
    else:
        header[name]["data_offsets"] = HUGE_OFFSETS[rng.integers(len(HUGE_OFFSETS))]
    if rng.random() < 0.3:
        header[name]["dtype"] = str(rng.choice(["F32", "BOOL", "BF16", "I64", "F8_E4M3", "U8", "object", "C128"]))
    return wrap(_join_safetensors(header, body))


def _tensor_header_types(rng, seed):
    wrap, header, body = _tensor_table(seed)
    return wrap(_join_safetensors(_edit_json(rng, header), body))


def _document_types(rng, seed):
    """A wrong type anywhere in the axon document (model and parameter files) or the loop
    header (checkpoints)."""
    if seed[:8] == b"AXONLOOP":
        prefix, header, body = _split_loop(seed)
        return _join_loop(prefix, _edit_json(rng, header), body)
    header, body = _split_safetensors(seed)
    doc = json.loads(header["__metadata__"]["axon"])
    header["__metadata__"]["axon"] = json.dumps(_edit_json(rng, doc))
    return _join_safetensors(header, body)


MUTATIONS = [_random_bytes, _flip_bits, _overwrite_bytes, _truncate, _splice, _length_field, _shapes_and_offsets,
             _tensor_header_types, _document_types, _document_types]


# -- the run ----------------------------------------------------------------------------------


def _cases(rng):
    for i in range(CASES_PER_READER):
        for kind in ("model", "params", "checkpoint"):
            mutate = MUTATIONS[i % len(MUTATIONS)]
            blob = mutate(rng, SEEDS[kind])
            reader = kind if mutate is not _random_bytes else ("model", "params", "checkpoint")[rng.integers(3)]
            yield f"{i}:{kind}:{mutate.__name__}", reader, blob


def _peak_rss_mb():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def test_seed_files_load():
    for kind, data in SEEDS.items():
        READERS[kind](data)


def _read(reader, blob, index, folder):
    if index % FILE_EVERY:
        return READERS[reader](blob)
    path = os.path.join(folder, f"case.{reader}")
    with open(path, "wb") as f:
        f.write(blob)
    return FILE_READERS[reader](path)


def test_every_reader_survives_fuzzing(tmp_path):
    rng = np.random.default_rng(int(os.environ.get("AXON_FUZZ_SEED", "20261206")))
    cases = list(_cases(rng))
    assert len(cases) >= 2000
    for _, reader, blob in cases[:30]:  # warm up the code paths before measuring memory
        with contextlib.suppress(Exception):  # judged in the run below
            READERS[reader](blob)
    rss_before = _peak_rss_mb()
    failures, slowest, outcomes = [], (0.0, ""), {"loaded": 0, "rejected": 0}
    start = time.perf_counter()
    try:
        for index, (name, reader, blob) in enumerate(cases):
            faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
            t0 = time.perf_counter()
            try:
                _read(reader, blob, index, str(tmp_path))
                outcomes["loaded"] += 1
            except SerializationError:
                outcomes["rejected"] += 1
            except BaseException as e:  # any other exception is the failure being looked for
                if isinstance(e, KeyboardInterrupt):
                    raise
                failures.append(f"{name} ({reader}, {len(blob)} bytes): {type(e).__name__}: {e}"[:300])
            elapsed = time.perf_counter() - t0
            slowest = max(slowest, (elapsed, name))
    finally:
        faulthandler.cancel_dump_traceback_later()
    total = time.perf_counter() - start
    growth = _peak_rss_mb() - rss_before
    print(f"\n{len(cases)} cases in {total:.1f} s: {outcomes}; slowest {slowest[1]} {slowest[0] * 1000:.0f} ms; "
          f"peak RSS +{growth:.1f} MB")
    assert not failures, f"{len(failures)} cases raised something else than SerializationError:\n" + "\n".join(failures[:20])
    assert slowest[0] < CASE_LIMIT_S, f"case {slowest[1]} took {slowest[0]:.2f} s"
    assert growth < RSS_GROWTH_LIMIT_MB, f"peak memory grew by {growth:.0f} MB"
    assert outcomes["rejected"] > len(cases) // 2  # the mutations do reach the checks
