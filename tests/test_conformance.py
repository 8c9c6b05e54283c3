"""The shared layer check itself: each of its new checks can fail."""

import jax.numpy as jnp
import numpy as np
import pytest

import axon
from tests.conformance import check_layer

X = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32))


def relu_model():
    return axon.input("x", shape=(None, 3)).pipe(axon.relu)


def test_a_wrong_reference_fails():
    check_layer(relu_model(), X, {}, expected=np.maximum(np.asarray(X), 0))
    with pytest.raises(AssertionError):
        check_layer(relu_model(), X, {}, expected=np.tanh(np.asarray(X)))
    with pytest.raises(AssertionError, match="shape"):
        check_layer(relu_model(), X, {}, expected=np.zeros((3, 2)))


def test_a_reference_or_a_reason_is_required():
    with pytest.raises(TypeError, match="expected="):
        check_layer(relu_model(), X, {})
    with pytest.raises(TypeError, match="skip"):
        check_layer(relu_model(), X, {}, skip={"saving": "typo"})
    with pytest.raises(TypeError, match="skip"):
        check_layer(relu_model(), X, {}, expected=X, skip={"save": ""})


def test_the_round_trip_runs_unless_skipped_with_a_reason():
    model = axon.fn(axon.input("x", shape=(None, 3)), lambda v: v * 2)
    with pytest.raises(axon.serialization.SerializationError):
        check_layer(model, X, {}, expected=2 * np.asarray(X))
    check_layer(model, X, {}, expected=2 * np.asarray(X), skip={"save": "an unregistered lambda"})


def test_the_policy_run_checks_output_dtypes_and_values():
    # an output that no layer computes (an input passed through a container) is not cast
    x = axon.input("x", shape=(None, 3))
    with pytest.raises(AssertionError, match="bf16 policy: output is float32"):
        check_layer(axon.container([x]), X, {}, expected=[X])
    # bfloat16 holds 1000·x only to about ±2: its sine is far from the float32 one
    model = axon.fn(x, lambda v: jnp.sin(1000 * v))
    ref = np.sin(np.float32(1000) * np.asarray(X))
    with pytest.raises(AssertionError, match="far from float32"):
        check_layer(model, X, {}, expected=ref, skip={"save": "an unregistered lambda"})
    check_layer(model, X, {}, expected=ref, skip={"save": "an unregistered lambda", "policy": "cancels in bf16"})
