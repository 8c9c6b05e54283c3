"""axon, three ways: ``axon.loop.trainer(...).run`` (``axon_trainer``), the same with
``steps_per_execution=k`` (``axon_spe``), and ``axon.build`` inside the user's own
``jax.jit`` train step with optax (``axon_build``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import optax

import axon
from benchmarks.harness import Gate, Implementation, cycle, jax_device_memory, register
from benchmarks.impls.axon_models import MODELS
from benchmarks.workloads import LEARNING_RATE


def loss_fn(y_true: jax.Array, logits: jax.Array) -> jax.Array:
    """Softmax cross-entropy on integer labels, mean over the batch."""
    return axon.losses.categorical_cross_entropy(y_true, logits, from_logits=True, sparse=True, reduction="mean")


class _AxonBase(Implementation):
    framework = "axon"

    def _template(self, batch: int) -> jax.ShapeDtypeStruct:
        return axon.template((batch, *self.w.input_shape), self.w.dtype)

    def predict_fn(self) -> Callable[[], Any] | None:
        init_fn, predict_fn = axon.build(self.model)
        state = init_fn(self._template(1))
        x = self.example
        return lambda: predict_fn(state, x).block_until_ready()

    def device_memory(self) -> dict[str, Any]:
        return jax_device_memory()


@register("axon_trainer")
class AxonTrainer(_AxonBase):
    """``axon.loop.trainer(model, loss, adam, log=0).run(batches, epochs=n)``; one epoch is
    one timing window (handlers on ``epoch_started``/``epoch_completed`` open and close it)."""

    steps_per_execution = 1

    def setup(self) -> None:
        self._gate: Gate | None = None
        self.model = MODELS[self.w.name](self.w)

        def started(state):
            if self._gate is not None:
                self._gate.start()
            return "continue", state

        def completed(state):
            if self._gate is not None:
                self._gate.stop()
            return "continue", state

        self.loop = (
            axon.loop.trainer(self.model, loss_fn, axon.optimizers.adam(LEARNING_RATE), log=0)
            .handle_event("epoch_started", started)
            .handle_event("epoch_completed", completed)
        )
        k = self.steps_per_execution
        self.result = self.loop.run(cycle(self.batches, k), epochs=1, steps_per_execution=k, return_state=True)
        self.state = jax.block_until_ready(self.result.step_state["model_state"])

    def train_windows(self, n: int, steps: int, gate: Gate) -> None:
        self._gate = gate
        try:
            self.result = self.loop.run(
                cycle(self.batches, steps), self.state, epochs=n,
                steps_per_execution=self.steps_per_execution, return_state=True,
            )
        finally:
            self._gate = None
        self.state = self.result.step_state["model_state"]

    def predict_fn(self) -> Callable[[], Any] | None:
        return None  # measured once, by axon_build

    def loss(self) -> float:
        return float(self.result.step_state["loss"])


@register("axon_spe")
class AxonTrainerSPE(AxonTrainer):
    """The trainer with ``steps_per_execution=k`` (k steps per compiled call, ``lax.scan``)."""

    def __init__(self, workload: Any):
        super().__init__(workload)
        self.steps_per_execution = workload.spe


@register("axon_build")
class AxonBuild(_AxonBase):
    """``axon.build(model, mode="train")`` and the user's own jitted optax step."""

    def setup(self) -> None:
        self.model = MODELS[self.w.name](self.w)
        init_fn, predict_fn = axon.build(self.model, mode="train")
        tx = optax.adam(LEARNING_RATE)

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def step(state: axon.ModelState, opt_state: Any, x: jax.Array, y: jax.Array):
            params = state.trainable_parameters()

            def objective(p):
                out = predict_fn(state.update(p), x)
                return loss_fn(y, out.prediction), out.state

            (value, layer_state), grads = jax.value_and_grad(objective, has_aux=True)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return state.update(optax.apply_updates(params, updates), layer_state), opt_state, value

        self.step = step
        self.state = init_fn(self._template(self.w.batch_size))
        self.opt_state = tx.init(self.state.trainable_parameters())
        x, y = self.batches[0]
        self.state, self.opt_state, self.value = step(self.state, self.opt_state, x, y)
        jax.block_until_ready(self.value)

    def train_windows(self, n: int, steps: int, gate: Gate) -> None:
        batches, step = self.batches, self.step
        for _ in range(n):
            gate.start()
            state, opt_state = self.state, self.opt_state
            for i in range(steps):
                x, y = batches[i % len(batches)]
                state, opt_state, value = step(state, opt_state, x, y)
            jax.block_until_ready(value)
            self.state, self.opt_state, self.value = state, opt_state, value
            gate.stop()

    def loss(self) -> float:
        return float(self.value)
