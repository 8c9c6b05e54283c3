"""Issue 10.1: one user iterator (Axon's ``Stream.repeatedly`` pattern) serves every epoch;
the loop never closes it and never reads a batch it does not use."""

import numpy as np
import pytest

import axon


class CountingGenerator:
    """An endless generator of batches that records how many were pulled and whether it
    was closed."""

    def __init__(self, batch=(0, 0), limit=None):
        self.pulled = 0
        self.closed = False
        self.limit = limit
        self.gen = self._run(batch)

    def _run(self, batch):
        try:
            while self.limit is None or self.pulled < self.limit:
                self.pulled += 1
                yield batch
        finally:
            self.closed = True


def counter_loop():
    return axon.loop.loop(lambda s, b: s + 1, lambda b, init: 0)


@pytest.mark.parametrize("k", [1, 3])
def test_endless_generator_with_iterations_serves_every_epoch(k):
    source = CountingGenerator()
    state = counter_loop().run(source.gen, epochs=3, iterations=4, steps_per_execution=k, progress=False)
    assert int(state.step_state) == 12
    assert state.epoch == 3 and state.status == "completed"
    assert source.pulled == 12
    assert not source.closed
    # the loop left it usable: the next batch is still there
    assert next(source.gen) == (0, 0) and source.pulled == 13


def test_trainer_on_an_endless_generator():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 2)).astype(np.float32)
    source = CountingGenerator((x, x @ np.ones((2, 1), np.float32)))
    model = axon.input("x", shape=(None, 2)).pipe(axon.dense, 1)
    final = axon.loop.trainer(model, "mean_squared_error", "sgd", log=0).run(
        source.gen, epochs=3, iterations=5, return_state=True
    )
    assert sorted(final.history) == [0, 1, 2]
    assert source.pulled == 15 and not source.closed


def test_halted_epoch_loses_no_batch_of_a_one_shot_iterator():
    seen = []

    def step(s, b):
        seen.append(int(b))
        return s

    def halt_after_two(state):
        return ("halt_epoch" if state.iteration == 2 else "continue"), state

    lp = axon.loop.loop(step, lambda b, init: 0).handle_event("iteration_completed", halt_after_two)
    lp.run(iter(range(100)), epochs=3, iterations=5, jit=False, progress=False)
    assert seen == [0, 1, 2, 3, 4, 5]


def test_exhausted_one_shot_iterator_message_does_not_blame_the_data():
    source = CountingGenerator(limit=6)
    with pytest.raises(ValueError, match="ran out: it yielded no batch for epoch 2, after 6 batch") as info:
        counter_loop().run(source.gen, epochs=3, iterations=3, progress=False)
    assert "iterations=" in str(info.value)
    assert source.pulled == 6
