"""Issue 10.9b: optax's losses take ``(predictions, targets)``; the trainer calls a loss
function ``loss(y_true, y_pred)``. optax's own losses are recognised and called in their
order, with a mean reduction."""

import functools

import numpy as np
import optax
import pytest

import axon

RNG = np.random.default_rng(0)
X = RNG.normal(size=(16, 3)).astype(np.float32)
LABELS = np.eye(4, dtype=np.float32)[RNG.integers(0, 4, 16)]
BINARY = (RNG.uniform(size=(16, 4)) > 0.5).astype(np.float32)
REAL = RNG.normal(size=(16, 4)).astype(np.float32)


def log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def softmax_ce(logits, labels):
    return -(labels * log_softmax(logits)).sum(-1)


def sigmoid_bce(logits, labels):
    log_p = -np.logaddexp(0, -logits)
    log_not_p = -np.logaddexp(0, logits)
    return -labels * log_p - (1 - labels) * log_not_p


def l2(pred, target):
    return 0.5 * (pred - target) ** 2


@pytest.mark.parametrize(
    ("loss", "targets", "reference"),
    [
        (optax.losses.softmax_cross_entropy, LABELS, softmax_ce),
        (optax.softmax_cross_entropy, LABELS, softmax_ce),
        (functools.partial(optax.losses.softmax_cross_entropy, axis=-1), LABELS, softmax_ce),
        (optax.sigmoid_binary_cross_entropy, BINARY, sigmoid_bce),
        (optax.l2_loss, REAL, l2),
    ],
)
def test_trainer_loss_equals_mean_of_the_optax_loss_on_predictions_and_targets(loss, targets, reference):
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 4)
    final = axon.loop.trainer(model, loss, optax.sgd(0.0), log=0).run([(X, targets)], return_state=True)
    ms = final.step_state["model_state"]
    logits = X @ np.asarray(ms["dense_0"]["kernel"]) + np.asarray(ms["dense_0"]["bias"])
    expected = np.mean(reference(logits.astype(np.float64), targets))
    np.testing.assert_allclose(final.history[0]["loss"], expected, rtol=1e-5)
    # swapped, the value differs: the test would catch a swap
    if reference is not l2:
        assert not np.isclose(np.mean(reference(targets.astype(np.float64), logits)), expected, rtol=1e-3)


def test_an_optax_loss_needing_more_arguments_is_rejected():
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 4)
    with pytest.raises(ValueError, match="ctc_loss needs 4 arguments.*loss\\(y_true, y_pred\\)"):
        axon.loop.trainer(model, optax.ctc_loss, "sgd", log=0)


def test_a_users_function_is_still_called_y_true_first():
    calls = []

    def loss(y_true, y_pred):
        calls.append((y_true.shape, y_pred.shape))
        return ((y_pred - y_true) ** 2).mean()

    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 4)
    axon.loop.trainer(model, loss, "sgd", log=0).run([(X, REAL[:, :1])], jit=False)
    assert calls and all(c == ((16, 1), (16, 4)) for c in calls)
