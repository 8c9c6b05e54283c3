"""axon.losses against torch.nn.functional (and numpy where torch has no counterpart)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from axon import losses as L

RNG = np.random.default_rng(0)
REDUCTIONS = ["none", "mean", "sum"]


def _t(x):
    torch = pytest.importorskip("torch")
    return torch.tensor(np.asarray(x))


def _np(x):
    return np.asarray(x, dtype=np.float64)


def _reduce_np(per_sample, reduction):
    per_sample = np.asarray(per_sample, np.float64)
    return {"none": per_sample, "mean": per_sample.mean(), "sum": per_sample.sum()}[reduction]


def _close(ours, ref, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(
        np.asarray(ours, np.float64), np.asarray(ref, np.float64), rtol=rtol, atol=atol
    )


# ---------------------------------------------------------------------------------------------
# binary_cross_entropy

Y_BIN = (RNG.random((4, 3)) > 0.5).astype(np.float32)
P_BIN = RNG.uniform(0.05, 0.95, (4, 3)).astype(np.float32)
Z_BIN = RNG.normal(scale=3.0, size=(4, 3)).astype(np.float32)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_probabilities_vs_torch(reduction, torch):
    F = torch.nn.functional
    ref = F.binary_cross_entropy(_t(P_BIN), _t(Y_BIN), reduction="none").numpy().mean(-1)
    _close(
        L.binary_cross_entropy(Y_BIN, P_BIN, reduction=reduction),
        _reduce_np(ref, reduction),
        rtol=1e-5,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_logits_vs_torch(reduction, torch):
    F = torch.nn.functional
    ref = (
        F.binary_cross_entropy_with_logits(_t(Z_BIN), _t(Y_BIN), reduction="none").numpy().mean(-1)
    )
    ours = L.binary_cross_entropy(Y_BIN, Z_BIN, from_logits=True, reduction=reduction)
    _close(ours, _reduce_np(ref, reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos,neg", [(3.0, None), (None, 0.25), (2.0, 0.5)])
def test_bce_weights_vs_torch(reduction, pos, neg, torch):
    # torch: weight * [pos_weight * y * log s(z) + (1 - y) * log(1 - s(z))]; weight = w-,
    # pos_weight = w+/w- gives w+ y log p + w- (1 - y) log(1 - p).
    F = torch.nn.functional
    wp, wn = pos or 1.0, neg or 1.0
    per_elem = F.binary_cross_entropy_with_logits(
        _t(Z_BIN),
        _t(Y_BIN),
        weight=torch.tensor(wn),
        pos_weight=torch.tensor(wp / wn),
        reduction="none",
    ).numpy()
    ours = L.binary_cross_entropy(
        Y_BIN,
        Z_BIN,
        positive_weight=pos,
        negative_weight=neg,
        from_logits=True,
        reduction=reduction,
    )
    _close(ours, _reduce_np(per_elem.mean(-1), reduction))
    if reduction == "none":
        assert ours.shape == (4,)  # respects reduction (Axon returns a scalar here)
    # Same weights with probabilities instead of logits.
    probs = 1 / (1 + np.exp(-Z_BIN.astype(np.float64)))
    ours_p = L.binary_cross_entropy(
        Y_BIN,
        probs.astype(np.float32),
        positive_weight=pos,
        negative_weight=neg,
        reduction=reduction,
    )
    _close(ours_p, _reduce_np(per_elem.mean(-1), reduction), rtol=1e-4, atol=1e-5)


def test_bce_weights_mean_matches_torch_module_mean(torch):
    module = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(3.0))
    ref = module(_t(Z_BIN), _t(Y_BIN)).item()
    _close(
        L.binary_cross_entropy(
            Y_BIN, Z_BIN, positive_weight=3.0, from_logits=True, reduction="mean"
        ),
        ref,
    )


def test_bce_axon_doc_values():
    # Values from Axon's documentation of binary_cross_entropy.
    y_true = np.array([[0, 1], [1, 0], [1, 0]])
    y_pred = np.array([[0.6811, 0.5565], [0.6551, 0.4551], [0.5422, 0.2648]], np.float32)
    _close(L.binary_cross_entropy(y_true, y_pred), [0.8644826, 0.5150600, 0.4598663], rtol=1e-5)
    _close(L.binary_cross_entropy(y_true, y_pred, reduction="sum"), 1.8394090, rtol=1e-5)


def test_bce_stable_for_large_logits_and_integer_targets(torch):
    F = torch.nn.functional
    z = np.array([[100.0, -100.0, 30.0]], np.float32)
    y = np.array([[0, 1, 1]], np.uint8)  # uint8: 1 - y must not wrap around
    ours = L.binary_cross_entropy(y, z, from_logits=True)
    ref = (
        F.binary_cross_entropy_with_logits(_t(z), _t(y.astype(np.float32)), reduction="none")
        .numpy()
        .mean(-1)
    )
    assert np.isfinite(np.asarray(ours)).all()
    _close(ours, ref, rtol=1e-5)
    grad = jax.grad(lambda z: L.binary_cross_entropy(y, z, from_logits=True, reduction="sum"))(
        jnp.asarray(z)
    )
    assert np.isfinite(np.asarray(grad)).all()


def test_bce_higher_rank(torch):
    F = torch.nn.functional
    y = (RNG.random((2, 3, 4)) > 0.5).astype(np.float32)
    z = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    ref = F.binary_cross_entropy_with_logits(_t(z), _t(y), reduction="none").numpy().mean(-1)
    _close(L.binary_cross_entropy(y, z, from_logits=True), ref)


# ---------------------------------------------------------------------------------------------
# categorical_cross_entropy

LABELS = np.array([0, 2, 1, 2, 3])
LOGITS = RNG.normal(scale=2.0, size=(5, 4)).astype(np.float32)
PROBS = np.asarray(jax.nn.softmax(LOGITS, axis=-1))
ONE_HOT = np.eye(4, dtype=np.float32)[LABELS]
CLASS_WEIGHTS = [0.5, 2.0, 1.0, 3.0]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cce_probabilities_vs_torch(reduction, torch):
    F = torch.nn.functional
    ref = F.nll_loss(torch.log(_t(PROBS)), _t(LABELS), reduction=reduction).numpy()
    _close(L.categorical_cross_entropy(ONE_HOT, PROBS, reduction=reduction), ref)
    _close(L.categorical_cross_entropy(LABELS, PROBS, sparse=True, reduction=reduction), ref)
    _close(
        L.categorical_cross_entropy(LABELS[:, None], PROBS, sparse=True, reduction=reduction), ref
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cce_logits_vs_torch(reduction, torch):
    F = torch.nn.functional
    ref = F.cross_entropy(_t(LOGITS), _t(LABELS), reduction=reduction).numpy()
    _close(L.categorical_cross_entropy(ONE_HOT, LOGITS, from_logits=True, reduction=reduction), ref)
    _close(
        L.categorical_cross_entropy(
            LABELS, LOGITS, from_logits=True, sparse=True, reduction=reduction
        ),
        ref,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("from_logits", [False, True])
def test_cce_class_weights_vs_torch(reduction, sparse, from_logits, torch):
    F = torch.nn.functional
    w = torch.tensor(CLASS_WEIGHTS)
    ref = F.cross_entropy(_t(LOGITS), _t(LABELS), weight=w, reduction=reduction).numpy()
    y = LABELS if sparse else ONE_HOT
    x = LOGITS if from_logits else PROBS
    ours = L.categorical_cross_entropy(
        y,
        x,
        class_weights=CLASS_WEIGHTS,
        sparse=sparse,
        from_logits=from_logits,
        reduction=reduction,
    )
    _close(ours, ref, rtol=1e-5)


def test_cce_soft_targets_vs_torch(torch):
    F = torch.nn.functional
    soft = np.asarray(jax.nn.softmax(RNG.normal(size=(5, 4)), axis=-1), np.float32)
    ref = F.cross_entropy(_t(LOGITS), _t(soft), reduction="none").numpy()
    _close(L.categorical_cross_entropy(soft, LOGITS, from_logits=True), ref)
    _close(L.categorical_cross_entropy(soft, PROBS), ref, rtol=1e-5)


def test_cce_sequence_predictions_vs_torch(torch):
    F = torch.nn.functional
    logits = RNG.normal(size=(2, 3, 4)).astype(np.float32)  # (B, T, C)
    labels = RNG.integers(0, 4, (2, 3))
    ref = F.cross_entropy(_t(logits).permute(0, 2, 1), _t(labels), reduction="none").numpy()
    _close(L.categorical_cross_entropy(labels, logits, sparse=True, from_logits=True), ref)


def test_cce_axon_doc_values_and_zero_probabilities():
    y_true = np.array([[0, 1, 0], [0, 0, 1]], np.int8)
    y_pred = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], np.float32)
    _close(L.categorical_cross_entropy(y_true, y_pred), [0.051293306, 2.3025851], rtol=1e-6)
    _close(L.categorical_cross_entropy(y_true, y_pred, reduction="mean"), 1.1769392, rtol=1e-6)
    # 0 * log(0) = 0, with a finite gradient.
    grad = jax.grad(lambda p: L.categorical_cross_entropy(y_true, p, reduction="sum"))(
        jnp.asarray(y_pred)
    )
    assert np.isfinite(np.asarray(grad)).all()


def test_cce_errors():
    with pytest.raises(ValueError, match="class_weights"):
        L.categorical_cross_entropy(ONE_HOT, PROBS, class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="sparse=True"):
        L.categorical_cross_entropy(LABELS[:4], PROBS, sparse=True)
    with pytest.raises(ValueError, match="same shape"):
        L.categorical_cross_entropy(LABELS, PROBS)


# ---------------------------------------------------------------------------------------------
# Other classification losses

Y_PM = np.where(RNG.random((4, 3)) > 0.5, 1.0, -1.0).astype(np.float32)
X = RNG.normal(size=(4, 3)).astype(np.float32)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_categorical_hinge_vs_numpy(reduction):
    y, p = _np(ONE_HOT), _np(PROBS)
    per = np.maximum(0.0, ((1 - y) * p).max(-1) - (y * p).sum(-1) + 1)
    _close(L.categorical_hinge(ONE_HOT, PROBS, reduction=reduction), _reduce_np(per, reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_hinge_vs_numpy(reduction):
    per = np.maximum(0.0, 1 - _np(Y_PM) * _np(X)).mean(-1)
    _close(L.hinge(Y_PM, X, reduction=reduction), _reduce_np(per, reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_kl_divergence_vs_torch(reduction, torch):
    F = torch.nn.functional
    target = np.asarray(jax.nn.softmax(RNG.normal(size=(5, 4)), axis=-1), np.float32)
    ref = F.kl_div(torch.log(_t(PROBS)), _t(target), reduction="none").numpy().sum(-1)
    _close(
        L.kl_divergence(target, PROBS, reduction=reduction),
        _reduce_np(ref, reduction),
        rtol=1e-4,
        atol=1e-6,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_margin_ranking_vs_torch(reduction, margin, torch):
    F = torch.nn.functional
    y = Y_PM[:, 0]
    p1, p2 = X[:, 0], X[:, 1]
    ref = F.margin_ranking_loss(_t(p1), _t(p2), _t(y), margin=margin, reduction=reduction).numpy()
    _close(L.margin_ranking(y, (p1, p2), margin=margin, reduction=reduction), ref)


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_soft_margin_vs_torch(reduction, torch):
    F = torch.nn.functional
    if reduction == "mean":
        ref = F.soft_margin_loss(_t(X), _t(Y_PM), reduction="mean").numpy()
    else:
        ref = F.soft_margin_loss(_t(X), _t(Y_PM), reduction="none").numpy().mean(-1)
    _close(L.soft_margin(Y_PM, X, reduction=reduction), ref)
    # per-sample (not summed over the batch, as Axon does)
    assert L.soft_margin(Y_PM, X).shape == (4,)


def test_soft_margin_stable():
    out = L.soft_margin(np.array([[1.0, -1.0]]), np.array([[-200.0, 200.0]]))
    _close(out, [200.0])


# ---------------------------------------------------------------------------------------------
# Regression losses

Y_REG = RNG.normal(size=(4, 3)).astype(np.float32)
P_REG = RNG.normal(size=(4, 3)).astype(np.float32)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mae_mse_vs_torch(reduction, torch):
    F = torch.nn.functional
    ref_l1 = F.l1_loss(_t(P_REG), _t(Y_REG), reduction="none").numpy().mean(-1)
    ref_l2 = F.mse_loss(_t(P_REG), _t(Y_REG), reduction="none").numpy().mean(-1)
    _close(L.mean_absolute_error(Y_REG, P_REG, reduction=reduction), _reduce_np(ref_l1, reduction))
    _close(L.mean_squared_error(Y_REG, P_REG, reduction=reduction), _reduce_np(ref_l2, reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_log_cosh_vs_numpy(reduction):
    per = np.log(np.cosh(_np(P_REG) - _np(Y_REG))).mean(-1)
    _close(L.log_cosh(Y_REG, P_REG, reduction=reduction), _reduce_np(per, reduction))


def test_log_cosh_no_overflow():
    # cosh(500) overflows; log cosh(d) = |d| - log 2 + log(1 + exp(-2|d|)).
    out = L.log_cosh(np.array([[0.0, 0.0]]), np.array([[500.0, -500.0]]))
    _close(out, [500.0 - math.log(2.0)], rtol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_poisson_vs_torch(reduction, torch):
    F = torch.nn.functional
    rate = RNG.uniform(0.1, 3.0, (4, 3)).astype(np.float32)
    counts = RNG.poisson(1.5, (4, 3)).astype(np.float32)
    ref = F.poisson_nll_loss(
        _t(rate), _t(counts), log_input=False, full=False, eps=1e-7, reduction="none"
    )
    _close(
        L.poisson(counts, rate, reduction=reduction), _reduce_np(ref.numpy().mean(-1), reduction)
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [1.0, 0.3])
def test_huber_vs_torch(reduction, delta, torch):
    F = torch.nn.functional
    ref = F.huber_loss(_t(P_REG), _t(Y_REG), delta=delta, reduction="none").numpy().mean(-1)
    _close(L.huber(Y_REG, P_REG, delta=delta, reduction=reduction), _reduce_np(ref, reduction))
    if reduction == "mean":
        _close(
            L.huber(Y_REG, P_REG, delta=delta, reduction="mean"),
            F.huber_loss(_t(P_REG), _t(Y_REG), delta=delta).item(),
        )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cosine_similarity_vs_torch(reduction, torch):
    F = torch.nn.functional
    ref = F.cosine_similarity(_t(Y_REG), _t(P_REG), dim=1).numpy()
    _close(L.cosine_similarity(Y_REG, P_REG, reduction=reduction), _reduce_np(ref, reduction))


def test_cosine_similarity_axes_and_eps(torch):
    F = torch.nn.functional
    a = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    b = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    ref = (_np(a) * _np(b)).sum((1, 2)) / (
        np.sqrt((_np(a) ** 2).sum((1, 2))) * np.sqrt((_np(b) ** 2).sum((1, 2)))
    )
    _close(L.cosine_similarity(a, b, axes=[1, 2]), ref)
    ref_last = F.cosine_similarity(_t(a), _t(b), dim=-1).numpy()
    _close(L.cosine_similarity(a, b, axes=-1), ref_last)
    # Zero vector: denominator is eps, value 0, gradient finite.
    zero = jnp.zeros((1, 3))
    _close(L.cosine_similarity(zero, jnp.ones((1, 3))), [0.0])
    g = jax.grad(lambda x: L.cosine_similarity(x, jnp.ones((1, 3)), reduction="sum"))(zero)
    assert np.isfinite(np.asarray(g)).all()
    # eps bounds the denominator: tiny vectors give dot / eps.
    small = jnp.full((1, 2), 1e-4)
    _close(L.cosine_similarity(small, small, eps=1e-3), [2e-8 / 1e-3], rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# CTC

CTC_B, CTC_T, CTC_C = 3, 9, 5
CTC_LOGP = np.asarray(
    jax.nn.log_softmax(RNG.normal(size=(CTC_B, CTC_T, CTC_C)), axis=-1), np.float32
)
CTC_TARGETS = np.array([[1, 2, 2, 3], [4, 1, 0, 0], [3, 3, 3, 0]], np.int64)  # 0-padded
CTC_TARGET_LENGTHS = np.array([4, 2, 3])
CTC_INPUT_LENGTHS = np.array([9, 6, 7])
CTC_FULL = np.array([CTC_T] * CTC_B)

# One compiled function shared by the CTC tests (same shapes): compiling the scan is
# what costs time here.
_ctc = jax.jit(
    L.connectionist_temporal_classification,
    static_argnames=("blank", "reduction", "zero_infinity"),
)


def _torch_ctc(log_probs, targets, input_lengths, target_lengths, **kw):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    return F.ctc_loss(
        _t(log_probs).permute(1, 0, 2),
        _t(targets),
        _t(input_lengths),
        _t(target_lengths),
        **kw,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ctc_vs_torch(reduction, torch):
    ref = _torch_ctc(CTC_LOGP, CTC_TARGETS, CTC_FULL, CTC_TARGET_LENGTHS, reduction=reduction)
    ours = _ctc((CTC_TARGET_LENGTHS, CTC_TARGETS), CTC_LOGP, reduction=reduction)
    _close(ours, ref.numpy(), rtol=1e-5, atol=1e-5)


def test_ctc_default_input_lengths_eager(torch):
    ref = _torch_ctc(CTC_LOGP, CTC_TARGETS, CTC_FULL, CTC_TARGET_LENGTHS, reduction="none")
    ours = L.connectionist_temporal_classification((CTC_TARGET_LENGTHS, CTC_TARGETS), CTC_LOGP)
    _close(ours, ref.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ctc_input_lengths_and_blank_vs_torch(reduction, torch):
    blank = 2
    targets = np.where(CTC_TARGETS == 2, 0, CTC_TARGETS)  # no label equals the blank
    ref = _torch_ctc(
        CTC_LOGP, targets, CTC_INPUT_LENGTHS, CTC_TARGET_LENGTHS, blank=blank, reduction=reduction
    )
    ours = _ctc(
        (CTC_TARGET_LENGTHS, targets),
        CTC_LOGP,
        blank=blank,
        input_lengths=CTC_INPUT_LENGTHS,
        reduction=reduction,
    )
    _close(ours, ref.numpy(), rtol=1e-5, atol=1e-5)


def test_ctc_gradient_vs_torch(torch):
    F = torch.nn.functional
    lp = _t(CTC_LOGP).permute(1, 0, 2).detach().requires_grad_(True)
    F.ctc_loss(
        lp, _t(CTC_TARGETS), _t(CTC_INPUT_LENGTHS), _t(CTC_TARGET_LENGTHS), reduction="sum"
    ).backward()
    ref = lp.grad.permute(1, 0, 2).numpy()

    def f(x):
        return L.connectionist_temporal_classification(
            (CTC_TARGET_LENGTHS, CTC_TARGETS), x, input_lengths=CTC_INPUT_LENGTHS, reduction="sum"
        )

    ours = jax.jit(jax.grad(f))(jnp.asarray(CTC_LOGP))
    _close(ours, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("zero_infinity", [False, True])
def test_ctc_infeasible_like_torch(zero_infinity, torch):
    # Sequence 0: target [1, 1] needs 3 frames (a blank between the repeats); give it 2.
    targets = np.array([[1, 1, 0, 0], [2, 3, 0, 0], [1, 1, 2, 0]])
    lengths = np.array([2, 2, 3])
    inputs = np.array([2, 2, 4])
    ref = _torch_ctc(
        CTC_LOGP, targets, inputs, lengths, reduction="none", zero_infinity=zero_infinity
    ).numpy()
    ours = np.asarray(
        _ctc((lengths, targets), CTC_LOGP, input_lengths=inputs, zero_infinity=zero_infinity)
    )
    assert ref[0] == (0.0 if zero_infinity else np.inf)
    np.testing.assert_array_equal(ours[0], ref[0])
    _close(ours[1:], ref[1:], rtol=1e-5)


def test_ctc_bad_shapes():
    with pytest.raises(ValueError, match="batch, time, classes"):
        L.connectionist_temporal_classification((CTC_TARGET_LENGTHS, CTC_TARGETS), CTC_LOGP[0])
    with pytest.raises(ValueError, match="target_lengths"):
        L.connectionist_temporal_classification((CTC_TARGET_LENGTHS[:2], CTC_TARGETS), CTC_LOGP)


# ---------------------------------------------------------------------------------------------
# Label smoothing, options, registry


@pytest.mark.parametrize("smoothing", [0.1, 0.3])
def test_label_smoothing_vs_torch(smoothing, torch):
    F = torch.nn.functional
    ref = F.cross_entropy(_t(LOGITS), _t(LABELS), label_smoothing=smoothing).item()
    loss = L.label_smoothing(L.categorical_cross_entropy, smoothing=smoothing)
    _close(loss(ONE_HOT, LOGITS, from_logits=True, reduction="mean"), ref)
    smoothed = L.apply_label_smoothing(ONE_HOT, LOGITS, smoothing=smoothing)
    _close(smoothed, ONE_HOT * (1 - smoothing) + smoothing / 4)


ELEMENTWISE = [
    L.binary_cross_entropy,
    L.categorical_cross_entropy,
    L.categorical_hinge,
    L.hinge,
    L.kl_divergence,
    L.log_cosh,
    L.soft_margin,
    L.mean_absolute_error,
    L.mean_squared_error,
    L.cosine_similarity,
    L.poisson,
    L.huber,
]


@pytest.mark.parametrize("fn", ELEMENTWISE, ids=lambda f: f.__name__)
def test_shape_mismatch_and_bad_reduction_raise(fn):
    with pytest.raises(ValueError, match=r"same shape.*\(4,\).*\(4, 1\)"):
        fn(np.zeros(4), np.full((4, 1), 0.5))
    with pytest.raises(ValueError, match="'none', 'mean', 'sum'.*'meen'"):
        fn(np.zeros((2, 2)), np.full((2, 2), 0.5), reduction="meen")


def test_losses_jit_and_grad():
    f = jax.jit(lambda y, p: L.mean_squared_error(y, p, reduction="mean"))
    g = jax.grad(lambda p: L.mean_squared_error(Y_REG, p, reduction="mean"))(jnp.asarray(P_REG))
    _close(f(Y_REG, P_REG), np.mean((_np(P_REG) - _np(Y_REG)) ** 2))
    _close(g, 2 * (_np(P_REG) - _np(Y_REG)) / P_REG.size)


def test_get():
    assert L.get("huber") is L.huber
    assert L.get(L.poisson) is L.poisson
    assert set(L.LOSSES) >= {
        "binary_cross_entropy",
        "soft_margin",
        "connectionist_temporal_classification",
    }
    with pytest.raises(ValueError, match="'binary_cross_entropy', 'categorical_cross_entropy'"):
        L.get("crossentropy")
    with pytest.raises(TypeError):
        L.get(3)
