"""``load_weights``: fill a model's state from a checkpoint written under other names.

The model's entries are known from shapes alone (its init traced with ``jax.eval_shape``:
no random initialization runs), then each checkpoint tensor is read, renamed and
transformed by the first matching rule, checked against the entry's shape, cast to the
entry's dtype and placed on the device, one tensor at a time.

Dtypes: a tensor is cast to the dtype of the model's entry (the model decides the
precision: a float16 or float64 checkpoint fills a float32 model). Casts that could change
values silently are refused and reported as mismatches: floating or complex to integer,
complex to real, anything to bool, and integers to a narrower integer type that cannot hold
them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, overload

import jax
import jax.numpy as jnp
import numpy as np

from axon.compiler import build
from axon.graph import Axon
from axon.model_state import ModelState, get_path, set_path
from axon.pretrained.report import LoadError, LoadReport, Mismatch, TransformFailure
from axon.pretrained.rules import Rule, RuleLike, compile_mapping
from axon.pretrained.sources import open_source

__all__ = ["abstract_state", "load_weights"]


def abstract_state(model: Axon, template: Any = None) -> ModelState:
    """The model's state with ``jax.ShapeDtypeStruct`` leaves: its entries, shapes, dtypes
    and parameter/state bookkeeping, computed without initializing anything.

    Args:
        model: the graph.
        template: input templates or arrays, as ``init_fn`` takes them (``None``: the
            inputs' declared shapes).

    Returns:
        A ``ModelState`` whose leaves are ``jax.ShapeDtypeStruct``.

    >>> import axon
    >>> s = abstract_state(axon.input("x", shape=(None, 3)).pipe(axon.batch_norm))
    >>> s["batch_norm_0"]["mean"], sorted(s.state_paths)
    (ShapeDtypeStruct(shape=(3,), dtype=float32), [('batch_norm_0', 'mean'), ('batch_norm_0', 'var')])
    """
    if not isinstance(model, Axon):
        raise TypeError(f"expected model to be an axon graph, got {type(model).__name__}")
    init_fn, _ = build(model)
    return jax.eval_shape(lambda: init_fn(template))


def _kind(dtype: np.dtype) -> str:
    for kind, base in (("bool", jnp.bool_), ("complex", jnp.complexfloating), ("float", jnp.floating),
                       ("int", jnp.integer)):
        if jnp.issubdtype(dtype, base):
            return kind
    return "other"


def _refuse_cast(array: np.ndarray, dtype: np.dtype) -> str:
    """Why casting ``array`` to ``dtype`` would change values silently ("" when it is fine)."""
    src, dst = _kind(array.dtype), _kind(dtype)
    if array.dtype == dtype:
        return ""
    if dst == "bool" or src == "other" or dst == "other":
        return f"no cast from {array.dtype} to {dtype}"
    if src in ("float", "complex") and dst == "int":
        return f"{src} to integer would truncate"
    if src == "complex" and dst != "complex":
        return "complex to real would drop the imaginary part"
    if src in ("int", "bool") and dst == "int" and array.size:
        info = jnp.iinfo(dtype)
        lo, hi = int(array.min()), int(array.max())
        if lo < info.min or hi > info.max:
            return f"values in [{lo}, {hi}] do not fit {dtype}"
    return ""


def _describe(shape: tuple, dtype: Any) -> tuple[tuple[int, ...], str]:
    return tuple(int(d) for d in shape), str(np.dtype(dtype))


@overload
def load_weights(model: Axon, source: Any, *, mapping: Sequence[RuleLike] | Mapping[str, Any] | None,
                 template: Any = ..., strict: Literal[True] = ...) -> ModelState: ...


@overload
def load_weights(model: Axon, source: Any, *, mapping: Sequence[RuleLike] | Mapping[str, Any] | None,
                 template: Any = ..., strict: Literal[False]) -> tuple[ModelState, LoadReport]: ...


def load_weights(
    model: Axon,
    source: Any,
    *,
    mapping: Sequence[RuleLike] | Mapping[str, Any] | None,
    template: Any = None,
    strict: bool = True,
) -> ModelState | tuple[ModelState, LoadReport]:
    """Loads a checkpoint written under other names (torchvision, Hugging Face, ...) into
    the state of ``model``.

    Each source key goes through the first rule of ``mapping`` whose pattern matches it
    whole (see :class:`axon.pretrained.Rule`): renamed to an axon entry ``"layer.param"``
    (parameters and layer state alike, e.g. ``"bn1.mean"``), transformed, checked against
    the entry's shape and cast to its dtype (see the module docstring for the casts that are
    refused). Tensors are read one at a time, so checkpoints larger than half the memory
    load.

    Args:
        model: the axon graph to load into.
        source: a safetensors file; a sharded checkpoint (its ``*.index.json`` or the folder
            holding it); a torch ``.bin``/``.pt`` state dict (needs torch; read with
            ``weights_only=True``, so no code in the file runs); or a dict of arrays
            (numpy, jax or torch).
        mapping: the rules, in priority order: :class:`~axon.pretrained.Rule` s or
            ``(pattern, target[, transform])`` tuples. ``None``: the source keys are
            axon's ``"layer.param"`` names already.
        template: the model's input templates or arrays, as ``init_fn`` takes them
            (``None``: the inputs' declared shapes); or a ``ModelState`` of the model, whose
            entries the checkpoint replaces (the rest are kept).
        strict: ``True`` (default): any problem (missing, unexpected, mismatched or
            doubly-filled entries, failed transforms) raises one error listing them all.
            ``False``: return the state with the report; entries the checkpoint did not
            fill are initialized as ``init_fn`` does (or kept from a ``ModelState``
            template).

    Returns:
        The ``ModelState``; with ``strict=False``, ``(state, report)``.

    Raises:
        LoadError: (a ``ValueError``) with ``strict=True``, the problems found (``.report``
            holds them); in any mode, a file that is not a checkpoint or holds more than
            tensors.
        ImportError: a torch file and torch is not installed.

    >>> import axon, numpy as np
    >>> model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2, name="fc")
    >>> torch_like = {"fc.weight": np.arange(6.0).reshape(2, 3), "fc.bias": np.ones(2)}
    >>> state = load_weights(model, torch_like, mapping=[
    ...     (r"fc\\.weight", "fc.kernel", "transpose"), (r"fc\\.bias", "fc.bias")])
    >>> state["fc"]["kernel"].tolist(), state["fc"]["kernel"].dtype
    ([[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]], dtype('float32'))
    >>> load_weights(model, {"fc.weight": np.zeros((3, 3))}, mapping=[(r"fc\\.weight", "fc.kernel")])
    Traceback (most recent call last):
    axon.pretrained.report.LoadError: 2 problems loading the weights:
      missing (in the model, not filled by the checkpoint): fc.bias
      shape/dtype mismatches:
        fc.kernel from fc.weight: expected (3, 2) float32, got (3, 3) float64
    """
    rules = None if mapping is None else compile_mapping(mapping)
    base = template if isinstance(template, ModelState) else None
    abstract = base if base is not None else abstract_state(model, template)
    entries = {".".join(p): p for p in abstract.paths()}
    leaves = {name: _leaf(abstract, path) for name, path in entries.items()}
    src = open_source(source)

    report = LoadReport()
    filled: dict[str, str] = {}
    data: dict = {}
    for key in src.names():
        rule, match = _first_match(rules, key)
        if rule is None:
            report.unexpected.append(key)
            continue
        if rule.target is None:
            continue
        target = match.expand(rule.target)
        if "{}" not in target and target not in entries:
            report.unexpected.append(f"{key} -> {target}")
            continue
        try:
            pairs = rule.apply(key, src.read(key), match)
        except LoadError:
            raise
        except Exception as e:  # a transform (possibly the user's function) failed
            report.failed.append(TransformFailure(key, str(rule), f"{type(e).__name__}: {e}",
                                                  "" if "{}" in target else target))
            continue
        for name, array in pairs:
            if name not in entries:
                report.unexpected.append(f"{key} -> {name}")
                continue
            if name in filled:
                report.duplicates.append(f"{name} <- {filled[name]}, {key}")
                continue
            leaf = leaves[name]
            got = _describe(array.shape, array.dtype)
            expected = _describe(leaf.shape, leaf.dtype)
            reason = "" if got[0] == expected[0] else "shape"
            reason = reason or _refuse_cast(array, np.dtype(leaf.dtype))
            if reason:
                report.mismatched.append(Mismatch(key, name, expected, got, "" if reason == "shape" else reason))
                continue
            filled[name] = key
            set_path(data, entries[name], jax.device_put(np.asarray(array, dtype=leaf.dtype)))
            del array
    reported = {m.target for m in report.mismatched} | {f.target for f in report.failed}
    report.missing = [name for name in entries if name not in filled and name not in reported]
    report.loaded = len(filled)

    if strict and not report.ok:
        raise LoadError(str(report), report)
    state = _assemble(model, template, abstract, base, data, entries, filled)
    return state if strict else (state, report)


def _leaf(state: ModelState, path: tuple[str, ...]) -> Any:
    return get_path(state.data, path)


_IDENTITY = Rule(r"(?s).*", r"\g<0>")
"""The rule of ``mapping=None``: every key is an axon ``"layer.param"`` name already."""


def _first_match(rules: list[Rule] | None, key: str) -> tuple[Rule | None, Any]:
    for rule in rules if rules is not None else (_IDENTITY,):
        m = rule.match(key)
        if m is not None:
            return rule, m
    return None, None


def _assemble(model: Axon, template: Any, abstract: ModelState, base: ModelState | None, data: dict,
              entries: dict[str, tuple[str, ...]], filled: dict[str, str]) -> ModelState:
    """The loaded entries, in the model's order, as a ``ModelState`` with the model's
    bookkeeping; entries the checkpoint did not fill come from ``base`` or a fresh init."""
    if len(filled) < len(entries):
        if base is not None:
            return base.merge(data)
        init_fn, _ = build(model)
        return init_fn(template, init_state=ModelState(data))
    ordered: dict = {}
    for path in entries.values():
        set_path(ordered, path, get_path(data, path))
    return ModelState(ordered, abstract.parameter_paths, abstract.state_paths, abstract.frozen_paths)
