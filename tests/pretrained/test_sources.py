"""Checkpoint readers: safetensors (checked header, tensor by tensor), sharded indexes, torch
files (weights only: nothing in a file is executed), folders, and their errors."""

from __future__ import annotations

import json
import pickle
import struct
import sys

import ml_dtypes
import numpy as np
import pytest
import safetensors.numpy

import axon
from axon.pretrained import LoadError, load_weights, open_source

FC_RULES = [(r"fc\.weight", "fc.kernel", "transpose"), (r"fc\.bias", "fc.bias")]


def _model():
    return axon.input("x", shape=(None, 4)).pipe(axon.dense, 3, name="fc")


def _sd(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"fc.weight": rng.standard_normal((3, 4)).astype(np.float32), "fc.bias": rng.standard_normal(3).astype(np.float32)}


class _Custom:
    """A plain user class: a weights-only reader must not import it."""


class _Touch:
    """Unpickling this would create ``path``: the files below must be refused before that."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').close()",))


def test_safetensors_tensors_read_as_written(tmp_path):
    tensors = {"a": np.arange(6, dtype=np.int16).reshape(2, 3), "b": np.ones((0, 4), np.float32),
               "c": np.array(2.5, dtype=ml_dtypes.bfloat16)}
    safetensors.numpy.save_file(tensors, str(tmp_path / "t.safetensors"))
    src = open_source(tmp_path / "t.safetensors")
    assert sorted(src.names()) == ["a", "b", "c"]
    for k, v in tensors.items():
        got = src.read(k)
        assert got.dtype == v.dtype and got.shape == v.shape
        np.testing.assert_array_equal(got, v)


def test_corrupt_safetensors_files_are_refused_with_the_file_named(tmp_path):
    good = safetensors.numpy.save({"w": np.ones((2, 2), np.float32)})
    (n,) = struct.unpack("<Q", good[:8])
    header = json.loads(good[8:8 + n])
    cases = {
        "short.safetensors": (good[:4], "only 4 bytes"),
        "huge_header.safetensors": (struct.pack("<Q", 10**12) + good[8:], "header length"),
        "not_json.safetensors": (struct.pack("<Q", 3) + b"{x}" + b"\0" * 16, "not JSON"),
        "truncated.safetensors": (good[:-4], "do not fit"),
    }
    bad_offsets = dict(header, w={**header["w"], "data_offsets": [0, 8]})
    raw = json.dumps(bad_offsets).encode()
    cases["bad_offsets.safetensors"] = (struct.pack("<Q", len(raw)) + raw + good[8 + n:], "(2, 2)|\\[2, 2\\]")
    bad_dtype = dict(header, w={**header["w"], "dtype": "Q7"})
    raw = json.dumps(bad_dtype).encode()
    cases["bad_dtype.safetensors"] = (struct.pack("<Q", len(raw)) + raw + good[8 + n:], "invalid header entry")
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(LoadError, match=message) as info:
            open_source(tmp_path / name)
        assert name in str(info.value)


def test_sharded_index_errors_name_the_shard(tmp_path):
    sd = _sd()
    safetensors.numpy.save_file({"fc.weight": sd["fc.weight"]}, str(tmp_path / "a.safetensors"))
    safetensors.numpy.save_file({"fc.bias": sd["fc.bias"]}, str(tmp_path / "b.safetensors"))
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"fc.weight": "a.safetensors", "fc.bias": "b.safetensors"}}))
    state = load_weights(_model(), tmp_path, mapping=FC_RULES)
    np.testing.assert_array_equal(state["fc"]["bias"], sd["fc.bias"])

    index.write_text(json.dumps({"weight_map": {"fc.weight": "a.safetensors", "fc.bias": "c.safetensors"}}))
    with pytest.raises(LoadError, match="shard 'c.safetensors' is missing"):
        load_weights(_model(), index, mapping=FC_RULES)
    index.write_text(json.dumps({"weight_map": {"fc.weight": "../a.safetensors"}}))
    with pytest.raises(LoadError, match="is not a file next to the index"):
        load_weights(_model(), index, mapping=FC_RULES)
    index.write_text(json.dumps({"weight_map": {"fc.weight": "a.safetensors", "fc.bias": "a.safetensors"}}))
    with pytest.raises(LoadError, match="puts 'fc.bias' in 'a.safetensors', which does not hold it"):
        load_weights(_model(), index, mapping=FC_RULES)
    index.write_text("[]")
    with pytest.raises(LoadError, match="not a checkpoint index"):
        load_weights(_model(), index, mapping=FC_RULES)


def test_a_folder_without_a_checkpoint_and_a_missing_path(tmp_path):
    with pytest.raises(LoadError, match="a folder without any of model.safetensors.index.json"):
        load_weights(_model(), tmp_path, mapping=FC_RULES)
    with pytest.raises(LoadError, match="no checkpoint at"):
        load_weights(_model(), tmp_path / "nope.safetensors", mapping=FC_RULES)
    with pytest.raises(TypeError, match="a path or a dict of arrays, got int"):
        load_weights(_model(), 3, mapping=FC_RULES)


def test_a_pickle_file_without_torch_names_the_install_and_runs_nothing(tmp_path, monkeypatch):
    marker = tmp_path / "executed"
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(pickle.dumps({"fc.weight": _Touch(marker)}))
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    with pytest.raises(ImportError, match=r'needs torch; install it with pip install "axon-jax\[torch\]"'):
        load_weights(_model(), path, mapping=FC_RULES)
    with pytest.raises(ImportError, match="needs torch"):
        load_weights(_model(), tmp_path, mapping=FC_RULES)  # the folder's pytorch_model.bin
    assert not marker.exists()


def test_torch_state_dicts_load_in_both_file_formats(torch, tmp_path):
    sd = _sd(1)
    tensors = {k: torch.from_numpy(v) for k, v in sd.items()}
    torch.save(tensors, tmp_path / "new.pt")
    torch.save(tensors, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    for name in ("new.pt", "legacy.pt"):
        state = load_weights(_model(), tmp_path / name, mapping=FC_RULES)
        np.testing.assert_array_equal(state["fc"]["kernel"], sd["fc.weight"].T)
    bf16 = {k: v.to(torch.bfloat16) for k, v in tensors.items()}
    torch.save(bf16, tmp_path / "bf16.bin")
    state = load_weights(_model(), tmp_path / "bf16.bin", mapping=FC_RULES)
    want = sd["fc.weight"].astype(ml_dtypes.bfloat16).astype(np.float32).T
    np.testing.assert_array_equal(state["fc"]["kernel"], want)


def test_a_sharded_torch_checkpoint_loads_from_its_folder(torch, tmp_path):
    sd = _sd(2)
    torch.save({"fc.weight": torch.from_numpy(sd["fc.weight"])}, tmp_path / "pytorch_model-00001-of-00002.bin")
    torch.save({"fc.bias": torch.from_numpy(sd["fc.bias"])}, tmp_path / "pytorch_model-00002-of-00002.bin")
    weight_map = {"fc.weight": "pytorch_model-00001-of-00002.bin", "fc.bias": "pytorch_model-00002-of-00002.bin"}
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    state = load_weights(_model(), tmp_path, mapping=FC_RULES)
    np.testing.assert_array_equal(state["fc"]["kernel"], sd["fc.weight"].T)
    np.testing.assert_array_equal(state["fc"]["bias"], sd["fc.bias"])


def test_torch_files_holding_code_or_other_objects_are_refused_unexecuted(torch, tmp_path):
    marker = tmp_path / "executed"
    files = {
        "code.pt": lambda p: torch.save({"fc.weight": torch.ones(3, 4), "x": _Touch(marker)}, p),
        "custom_class.pt": lambda p: torch.save({"fc.weight": torch.ones(3, 4), "x": _Custom()}, p),
        "legacy_code.pt": lambda p: torch.save({"x": _Touch(marker)}, p, _use_new_zipfile_serialization=False),
        "plain_pickle.pt": lambda p: p.write_bytes(pickle.dumps({"fc.weight": _Touch(marker)})),
        "numpy_pickle.pt": lambda p: p.write_bytes(pickle.dumps({"fc.weight": np.ones((3, 4))})),
    }
    for name, write in files.items():
        write(tmp_path / name)
        with pytest.raises(LoadError, match="refused: the file holds objects other than tensors") as info:
            load_weights(_model(), tmp_path / name, mapping=FC_RULES)
        assert name in str(info.value) and "weights_only=False" not in str(info.value)
    assert not marker.exists()
    torch.save(torch.ones(3), tmp_path / "tensor.pt")
    with pytest.raises(LoadError, match="expected a state dict"):
        load_weights(_model(), tmp_path / "tensor.pt", mapping=FC_RULES)
