"""axon.models.resnet loaded with torchvision-layout weights gives torch's logits.

The reference is a torchvision-equivalent ResNet written in torch (tests/pretrained/
torch_resnet.py), randomly initialized with randomized batch-norm statistics, in eval mode;
its state dict is saved as safetensors, as a torch ``.bin``, as a sharded checkpoint, or
passed as a dict, and loaded through ``axon.pretrained.load_weights`` with
``resnet_weight_map``.
"""

from __future__ import annotations

import functools
import json

import jax
import numpy as np
import pytest
import safetensors.numpy

import axon
from axon.models import resnet, resnet_weight_map
from axon.pretrained import load_weights

from . import numpy_resnet
from .torch_resnet import torch_resnet

SIZE = 64


def _images(channels: str, batch: int = 2) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((batch, 3, SIZE, SIZE)).astype(np.float32)
    return x if channels == "first" else x.transpose(0, 2, 3, 1)


def _torch_logits(torch, model) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(_images("first"))).numpy()


@functools.cache
def _predict_fn(depth: int, channels: str):
    return axon.build(resnet(depth, num_classes=10, channels=channels))[1]  # compiled once per model


def _axon_logits(depth: int, channels: str, state: axon.ModelState) -> np.ndarray:
    return np.asarray(_predict_fn(depth, channels)(state, _images(channels)))


def _assert_logits(got: np.ndarray, want: np.ndarray) -> None:
    assert np.abs(want).max() > 0.1  # the logits are not degenerate
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def _template(channels: str):
    shape = (1, 3, SIZE, SIZE) if channels == "first" else (1, SIZE, SIZE, 3)
    return axon.template(shape)


@pytest.mark.parametrize("depth, count", [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032),
                                          (101, 44_549_160), (152, 60_192_808)])
def test_parameter_counts_are_torchvisions(depth, count):
    # torchvision's published sizes (1000 classes): sum(p.numel() for p in model.parameters())
    assert axon.pretrained.abstract_state(resnet(depth), _template("first")).parameter_count == count


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="expected depth to be one of"):
        resnet(20)
    with pytest.raises(ValueError, match="expected num_classes to be a positive int, got 0"):
        resnet(18, num_classes=0)
    with pytest.raises(ValueError, match="expected channels to be 'first' or 'last', got 'middle'"):
        resnet_weight_map("middle")


@pytest.mark.parametrize("depth, channels", [(18, "last"), (50, "first")])
def test_logits_match_a_numpy_torchvision_resnet(tmp_path, depth, channels):
    # runs without torch: the reference is torchvision's forward pass written in numpy
    sd = numpy_resnet.state_dict(depth, 10, np.random.default_rng(depth))
    assert len(sd) == {18: 122, 50: 320}[depth]  # torchvision's state_dict sizes
    path = tmp_path / "model.safetensors"
    safetensors.numpy.save_file(sd, str(path))
    state = load_weights(resnet(depth, num_classes=10, channels=channels), path,
                         mapping=resnet_weight_map(channels), template=_template(channels))
    want = numpy_resnet.forward(sd, depth, _images("first"))
    _assert_logits(_axon_logits(depth, channels, state), want)


@pytest.mark.parametrize("channels", ["first", "last"])
def test_resnet18_from_safetensors_matches_torch(torch, tmp_path, channels):
    import safetensors.torch

    reference = torch_resnet(torch, 18, num_classes=10)
    path = tmp_path / "resnet18.safetensors"
    safetensors.torch.save_file(reference.state_dict(), str(path))
    state = load_weights(resnet(18, num_classes=10, channels=channels), path,
                         mapping=resnet_weight_map(channels), template=_template(channels))
    _assert_logits(_axon_logits(18, channels, state), _torch_logits(torch, reference))


def test_resnet50_from_torch_bin_matches_torch(torch, tmp_path):
    reference = torch_resnet(torch, 50, num_classes=10)
    path = tmp_path / "pytorch_model.bin"
    torch.save(reference.state_dict(), path)
    state = load_weights(resnet(50, num_classes=10), path, mapping=resnet_weight_map(), template=_template("first"))
    _assert_logits(_axon_logits(50, "first", state), _torch_logits(torch, reference))


def test_resnet18_sharded_checkpoint_and_its_folder_load(torch, tmp_path):
    import safetensors.torch

    reference = torch_resnet(torch, 18, num_classes=10, seed=3)
    sd = reference.state_dict()
    names = list(sd)
    weight_map = {}
    for i in range(3):  # three shards, keys dealt round-robin
        shard = {k: sd[k] for k in names[i::3]}
        safetensors.torch.save_file(shard, str(tmp_path / f"model-{i + 1:05d}-of-00003.safetensors"))
        weight_map.update({k: f"model-{i + 1:05d}-of-00003.safetensors" for k in shard})
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    want = _torch_logits(torch, reference)
    for source in (index, tmp_path):
        state = load_weights(resnet(18, num_classes=10), source, mapping=resnet_weight_map(),
                             template=_template("first"))
        _assert_logits(_axon_logits(18, "first", state), want)


def test_resnet18_from_a_dict_of_torch_tensors_keeps_the_state_bookkeeping(torch):
    reference = torch_resnet(torch, 18, num_classes=10, seed=5)
    model = resnet(18, num_classes=10, channels="last")
    state = load_weights(model, reference.state_dict(), mapping=resnet_weight_map("last"), template=_template("last"))
    _assert_logits(_axon_logits(18, "last", state), _torch_logits(torch, reference))
    # running statistics are layer state, affine parameters are parameters, as init_fn makes them
    fresh = axon.pretrained.abstract_state(model, _template("last"))
    assert state.state_paths == fresh.state_paths and state.parameter_paths == fresh.parameter_paths
    assert ("layer1_0_bn1", "mean") in state.state_paths
    np.testing.assert_array_equal(state["layer1_0_bn1"]["var"], reference.layer1[0].bn1.running_var.numpy())
    assert jax.tree_util.tree_structure(state) == jax.tree_util.tree_structure(fresh)


def test_a_new_head_is_initialized_and_reported(torch):
    reference = torch_resnet(torch, 18, num_classes=10, seed=2)
    model = resnet(18, num_classes=3)  # fine-tuning: a 3-class head on the 10-class backbone
    sd = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    state, report = load_weights(model, sd, mapping=resnet_weight_map(), template=_template("first"), strict=False)
    assert sorted(report.missing) == ["fc.bias", "fc.kernel"] and not report.unexpected and not report.mismatched
    assert state["fc"]["kernel"].shape == (512, 3) and float(np.abs(state["fc"]["kernel"]).max()) > 0
    np.testing.assert_array_equal(state["conv1"]["kernel"], reference.conv1.weight.detach().numpy())
