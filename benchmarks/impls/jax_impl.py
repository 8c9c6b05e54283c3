"""Hand-written JAX + optax: ``jax`` is a jitted train step (buffers donated) called
once per batch, the floor of per-step overhead; ``jax_scan`` runs a whole window of
steps inside one jitted ``lax.scan`` over batches already on the device, the compute
floor."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.harness import Gate, Implementation, cycle, jax_device_memory, register
from benchmarks.impls.jax_models import MODELS
from benchmarks.workloads import LEARNING_RATE


def _train_step(apply: Callable[..., Any], tx: optax.GradientTransformation) -> Callable[..., Any]:
    def step(params, state, opt_state, x, y):
        def objective(p):
            logits, new_state = apply(p, state, x, True)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), new_state

        (value, new_state), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_state, opt_state, value

    return step


class _JaxBase(Implementation):
    framework = "jax"

    def _init(self) -> Callable[..., Any]:
        init, self.apply = MODELS[self.w.name]
        self.params, self.state = init(self.w, jax.random.PRNGKey(0))
        self.tx = optax.adam(LEARNING_RATE)
        self.opt_state = self.tx.init(self.params)
        return _train_step(self.apply, self.tx)

    def device_memory(self) -> dict[str, Any]:
        return jax_device_memory()

    def loss(self) -> float:
        return float(self.value)


@register("jax")
class HandWrittenJax(_JaxBase):
    """A jitted, donating train step called once per batch."""

    def setup(self) -> None:
        self.step = jax.jit(self._init(), donate_argnums=(0, 1, 2))
        x, y = self.batches[0]
        self.params, self.state, self.opt_state, self.value = self.step(self.params, self.state, self.opt_state, x, y)
        jax.block_until_ready(self.value)

    def train_windows(self, n: int, steps: int, gate: Gate) -> None:
        batches, step = self.batches, self.step
        for _ in range(n):
            gate.start()
            p, s, o = self.params, self.state, self.opt_state
            for i in range(steps):
                x, y = batches[i % len(batches)]
                p, s, o, value = step(p, s, o, x, y)
            jax.block_until_ready(value)
            self.params, self.state, self.opt_state, self.value = p, s, o, value
            gate.stop()

    def predict_fn(self) -> Callable[[], Any] | None:
        forward = jax.jit(lambda p, s, x: self.apply(p, s, x, False)[0])
        x = self.example
        return lambda: forward(self.params, self.state, x).block_until_ready()


@register("jax_scan")
class HandWrittenJaxScan(_JaxBase):
    """A window of steps as one jitted ``lax.scan`` over stacked device-resident batches.
    Its time to first step is the compilation and first run of a whole window."""

    def setup(self) -> None:
        step = self._init()

        @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
        def window(params, state, opt_state, xs, ys):
            def body(carry, batch):
                p, s, o, value = step(*carry, *batch)
                return (p, s, o), value

            # XLA:CPU runs convolutions inside a rolled loop as naive loops (jax-ml/jax#12868);
            # unrolling keeps the library convolutions, as axon's steps_per_execution does on CPU.
            unroll = jax.default_backend() == "cpu" and self.w.name in ("cnn", "resnet18")
            (p, s, o), values = jax.lax.scan(body, (params, state, opt_state), (xs, ys), unroll=unroll)
            return p, s, o, values[-1]

        self.window = window
        self._stacked: dict[int, tuple[jax.Array, jax.Array]] = {}
        self._run(self.w.steps_per_window)

    def _run(self, steps: int) -> None:
        if steps not in self._stacked:
            xs, ys = zip(*cycle(self.batches, steps))
            self._stacked[steps] = (jnp.asarray(np.stack(xs)), jnp.asarray(np.stack(ys)))
        xs, ys = self._stacked[steps]
        self.params, self.state, self.opt_state, self.value = self.window(self.params, self.state, self.opt_state, xs, ys)
        jax.block_until_ready(self.value)

    def train_windows(self, n: int, steps: int, gate: Gate) -> None:
        for _ in range(n):
            if steps not in self._stacked:
                self._run(steps)  # compile for this length outside the window
            gate.start()
            self._run(steps)
            gate.stop()

    def predict_fn(self) -> Callable[[], Any] | None:
        return None  # the same forward as "jax"
