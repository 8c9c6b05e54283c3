"""ResNet (He et al., 2015) as torchvision builds it, written with axon's public layers,
and the weight map from torchvision's ``state_dict`` names.

Layer names follow torchvision's modules with ``_`` for ``.`` (``layer2.0.conv1`` is
``layer2_0_conv1``, ``layer2.0.downsample.0`` is ``layer2_0_downsample_0``), so that
:func:`resnet_weight_map` is a handful of renames. Bottleneck blocks put the stride on the
3x3 convolution (torchvision's "ResNet v1.5").

>>> import axon
>>> model = resnet(18, num_classes=10)
>>> state = axon.pretrained.abstract_state(model, axon.template((1, 3, 32, 32)))
>>> state["layer2_0_downsample_0"]["kernel"].shape, state["fc"]["kernel"].shape
((128, 64, 1, 1), (512, 10))
"""

from __future__ import annotations

from typing import Literal

import axon
from axon.graph import Axon
from axon.pretrained import Rule
from axon.typing_aliases import Channels

__all__ = ["BLOCKS", "resnet", "resnet_weight_map"]

Depth = Literal[18, 34, 50, 101, 152]

BLOCKS: dict[int, tuple[Literal["basic", "bottleneck"], tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
"""Block type and blocks per stage for each depth (torchvision's table)."""

_EPSILON = 1e-5  # torch.nn.BatchNorm2d's default


def _conv_bn(x: Axon, units: int, name: str, bn_name: str, *, kernel_size: int, strides: int, channels: Channels,
             relu: bool) -> Axon:
    pad = kernel_size // 2
    x = axon.conv(x, units, kernel_size=kernel_size, strides=strides, padding=[(pad, pad), (pad, pad)],
                  channels=channels, use_bias=False, kernel_initializer="he_normal", name=name)
    x = axon.batch_norm(x, channel_index=1 if channels == "first" else -1, epsilon=_EPSILON, name=bn_name)
    return axon.relu(x) if relu else x


def _block(x: Axon, kind: str, planes: int, strides: int, downsample: bool, prefix: str, channels: Channels) -> Axon:
    if kind == "basic":
        plan = [(planes, 3, strides), (planes, 3, 1)]
    else:
        plan = [(planes, 1, 1), (planes, 3, strides), (planes * 4, 1, 1)]
    y = x
    for i, (units, size, stride) in enumerate(plan, start=1):
        y = _conv_bn(y, units, f"{prefix}_conv{i}", f"{prefix}_bn{i}", kernel_size=size, strides=stride,
                     channels=channels, relu=i < len(plan))
    shortcut = x
    if downsample:
        shortcut = _conv_bn(x, plan[-1][0], f"{prefix}_downsample_0", f"{prefix}_downsample_1", kernel_size=1,
                            strides=strides, channels=channels, relu=False)
    return axon.relu(axon.add(y, shortcut))


def resnet(depth: Depth = 50, *, num_classes: int = 1000, channels: Channels = "first",
           input_name: str = "input") -> Axon:
    """A ResNet classifier, layer for layer torchvision's ``resnet{depth}``.

    Args:
        depth: 18, 34 (basic blocks), 50, 101 or 152 (bottleneck blocks). Default 50.
        num_classes: the size of the last dense layer (``fc``). Default 1000.
        channels: ``"first"`` (default: images ``(batch, 3, height, width)`` and kernels
            ``(out, in, kh, kw)``, as torch) or ``"last"`` (``(batch, height, width, 3)``,
            kernels ``(kh, kw, in, out)``).
        input_name: the name of the model's input. Default ``"input"``.

    Returns:
        The graph: images to logits ``(batch, num_classes)`` (no softmax). The input's spatial
        size is free; torchvision's weights were trained on 224x224.

    Raises:
        ValueError: an unsupported depth, a ``num_classes`` that is not a positive int, or
            an unknown ``channels``.

    >>> import axon
    >>> model = resnet(18, num_classes=4)
    >>> axon.get_output_shape(model, axon.template((2, 3, 64, 64)))
    (2, 4)
    """
    if depth not in BLOCKS:
        raise ValueError(f"resnet: expected depth to be one of {sorted(BLOCKS)}, got {depth!r}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"resnet: expected num_classes to be a positive int, got {num_classes!r}")
    if channels not in ("first", "last"):
        raise ValueError(f"resnet: expected channels to be 'first' or 'last', got {channels!r}")
    kind, counts = BLOCKS[depth]
    expansion = 1 if kind == "basic" else 4
    shape = (None, 3, None, None) if channels == "first" else (None, None, None, 3)
    x = axon.input(input_name, shape=shape)
    x = _conv_bn(x, 64, "conv1", "bn1", kernel_size=7, strides=2, channels=channels, relu=True)
    x = axon.max_pool(x, kernel_size=3, strides=2, padding=[(1, 1), (1, 1)], channels=channels, name="maxpool")
    in_planes = 64
    for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), counts), start=1):
        for i in range(count):
            strides = 2 if stage > 1 and i == 0 else 1
            downsample = i == 0 and (strides != 1 or in_planes != planes * expansion)
            x = _block(x, kind, planes, strides, downsample, f"layer{stage}_{i}", channels)
            in_planes = planes * expansion
    x = axon.global_avg_pool(x, channels=channels, name="avgpool")
    return axon.dense(x, num_classes, name="fc")


