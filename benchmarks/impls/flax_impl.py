"""Flax, both APIs, written the way their documentation shows: Linen modules with a
jitted, donating optax step over ``params``/``batch_stats``; NNX modules with
``nnx.Optimizer`` and an ``nnx.jit`` step. LSTMs use ``LSTMCell`` inside ``RNN`` (the
documented default cell)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn
from flax import nnx

from benchmarks.harness import Gate, Implementation, jax_device_memory, register
from benchmarks.workloads import LEARNING_RATE, Workload


def _xent(logits: jax.Array, y: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


# --------------------------------------------------------------------------------------
# Linen


class LinenMLP(nn.Module):
    classes: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Dense(512)(x))
        x = nn.relu(nn.Dense(512)(x))
        return nn.Dense(self.classes)(x)


class LinenCNN(nn.Module):
    classes: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Conv(32, (3, 3), padding="VALID")(x))
        x = nn.relu(nn.Conv(64, (3, 3), padding="VALID")(x))
        x = nn.max_pool(x, (2, 2), (2, 2)).reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(128)(x))
        return nn.Dense(self.classes)(x)


class LinenLSTM(nn.Module):
    classes: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.RNN(nn.LSTMCell(128))(x)[:, -1]
        return nn.Dense(self.classes)(h)


class LinenBlock(nn.Module):
    width: int
    heads: int
    hidden: int

    @nn.compact
    def __call__(self, h):
        y = nn.LayerNorm(epsilon=1e-5)(h)
        h = h + nn.MultiHeadDotProductAttention(self.heads, qkv_features=self.width)(y, y)
        y = nn.LayerNorm(epsilon=1e-5)(h)
        y = nn.Dense(self.width)(nn.gelu(nn.Dense(self.hidden)(y), approximate=False))
        return h + y


class LinenTransformer(nn.Module):
    classes: int
    vocab: int
    width: int
    heads: int
    blocks: int
    hidden: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.Embed(self.vocab, self.width)(x)
        for _ in range(self.blocks):
            h = LinenBlock(self.width, self.heads, self.hidden)(h)
        h = nn.LayerNorm(epsilon=1e-5)(h).mean(axis=1)
        return nn.Dense(self.classes)(h)


class LinenBasicBlock(nn.Module):
    width: int
    stride: int

    @nn.compact
    def __call__(self, x, train: bool):
        bn = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5)
        y = nn.Conv(self.width, (3, 3), (self.stride, self.stride), padding="SAME", use_bias=False)(x)
        y = nn.relu(bn()(y))
        y = nn.Conv(self.width, (3, 3), padding="SAME", use_bias=False)(y)
        y = bn()(y)
        if self.stride != 1 or x.shape[-1] != self.width:
            x = nn.Conv(self.width, (1, 1), (self.stride, self.stride), padding="VALID", use_bias=False)(x)
            x = bn()(x)
        return nn.relu(x + y)


class LinenResNet18(nn.Module):
    classes: int
    widths: tuple[int, ...]

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(self.widths[0], (3, 3), padding="SAME", use_bias=False)(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x))
        for i, c in enumerate(self.widths):
            for j in range(2):
                x = LinenBasicBlock(c, 2 if (i > 0 and j == 0) else 1)(x, train)
        return nn.Dense(self.classes)(x.mean(axis=(1, 2)))


def linen_model(w: Workload) -> nn.Module:
    o = w.options
    return {
        "mlp": lambda: LinenMLP(w.num_classes),
        "cnn": lambda: LinenCNN(w.num_classes),
        "lstm": lambda: LinenLSTM(w.num_classes),
        "transformer": lambda: LinenTransformer(w.num_classes, w.vocab, o.get("width", 0), o.get("heads", 0),
                                                o.get("blocks", 0), o.get("mlp", 0)),
        "resnet18": lambda: LinenResNet18(w.num_classes, tuple(o.get("widths", ()))),
    }[w.name]()


@register("flax_linen")
class FlaxLinen(Implementation):
    framework = "flax"

    def setup(self) -> None:
        self.model = model = linen_model(self.w)
        x, y = self.batches[0]
        variables = model.init(jax.random.PRNGKey(0), jnp.asarray(x), train=False)
        self.params = variables["params"]
        self.batch_stats = variables.get("batch_stats", {})
        tx = optax.adam(LEARNING_RATE)
        self.opt_state = tx.init(self.params)
        has_stats = bool(self.batch_stats)

        @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
        def step(params, batch_stats, opt_state, x, y):
            def objective(p):
                if has_stats:
                    logits, updates = model.apply({"params": p, "batch_stats": batch_stats}, x, train=True,
                                                  mutable=["batch_stats"])
                    return _xent(logits, y), updates["batch_stats"]
                return _xent(model.apply({"params": p}, x, train=True), y), batch_stats

            (value, new_stats), grads = jax.value_and_grad(objective, has_aux=True)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), new_stats, opt_state, value

        self.step = step
        self.params, self.batch_stats, self.opt_state, self.value = step(self.params, self.batch_stats, self.opt_state, x, y)
        jax.block_until_ready(self.value)

    def train_windows(self, n: int, steps: int, gate: Gate) -> None:
        batches, step = self.batches, self.step
        for _ in range(n):
            gate.start()
            p, s, o = self.params, self.batch_stats, self.opt_state
            for i in range(steps):
                x, y = batches[i % len(batches)]
                p, s, o, value = step(p, s, o, x, y)
            jax.block_until_ready(value)
            self.params, self.batch_stats, self.opt_state, self.value = p, s, o, value
            gate.stop()

    def predict_fn(self) -> Callable[[], Any] | None:
        model = self.model
        forward = jax.jit(lambda v, x: model.apply(v, x, train=False))
        variables = {"params": self.params, **({"batch_stats": self.batch_stats} if self.batch_stats else {})}
        x = self.example
        return lambda: forward(variables, x).block_until_ready()

    def loss(self) -> float:
        return float(self.value)

    def device_memory(self) -> dict[str, Any]:
        return jax_device_memory()


# --------------------------------------------------------------------------------------
# NNX


class NnxMLP(nnx.Module):
    def __init__(self, w: Workload, rngs: nnx.Rngs):
        self.d0 = nnx.Linear(w.input_shape[0], 512, rngs=rngs)
        self.d1 = nnx.Linear(512, 512, rngs=rngs)
        self.d2 = nnx.Linear(512, w.num_classes, rngs=rngs)

    def __call__(self, x):
        return self.d2(nnx.relu(self.d1(nnx.relu(self.d0(x)))))


class NnxCNN(nnx.Module):
    def __init__(self, w: Workload, rngs: nnx.Rngs):
        h, wd, c = w.input_shape
        self.c0 = nnx.Conv(c, 32, (3, 3), padding="VALID", rngs=rngs)
        self.c1 = nnx.Conv(32, 64, (3, 3), padding="VALID", rngs=rngs)
        self.d0 = nnx.Linear(((h - 4) // 2) * ((wd - 4) // 2) * 64, 128, rngs=rngs)
        self.d1 = nnx.Linear(128, w.num_classes, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.c1(nnx.relu(self.c0(x))))
        x = nnx.max_pool(x, (2, 2), (2, 2)).reshape(x.shape[0], -1)
        return self.d1(nnx.relu(self.d0(x)))


class NnxLSTM(nnx.Module):
    def __init__(self, w: Workload, rngs: nnx.Rngs):
        self.rnn = nnx.RNN(nnx.LSTMCell(w.input_shape[-1], 128, rngs=rngs))
        self.out = nnx.Linear(128, w.num_classes, rngs=rngs)

    def __call__(self, x):
        return self.out(self.rnn(x)[:, -1])


class NnxBlock(nnx.Module):
    def __init__(self, width: int, heads: int, hidden: int, rngs: nnx.Rngs):
        self.ln0 = nnx.LayerNorm(width, epsilon=1e-5, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(heads, width, decode=False, rngs=rngs)
        self.ln1 = nnx.LayerNorm(width, epsilon=1e-5, rngs=rngs)
        self.fc0 = nnx.Linear(width, hidden, rngs=rngs)
        self.fc1 = nnx.Linear(hidden, width, rngs=rngs)

    def __call__(self, h):
        h = h + self.attn(self.ln0(h))
        return h + self.fc1(nnx.gelu(self.fc0(self.ln1(h)), approximate=False))


class NnxTransformer(nnx.Module):
    def __init__(self, w: Workload, rngs: nnx.Rngs):
        o = w.options
        self.embed = nnx.Embed(w.vocab, o["width"], rngs=rngs)
        self.blocks = nnx.List([NnxBlock(o["width"], o["heads"], o["mlp"], rngs) for _ in range(o["blocks"])])
        self.ln = nnx.LayerNorm(o["width"], epsilon=1e-5, rngs=rngs)
        self.out = nnx.Linear(o["width"], w.num_classes, rngs=rngs)

    def __call__(self, x):
        h = self.embed(x)
        for block in self.blocks:
            h = block(h)
        return self.out(self.ln(h).mean(axis=1))


class NnxBasicBlock(nnx.Module):
    def __init__(self, c_in: int, width: int, stride: int, rngs: nnx.Rngs):
        bn = functools.partial(nnx.BatchNorm, momentum=0.9, epsilon=1e-5, rngs=rngs)
        self.stride = stride
        self.c0 = nnx.Conv(c_in, width, (3, 3), (stride, stride), padding="SAME", use_bias=False, rngs=rngs)
        self.bn0 = bn(width)
        self.c1 = nnx.Conv(width, width, (3, 3), padding="SAME", use_bias=False, rngs=rngs)
        self.bn1 = bn(width)
        self.has_proj = stride != 1 or c_in != width
        if self.has_proj:
            self.proj = nnx.Conv(c_in, width, (1, 1), (stride, stride), padding="VALID", use_bias=False, rngs=rngs)
            self.bnp = bn(width)

    def __call__(self, x):
        y = nnx.relu(self.bn0(self.c0(x)))
        y = self.bn1(self.c1(y))
        if self.has_proj:
            x = self.bnp(self.proj(x))
        return nnx.relu(x + y)


class NnxResNet18(nnx.Module):
    def __init__(self, w: Workload, rngs: nnx.Rngs):
        widths = w.options["widths"]
        self.stem = nnx.Conv(w.input_shape[-1], widths[0], (3, 3), padding="SAME", use_bias=False, rngs=rngs)
        self.bn = nnx.BatchNorm(widths[0], momentum=0.9, epsilon=1e-5, rngs=rngs)
        blocks, c_in = [], widths[0]
        for i, c in enumerate(widths):
            for j in range(2):
                blocks.append(NnxBasicBlock(c_in, c, 2 if (i > 0 and j == 0) else 1, rngs))
                c_in = c
        self.blocks = nnx.List(blocks)
        self.out = nnx.Linear(c_in, w.num_classes, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.bn(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        return self.out(x.mean(axis=(1, 2)))


NNX_MODELS = {"mlp": NnxMLP, "cnn": NnxCNN, "lstm": NnxLSTM, "transformer": NnxTransformer, "resnet18": NnxResNet18}


@register("flax_nnx")
class FlaxNnx(Implementation):
    framework = "flax"

    def setup(self) -> None:
        self.model = model = NNX_MODELS[self.w.name](self.w, nnx.Rngs(0))
        self.optimizer = nnx.Optimizer(model, optax.adam(LEARNING_RATE), wrt=nnx.Param)

        @nnx.jit
        def step(model, optimizer, x, y):
            def objective(m):
                return _xent(m(x), y)

            value, grads = nnx.value_and_grad(objective)(model)
            optimizer.update(model, grads)
            return value

        self.step = step
        model.train()
        x, y = self.batches[0]
        self.value = step(model, self.optimizer, x, y)
        jax.block_until_ready(self.value)

    def train_windows(self, n: int, steps: int, gate: Gate) -> None:
        batches, step, model, optimizer = self.batches, self.step, self.model, self.optimizer
        model.train()
        for _ in range(n):
            gate.start()
            for i in range(steps):
                x, y = batches[i % len(batches)]
                value = step(model, optimizer, x, y)
            jax.block_until_ready(value)
            self.value = value
            gate.stop()

    def predict_fn(self) -> Callable[[], Any] | None:
        model = self.model
        model.eval()
        forward = nnx.jit(lambda m, x: m(x))
        x = self.example
        return lambda: forward(model, x).block_until_ready()

    def loss(self) -> float:
        return float(self.value)

    def device_memory(self) -> dict[str, Any]:
        return jax_device_memory()
