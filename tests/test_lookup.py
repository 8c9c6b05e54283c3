"""One lookup, one error message shape, for the five ``get`` functions."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from axon import activations, initializers, losses, metrics, optimizers
from axon.lookup import lookup

GETS = [
    (activations.get, activations.ACTIVATIONS, "activation", "relu", "rellu"),
    (initializers.get, initializers.INITIALIZERS, "initializer", "zeros", "zeross"),
    (losses.get, losses.LOSSES, "loss", "mean_squared_error", "mean_squared_eror"),
    (metrics.get, metrics.METRICS, "metric", "accuracy", "acuracy"),
    (optimizers.get, optimizers.OPTIMIZERS, "optimizer", "adam", "adma"),
]


@pytest.mark.parametrize("get, table, kind, good, typo", GETS, ids=[g[2] for g in GETS])
def test_unknown_name_message_has_one_shape(get, table, kind, good, typo):
    with pytest.raises(ValueError) as info:
        get(typo)
    msg = str(info.value)
    head, listed = msg.split(" one of: ")
    assert head.startswith(f"unknown {kind} {typo!r} (did you mean {good!r}?); expected ")
    assert listed.split(", ") == [repr(n) for n in sorted(table)]


@pytest.mark.parametrize("get, table, kind, good, typo", GETS, ids=[g[2] for g in GETS])
def test_wrong_type_names_the_kind_and_the_type(get, table, kind, good, typo):
    with pytest.raises(TypeError, match=rf"expected an? {kind} name or .*, got int 3"):
        get(3)


def test_no_suggestion_when_nothing_is_close():
    with pytest.raises(ValueError) as info:
        losses.get("zzzz")
    assert "did you mean" not in str(info.value)


def test_names_resolve_and_objects_pass_through():
    assert activations.get("relu") is activations.relu
    assert losses.get("mean_squared_error") is losses.mean_squared_error
    assert metrics.get("accuracy") is metrics.accuracy
    assert initializers.get("ones")(None, (2,)).tolist() == [1.0, 1.0]
    assert initializers.get(initializers.ones)(None, (1,)).tolist() == [1.0]
    t = optax.sgd(0.1)
    assert optimizers.get(t) is t
    params = jnp.zeros(1)
    opt = optimizers.get("sgd")  # built with its defaults: learning rate 1e-2
    assert opt.update(jnp.array([1.0]), opt.init(params))[0].tolist() == pytest.approx([-0.01])
    with pytest.raises(TypeError, match="optax.GradientTransformation"):
        optimizers.get(len)


def test_lookup_custom_acceptance():
    assert lookup(5, {"a": 1}, kind="thing", accepts="an int", is_accepted=lambda v: isinstance(v, int)) == 5
    assert lookup("a", {"a": 1}, kind="thing") == 1


def test_arrays_are_rejected_with_a_type_error():
    for get in (activations.get, initializers.get, losses.get, metrics.get, optimizers.get):
        with pytest.raises(TypeError, match="ndarray"):
            get(np.ones(3))
