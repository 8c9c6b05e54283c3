"""Make the legacy model file of ``tests/test_registry.py`` with an OLD release of axon.

The files in this folder were written by axon at commit ``df7f6d6`` (the last release
whose saved files name ops by module path, e.g. ``axon.api.conv.separable_conv2d_op``
and initializers by bare factory names such as ``"variance_scaling"``). They are an
independent reference: the expected prediction was computed by that release, not by the
code under test. To remake them (only ever with that commit)::

    git worktree add /tmp/axon-old df7f6d6
    PYTHONPATH=/tmp/axon-old/src python tests/data/make_legacy_model.py tests/data
    git worktree remove /tmp/axon-old

Writes ``legacy_model_df7f6d6.axon`` (model and state), ``legacy_model_inputs.npz`` (the
inputs) and ``legacy_model_expected.npy`` (the inference prediction on those inputs).
"""

import pathlib
import sys

import numpy as np


def make_model(axon):
    """Many op families: conv + batch_norm + max_pool, separable_conv2d, dense with an
    activation, embedding + lstm + layer_norm, dropout, initializers with options, a
    namespace and a shared block."""
    inits = axon.initializers
    img = axon.input("image", shape=(None, 6, 6, 2))
    x = axon.conv(img, 3, kernel_size=3, padding="same", activation="relu",
                  kernel_initializer=inits.variance_scaling(scale=2.0, mode="fan_out", distribution="uniform"))
    x = axon.batch_norm(x)
    x = axon.max_pool(x, kernel_size=2)
    x = axon.separable_conv2d(x, 2, kernel_size=2)
    x = axon.flatten(x)
    x = axon.dense(x, 4, activation="tanh", kernel_initializer=inits.uniform(scale=0.1), name="image_head")
    x = axon.namespace(x, "vision")

    ids = axon.input("tokens", shape=(None, 5))
    s = axon.embedding(ids, 10, 3)
    seq, (_, h) = axon.lstm(s, 4)
    s = axon.layer_norm(h)
    s = axon.dropout(s, rate=0.5)
    s = axon.add(s, axon.global_avg_pool(seq))

    shared = axon.block(lambda t: axon.dense(t, 4, activation="relu", bias_initializer=inits.full(0.1)))
    joined = axon.add(shared(x), shared(s))
    return axon.dense(joined, 2, activation="softmax", kernel_initializer="he_normal")


def main(out_dir: str) -> None:
    import axon

    out = pathlib.Path(out_dir)
    model = make_model(axon)
    rng = np.random.default_rng(0)
    inputs = {
        "image": rng.normal(size=(2, 6, 6, 2)).astype(np.float32),
        "tokens": np.array([[1, 2, 3, 4, 0], [9, 8, 7, 0, 0]], np.int32),
    }
    templates = {k: axon.template(v.shape, v.dtype) for k, v in inputs.items()}
    state = axon.init(model, templates, seed=7)
    expected = np.asarray(axon.predict(model, state, inputs))
    axon.save(out / "legacy_model_df7f6d6.axon", model, state)
    np.savez(out / "legacy_model_inputs.npz", **inputs)
    np.save(out / "legacy_model_expected.npy", expected)
    print(axon.__file__, expected)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(pathlib.Path(__file__).parent))