def resnet_weight_map(channels: Channels = "first") -> list[Rule]:
    """The rules that load torchvision's ResNet ``state_dict`` (any depth) into :func:`resnet`.

    Convolutions: ``weight`` -> ``kernel`` (torch's ``(out, in, kh, kw)`` is axon's
    channels-first layout; ``"conv_oihw_to_hwio"`` for channels last). Batch norms:
    ``weight``/``bias`` -> ``gamma``/``beta`` (parameters), ``running_mean``/``running_var``
    -> ``mean``/``var`` (layer state); ``num_batches_tracked`` is dropped. ``fc``: the
    weight transposed to ``(in, out)``.

    Args:
        channels: the ``channels`` the model was built with. Default ``"first"``.

    Returns:
        A list of :class:`axon.pretrained.Rule`, for ``load_weights(..., mapping=...)``.

    Raises:
        ValueError: an unknown ``channels``.

    >>> rules = resnet_weight_map("last")
    >>> print(rules[2])
    Rule('layer(\\d+)\\.(\\d+)\\.conv(\\d)\\.weight' -> 'layer\\1_\\2_conv\\3.kernel', transform=[conv_oihw_to_hwio])
    >>> len(rules)
    18
    """
    if channels not in ("first", "last"):
        raise ValueError(f"resnet_weight_map: expected channels to be 'first' or 'last', got {channels!r}")
    layout = "conv_oihw_to_hwio" if channels == "last" else None
    block = r"layer(\d+)\.(\d+)\."
    rules = [
        Rule(r"(.+)\.num_batches_tracked", None),
        Rule(r"conv1\.weight", "conv1.kernel", layout),
        Rule(block + r"conv(\d)\.weight", r"layer\1_\2_conv\3.kernel", layout),
        Rule(block + r"downsample\.0\.weight", r"layer\1_\2_downsample_0.kernel", layout),
    ]
    for torch_name, axon_name in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "mean"),
                                  ("running_var", "var")):
        rules += [
            Rule(rf"bn1\.{torch_name}", f"bn1.{axon_name}"),
            Rule(block + rf"bn(\d)\.{torch_name}", rf"layer\1_\2_bn\3.{axon_name}"),
            Rule(block + rf"downsample\.1\.{torch_name}", rf"layer\1_\2_downsample_1.{axon_name}"),
        ]
    return [*rules, Rule(r"fc\.weight", "fc.kernel", "transpose"), Rule(r"fc\.bias", "fc.bias")]
