"""The loop-checkpoint reader: every malformed file raises SerializationError naming the part
of the file (prefix, header field, tensor), checked at load, never later at resume."""

import json
import struct

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import axon
from axon.loop import LoopState
from axon.serialization import SerializationError

_PREFIX = struct.Struct("<8sIQ")


def _trained_checkpoint():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = x.sum(axis=1, keepdims=True)
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2).pipe(axon.dense, 1)
    trainer = axon.loop.trainer(model, "mean_squared_error", optax.adam(1e-2), log=0).early_stop("loss", patience=5)
    state = trainer.run([(x, y)], epochs=2, return_state=True)
    return axon.loop.serialize_state(state)


VALID = _trained_checkpoint()


def _split(data):
    magic, version, n = _PREFIX.unpack_from(data)
    return magic, version, data[_PREFIX.size : _PREFIX.size + n], data[_PREFIX.size + n :]


def _join(magic, version, text, body):
    return _PREFIX.pack(magic, version, len(text)) + text + body


def _edit(fn):
    magic, version, text, body = _split(VALID)
    header = json.loads(text)
    fn(header)
    return _join(magic, version, json.dumps(header).encode(), body)


def _set(path, value):
    def edit(header):
        node = header
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value

    return _edit(edit)


def _raw_header(text):
    magic, version, _, body = _split(VALID)
    return _join(magic, version, text, body)


BAD = {
    "not_utf8": (_raw_header(b'{"format": "\xff\xfe"}'), "checkpoint header: not valid UTF-8 JSON"),
    "bad_json": (_raw_header(b'{"format": '), "checkpoint header: not valid UTF-8 JSON"),
    "header_list": (_raw_header(b"[1, 2]"), "checkpoint header: expected a JSON object"),
    "history_list": (_set(["history"], [1, 2]), "field 'history': expected a dict of epoch -> dict of metric values, got list"),
    "history_epoch_key": (_set(["history"], {"one": {"loss": 1.0}}), "field 'history': expected epoch numbers as keys"),
    "history_value": (_set(["history", "0", "loss"], "low"), r"field 'history'\[0\]\['loss'\]: expected a metric value"),
    "times_value": (_set(["times", "0"], "1.5"), r"field 'times'\[0\]: expected a number"),
    "event_counts_list": (_set(["event_counts"], [1]), "field 'event_counts': expected a dict of event -> count"),
    "event_count_str": (_set(["event_counts", "epoch_completed"], "2"), r"field 'event_counts'\['epoch_completed'\]: expected an int"),
    "event_count_iteration": (_set(["event_counts", "iteration_completed"], 3), r"expected \{'total': int, 'epoch': int\}"),
    "event_unknown": (_set(["event_counts", "exploded"], 1), "field 'event_counts': expected the events"),
    "handler_metadata_list": (_set(["handler_metadata"], [1]), "field 'handler_metadata': expected a dict of handler name"),
    "early_stop_best": (_set(["handler_metadata", "early_stop", "best"], "low"), r"\['early_stop'\]\['best'\]: expected a metric value"),
    "early_stop_since": (_set(["handler_metadata", "early_stop", "since_last_improvement"], -1), r"since_last_improvement'\]: expected an int >= 0"),
    "early_stop_not_dict": (_set(["handler_metadata", "early_stop"], 3), r"\['early_stop'\]: expected a dict"),
    "epoch_str": (_set(["epoch"], "3"), "field 'epoch': expected an int >= 0, got str"),
    "epoch_bool": (_set(["epoch"], True), "field 'epoch': expected an int >= 0, got bool"),
    "iteration_negative": (_set(["iteration"], -4), "field 'iteration': expected an int >= 0"),
    "status": (_set(["status"], "running"), "field 'status': expected one of"),
    "format": (_set(["format"], "pickle"), "field 'format'"),
    "version": (_set(["version"], 7), "field 'version'"),
    "missing_field": (_edit(lambda h: h.pop("history")), r"missing field\(s\) \['history'\]"),
    "unknown_field": (_set(["exec"], "rm -rf"), r"unknown field\(s\) \['exec'\]"),
    "metrics_not_list": (_set(["metrics"], "loss"), "field 'metrics': expected a list of metric names"),
    "model_state_paths": (_set(["model_state", "frozen"], [[1]]), "field 'model_state'"),
    "step_keys_not_strings": (_set(["step_state", "keys", 0], 7), "field 'step_state'"),
    "step_dtype_object": (_set(["step_state", "dtypes", 0], "object"), "checkpoint tensor 's0'.*unknown dtype 'object'"),
    "step_dtype_lie": (_set(["step_state", "dtypes", 0], "uint8"), "checkpoint tensor 's0'.*the header says uint8"),
    "missing_tensor": (_edit(lambda h: h["step_state"]["keys"].append("['extra']") or h["step_state"]["dtypes"].append("float32")),
                       r"checkpoint tensors: the header names tensors \['s\d+'\]"),
    "extra_tensor": (_edit(lambda h: (h["step_state"]["keys"].pop(), h["step_state"]["dtypes"].pop())),
                     "checkpoint tensors: the file has tensors"),
    "bad_magic": (b"AXONLOOX" + VALID[8:], "bad magic bytes"),
    "newer_version": (VALID[:8] + struct.pack("<I", 99) + VALID[12:], "unsupported format version 99"),
    "huge_header_length": (VALID[:12] + struct.pack("<Q", 2**63) + VALID[20:], "truncated or corrupted"),
    "truncated": (VALID[: len(VALID) - 7], "checkpoint tensors"),
    "too_short": (VALID[:10], "too short"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_checkpoints_raise_one_error_naming_the_part(name):
    data, message = BAD[name]
    with pytest.raises(SerializationError, match=message):
        axon.loop.deserialize_state(data)


def test_the_valid_checkpoint_loads_and_resumes():
    saved = axon.loop.deserialize_state(VALID)
    assert saved.epoch == 2 and set(saved.history) == {0, 1}
    assert saved.handler_metadata["early_stop"]["since_last_improvement"] == 0
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2).pipe(axon.dense, 1)
    trainer = axon.loop.trainer(model, "mean_squared_error", optax.adam(1e-2), log=0).early_stop("loss", patience=5)
    resumed = trainer.from_state(saved).run([(x, x.sum(axis=1, keepdims=True))], epochs=1, return_state=True)
    assert resumed.epoch == 3


def test_a_checkpoint_of_an_empty_tensor_with_enormous_dimensions_fails_fast():
    header = json.dumps({"s0": {"dtype": "F32", "shape": [0, 2**40], "data_offsets": [0, 0]}}).encode()
    body = struct.pack("<Q", len(header)) + header
    state = LoopState(step_state={"w": jnp.zeros((0, 3))})
    magic, version, text, _ = _split(axon.loop.serialize_state(state))
    with pytest.raises(SerializationError, match=r"checkpoint tensors: tensor 's0': an empty tensor of shape \[0, 1099511627776\]"):
        axon.loop.deserialize_state(_join(magic, version, text, body))
