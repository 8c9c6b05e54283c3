"""axon.metrics against scikit-learn and hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from axon import metrics as M

skm = pytest.importorskip("sklearn.metrics")

RNG = np.random.default_rng(0)
N, C = 40, 5
Y_BIN = RNG.integers(0, 2, N)
P_BIN = RNG.random(N).astype(np.float32)
LABELS = RNG.integers(0, C, N)
SCORES = RNG.normal(size=(N, C)).astype(np.float32)
ONE_HOT = np.eye(C, dtype=np.float32)[LABELS]


def _close(a, b, rtol=1e-6):
    np.testing.assert_allclose(float(a), float(b), rtol=rtol, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# accuracy


def test_binary_accuracy_vs_sklearn():
    ref = skm.accuracy_score(Y_BIN, P_BIN > 0.5)
    _close(M.accuracy(Y_BIN, P_BIN), ref)  # (B,)
    _close(M.accuracy(Y_BIN[:, None], P_BIN[:, None]), ref)  # (B, 1)
    _close(M.accuracy(Y_BIN, P_BIN[:, None]), ref)  # (B,) targets, (B, 1) predictions
    logits = np.log(P_BIN / (1 - P_BIN))
    _close(M.accuracy(Y_BIN[:, None], logits[:, None], from_logits=True), ref)


def test_categorical_accuracy_vs_sklearn():
    ref = skm.accuracy_score(LABELS, SCORES.argmax(-1))
    assert 0.0 < ref < 1.0
    _close(M.accuracy(ONE_HOT, SCORES), ref)
    _close(M.accuracy(LABELS, SCORES, sparse=True), ref)
    _close(M.accuracy(LABELS[:, None], SCORES, sparse=True), ref)
    _close(M.accuracy(ONE_HOT, SCORES, from_logits=True), ref)


def test_sequence_accuracy():
    scores = RNG.normal(size=(4, 6, C)).astype(np.float32)  # (B, T, C)
    labels = RNG.integers(0, C, (4, 6))
    ref = skm.accuracy_score(labels.ravel(), scores.argmax(-1).ravel())
    _close(M.accuracy(labels, scores, sparse=True), ref)
    _close(M.accuracy(np.eye(C)[labels], scores), ref)


def test_accuracy_shape_errors():
    with pytest.raises(ValueError, match="same shape"):
        M.accuracy(ONE_HOT[:, :3], SCORES)
    with pytest.raises(ValueError, match="sparse=True"):
        M.accuracy(LABELS[:10], SCORES, sparse=True)
    with pytest.raises(ValueError, match="same shape"):
        M.accuracy(Y_BIN[:10], P_BIN)


# ---------------------------------------------------------------------------------------------
# Binary metrics


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_confusion_counts_vs_sklearn(threshold):
    tn, fp, fn, tp = skm.confusion_matrix(
        Y_BIN, np.greater(P_BIN, threshold), labels=[0, 1]
    ).ravel()
    _close(M.true_positives(Y_BIN, P_BIN, threshold=threshold), tp)
    _close(M.false_positives(Y_BIN, P_BIN, threshold=threshold), fp)
    _close(M.true_negatives(Y_BIN, P_BIN, threshold=threshold), tn)
    _close(M.false_negatives(Y_BIN, P_BIN, threshold=threshold), fn)


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_precision_recall_specificity_vs_sklearn(threshold):
    pred = np.greater(P_BIN, threshold)
    _close(M.precision(Y_BIN, P_BIN, threshold=threshold), skm.precision_score(Y_BIN, pred))
    _close(M.recall(Y_BIN, P_BIN, threshold=threshold), skm.recall_score(Y_BIN, pred))
    _close(M.sensitivity(Y_BIN, P_BIN, threshold=threshold), skm.recall_score(Y_BIN, pred))
    # specificity = recall of the negative class
    _close(
        M.specificity(Y_BIN, P_BIN, threshold=threshold),
        skm.recall_score(Y_BIN, pred, pos_label=0),
    )


def test_binary_metrics_multilabel_count_every_element():
    y = RNG.integers(0, 2, (6, 3))
    p = RNG.random((6, 3)).astype(np.float32)
    _close(M.precision(y, p), skm.precision_score(y.ravel(), p.ravel() > 0.5))
    _close(M.true_positives(y, p), np.sum((y == 1) & (p > 0.5)))


def test_zero_division_gives_zero():
    zeros = np.zeros(4)
    _close(M.precision(np.ones(4), zeros), 0.0)  # nothing predicted positive
    _close(M.recall(zeros, np.ones(4)), 0.0)  # no positives
    _close(M.specificity(np.ones(4), zeros), 0.0)  # no negatives


def test_axon_doc_values():
    # Values from Axon's documentation of precision/recall/sensitivity/specificity.
    y_true, y_pred = np.array([0, 1, 1, 1]), np.array([1, 0, 1, 1])
    _close(M.precision(y_true, y_pred), 2 / 3)
    _close(M.recall(y_true, y_pred), 2 / 3)
    _close(M.sensitivity(y_true, y_pred), 2 / 3)
    _close(M.specificity(y_true, y_pred), 0.0)


def test_binary_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        M.precision(Y_BIN[:, None], P_BIN)


# ---------------------------------------------------------------------------------------------
# Regression, top-k


def test_mean_absolute_error_vs_sklearn():
    y = RNG.normal(size=(6, 3))
    p = RNG.normal(size=(6, 3))
    _close(M.mean_absolute_error(y, p), skm.mean_absolute_error(y.ravel(), p.ravel()), rtol=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        M.mean_absolute_error(y, p[:, :2])


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_vs_sklearn(k):
    ref = skm.top_k_accuracy_score(LABELS, SCORES, k=k, labels=list(range(C)))
    _close(M.top_k_categorical_accuracy(LABELS, SCORES, k=k, sparse=True), ref)
    _close(M.top_k_categorical_accuracy(ONE_HOT, SCORES, k=k), ref)


def test_top_k_default_and_single_sample():
    # default k = 5 with 5 classes: always a hit
    _close(M.top_k_categorical_accuracy(ONE_HOT, SCORES), 1.0)
    _close(
        M.top_k_categorical_accuracy(np.array(2), np.array([0.1, 0.2, 0.3, 0.9]), k=2, sparse=True),
        1.0,
    )
    _close(
        M.top_k_categorical_accuracy(np.array(0), np.array([0.1, 0.2, 0.3, 0.9]), k=2, sparse=True),
        0.0,
    )
    with pytest.raises(ValueError, match="positive integer"):
        M.top_k_categorical_accuracy(ONE_HOT, SCORES, k=0)


# ---------------------------------------------------------------------------------------------
# Accumulators, jit, registry


def test_running_average_and_sum_hand_computed():
    batches = [(Y_BIN[i : i + 10], P_BIN[i : i + 10]) for i in range(0, N, 10)]
    per_batch = [skm.accuracy_score(y, p > 0.5) for y, p in batches]
    tps = [np.sum((y == 1) & (p > 0.5)) for y, p in batches]

    avg_fn = M.running_average(M.accuracy)
    sum_fn = M.running_sum("true_positives")
    avg, total = 0.0, 0.0
    for i, (y, p) in enumerate(batches):
        avg = avg_fn(avg, y, p, i)
        total = sum_fn(total, [y, p], i)  # Axon's list form
    _close(avg, np.mean(per_batch))
    _close(total, np.sum(tps))


def test_running_average_jit_and_pytrees():
    def pair(y, p):
        return {"acc": M.accuracy(y, p), "mae": M.mean_absolute_error(y, p)}

    step = jax.jit(M.running_average(pair))
    avg = {"acc": jnp.float32(0.0), "mae": jnp.float32(0.0)}
    accs, maes = [], []
    for i in range(3):
        y, p = Y_BIN[i * 10 : (i + 1) * 10], P_BIN[i * 10 : (i + 1) * 10]
        avg = step(avg, y, p, jnp.int32(i))
        accs.append(np.mean((p > 0.5) == (y == 1)))
        maes.append(np.mean(np.abs(y - p)))
    _close(avg["acc"], np.mean(accs), rtol=1e-5)
    _close(avg["mae"], np.mean(maes), rtol=1e-5)


@pytest.mark.parametrize("name", sorted(M.METRICS))
def test_every_metric_is_a_jittable_scalar(name):
    fn = M.METRICS[name]
    if name in ("top_k_categorical_accuracy",):
        args = (ONE_HOT, SCORES)
    elif name == "accuracy":
        args = (LABELS, SCORES)
        fn = jax.tree_util.Partial(M.accuracy, sparse=True)
    else:
        args = (Y_BIN, P_BIN)
    out = jax.jit(fn)(*args)
    assert out.shape == () and out.dtype == jnp.float32
    _close(out, fn(*args))


def test_get():
    assert M.get("recall") is M.recall
    assert M.get(M.precision) is M.precision
    with pytest.raises(ValueError, match="'accuracy', 'false_negatives'"):
        M.get("f1")
    with pytest.raises(TypeError):
        M.get(None)
