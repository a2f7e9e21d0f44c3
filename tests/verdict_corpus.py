"""The verdict-quality corpus: planted-bug layers (each must FAIL at exactly its row) and correct
networks that are hard on a checker (kinks, pool ties, float32, gradients that are exactly zero),
which must never FAIL. Shared by tests/test_check_verdict_corpus.py and benchmarks/verdict_quality.py."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradcheck_cli import register
from gradcheck_cli.layers.activations import ELU, GELU, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from gradcheck_cli.layers.classification_losses import (BinaryCrossEntropy, BinaryCrossEntropyWithLogits,
                                                        SoftmaxCrossEntropy)
from gradcheck_cli.layers.dense import Dense
from gradcheck_cli.layers.loss_base import scale as _scale
from gradcheck_cli.layers.regression_losses import MSE
from gradcheck_cli.layers.softmax import Softmax


@dataclass(frozen=True)
class Mutant:
    name: str           # registered type name
    category: str
    layers: str         # YAML flow list of layers; the mutant stands where the spec puts it
    loss: str
    row: tuple[str, str]
    layout: str = "rows"
    input: int = 4


def _mutant(name: str, base: type, **methods):
    cls = type(f"Mutant_{name}", (base,), dict(methods, __doc__=f"{name}: a planted bug."))
    return register(name)(cls)


# -- transposes ------------------------------------------------------------------------------
def _dense_rows_dW_T(self, dout, cache):
    x, W = cache, self.params["W"]
    return dout @ W.T, {"W": (x.T @ dout).T, "b": dout.sum(axis=0)}


def _dense_cols_dW_T(self, dout, cache):
    x, W = cache, self.params["W"]
    return W.T @ dout, {"W": x @ dout.T, "b": dout.sum(axis=-1, keepdims=True)}


def _dense_dx_noT(self, dout, cache):
    x, W = cache, self.params["W"]
    return dout @ W, {"W": x.T @ dout, "b": dout.sum(axis=0)}


# -- factors, signs, dropped terms, axes -------------------------------------------------------
def _dense_db_sign(self, dout, cache):
    x, W = cache, self.params["W"]
    return dout @ W.T, {"W": x.T @ dout, "b": -dout.sum(axis=0)}


def _dense_db_zero(self, dout, cache):
    x, W = cache, self.params["W"]
    return dout @ W.T, {"W": x.T @ dout, "b": np.zeros_like(self.params["b"])}


def _dense_db_unsummed(self, dout, cache):
    x, W = cache, self.params["W"]
    return dout @ W.T, {"W": x.T @ dout, "b": dout}


def _dense_db_axis(self, dout, cache):
    x, W = cache, self.params["W"]
    return dout @ W.T, {"W": x.T @ dout, "b": dout.sum(axis=1)}


def _dense_cols_db_axis(self, dout, cache):
    x, W = cache, self.params["W"]
    return W.T @ dout, {"W": dout @ x.T, "b": dout.sum(axis=0, keepdims=True)}


def _dense_cols_extra_1m(self, dout, cache):
    x, W = cache, self.params["W"]
    m = x.shape[-1]
    return W.T @ dout, {"W": dout @ x.T / m, "b": dout.sum(axis=-1, keepdims=True)}


def _dense_factor2_dW(self, dout, cache):
    x, W = cache, self.params["W"]
    return dout @ W.T, {"W": 2 * x.T @ dout, "b": dout.sum(axis=0)}


def _dense_wrong_cache_forward(self, x):
    out = Dense.forward(self, x)[0]
    return out, (x, out)


def _dense_wrong_cache(self, dout, cache):
    x, out = cache
    W = self.params["W"]
    return dout @ W.T, {"W": out.T @ dout, "b": dout.sum(axis=0)}   # the output, not the input


def _act(df):
    """An elementwise layer whose derivative is replaced."""
    return {"df": df}


def _relu_inplace_backward(self, dout, cache):
    x, _ = cache
    dout[x <= 0] = 0.0          # the classic: overwrites the caller's upstream gradient
    return dout, {}


def _relu_inplace_forward(self, x):
    x[x < 0] = 0.0              # overwrites the previous layer's output
    return x, (x.copy(), x)


def _softmax_axis0(self, dout, cache):
    y = cache
    return y * (dout - (dout * y).sum(axis=0, keepdims=True)), {}


def _softmax_dropped(self, dout, cache):
    return cache * dout, {}


def _loss_no_1m(grad):
    def backward(self, dvalue, cache):
        return _scale(self, dvalue, grad(self, cache))
    return backward


_mutant("mut_dense_dW_transposed_square", Dense, backward=_dense_rows_dW_T)
_mutant("mut_dense_dW_transposed", Dense, backward=_dense_rows_dW_T)
_mutant("mut_dense_cols_dW_transposed", Dense, backward=_dense_cols_dW_T)
_mutant("mut_dense_dx_missing_transpose", Dense, backward=_dense_dx_noT)
_mutant("mut_dense_db_sign", Dense, backward=_dense_db_sign)
_mutant("mut_dense_db_forgotten", Dense, backward=_dense_db_zero)
_mutant("mut_dense_db_not_summed", Dense, backward=_dense_db_unsummed)
_mutant("mut_dense_db_wrong_axis", Dense, backward=_dense_db_axis)
_mutant("mut_dense_cols_db_wrong_axis", Dense, backward=_dense_cols_db_axis)
_mutant("mut_dense_cols_extra_1m", Dense, backward=_dense_cols_extra_1m)
_mutant("mut_dense_dW_factor2", Dense, backward=_dense_factor2_dW)
_mutant("mut_dense_wrong_cache", Dense, forward=_dense_wrong_cache_forward, backward=_dense_wrong_cache)
_mutant("mut_sigmoid_as_sigma", Sigmoid, **_act(lambda self, x, y: y))
_mutant("mut_sigmoid_factor2", Sigmoid, **_act(lambda self, x, y: 2 * y * (1 - y)))
_mutant("mut_tanh_uses_x", Tanh, **_act(lambda self, x, y: 1 - x * x))
_mutant("mut_tanh_factor2", Tanh, **_act(lambda self, x, y: 2 * (1 - y * y)))
_mutant("mut_relu_sign", ReLU, **_act(lambda self, x, y: -(x > 0).astype(x.dtype)))
_mutant("mut_leaky_relu_swapped", LeakyReLU, **_act(lambda self, x, y: np.where(x > 0, self.alpha, 1.0)))
_mutant("mut_softplus_wrong", Softplus, **_act(lambda self, x, y: 1 / (1 + np.exp(x))))
_mutant("mut_elu_no_alpha", ELU, **_act(lambda self, x, y: np.where(x > 0, 1.0, np.exp(x))))
_mutant("mut_gelu_dropped_term", GELU, **_act(
    lambda self, x, y: 0.5 * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))))
_mutant("mut_relu_inplace_dout", ReLU, backward=_relu_inplace_backward)
_mutant("mut_relu_inplace_x", ReLU, forward=_relu_inplace_forward)
_mutant("mut_softmax_wrong_axis", Softmax, backward=_softmax_axis0)
_mutant("mut_softmax_dropped_term", Softmax, backward=_softmax_dropped)
_mutant("mut_mse_no_1m", MSE, backward=_loss_no_1m(lambda self, c: c[0]))
_mutant("mut_mse_factor2", MSE, backward=_loss_no_1m(lambda self, c: 2 * c[0] / c[1]))
_mutant("mut_sce_no_1m", SoftmaxCrossEntropy, backward=_loss_no_1m(lambda self, c: c[0] - c[1]))
_mutant("mut_sce_sign", SoftmaxCrossEntropy, backward=_loss_no_1m(lambda self, c: (c[1] - c[0]) / c[2]))
_mutant("mut_bcel_no_1m", BinaryCrossEntropyWithLogits, backward=_loss_no_1m(
    lambda self, c: 1 / (1 + np.exp(-c[0])) - c[1]))
_mutant("mut_bce_sign", BinaryCrossEntropy, backward=_loss_no_1m(
    lambda self, c: (c[0][1] / c[0][0] - (1 - c[0][1]) / (1 - c[0][0])) / c[0][2]
    if False else (c[1] / c[0] - (1 - c[1]) / (1 - c[0])) / c[2]))

D = "{type: dense, units: 4}"
MLP = "[{type: dense, units: 4, activation: tanh}, %s, {type: dense, units: 3}]"
MUTANTS: list[Mutant] = [
    Mutant("mut_dense_dW_transposed_square", "transposed", MLP % "{type: mut_dense_dW_transposed_square, units: 4}", "softmax_cross_entropy", ("2", "W")),
    Mutant("mut_dense_dW_transposed", "transposed", MLP % "{type: mut_dense_dW_transposed, units: 6}", "softmax_cross_entropy", ("2", "W")),
    Mutant("mut_dense_cols_dW_transposed", "transposed", MLP % "{type: mut_dense_cols_dW_transposed, units: 6}", "softmax_cross_entropy", ("2", "W"), layout="columns"),
    Mutant("mut_dense_dx_missing_transpose", "transposed", MLP % "{type: mut_dense_dx_missing_transpose, units: 4}", "softmax_cross_entropy", ("2", "x")),
    Mutant("mut_dense_cols_extra_1m", "factor (1/m, 2)", MLP % "{type: mut_dense_cols_extra_1m, units: 5}", "softmax_cross_entropy", ("2", "W"), layout="columns"),
    Mutant("mut_dense_dW_factor2", "factor (1/m, 2)", MLP % "{type: mut_dense_dW_factor2, units: 5}", "softmax_cross_entropy", ("2", "W")),
    Mutant("mut_mse_no_1m", "factor (1/m, 2)", MLP % D, "mut_mse_no_1m", ("loss", "x")),
    Mutant("mut_mse_factor2", "factor (1/m, 2)", MLP % D, "mut_mse_factor2", ("loss", "x")),
    Mutant("mut_sce_no_1m", "factor (1/m, 2)", MLP % D, "mut_sce_no_1m", ("loss", "x")),
    Mutant("mut_bcel_no_1m", "factor (1/m, 2)", MLP % D, "mut_bcel_no_1m", ("loss", "x")),
    Mutant("mut_sigmoid_factor2", "factor (1/m, 2)", MLP % "{type: mut_sigmoid_factor2}", "softmax_cross_entropy", ("2", "x")),
    Mutant("mut_tanh_factor2", "factor (1/m, 2)", MLP % "{type: mut_tanh_factor2}", "softmax_cross_entropy", ("2", "x")),
    Mutant("mut_dense_db_sign", "sign", MLP % "{type: mut_dense_db_sign, units: 5}", "softmax_cross_entropy", ("2", "b")),
    Mutant("mut_relu_sign", "sign", MLP % "{type: mut_relu_sign}", "softmax_cross_entropy", ("2", "x")),
    Mutant("mut_sce_sign", "sign", MLP % D, "mut_sce_sign", ("loss", "x")),
    Mutant("mut_bce_sign", "sign", "[{type: dense, units: 4, activation: tanh}, {type: dense, units: 2, activation: sigmoid}]", "mut_bce_sign", ("loss", "x")),
    Mutant("mut_dense_db_forgotten", "dropped term", MLP % "{type: mut_dense_db_forgotten, units: 5}", "softmax_cross_entropy", ("2", "b")),
    Mutant("mut_gelu_dropped_term", "dropped term", MLP % "{type: mut_gelu_dropped_term}", "softmax_cross_entropy", ("2", "x")),
    Mutant("mut_softmax_dropped_term", "dropped term", MLP % "{type: mut_softmax_dropped_term}", "mse", ("2", "x")),
    Mutant("mut_elu_no_alpha", "dropped term", MLP % "{type: mut_elu_no_alpha, alpha: 0.5}", "softmax_cross_entropy", ("2", "x")),
    Mutant("mut_sigmoid_as_sigma", "wrong activation derivative", MLP % "{type: mut_sigmoid_as_sigma}", "softmax_cross_entropy", ("2", "x")),
    Mutant("mut_tanh_uses_x", "wrong activation derivative", MLP % "{type: mut_tanh_uses_x}", "softmax_cross_entropy", ("2", "x")),
    Mutant("mut_leaky_relu_swapped", "wrong activation derivative", MLP % "{type: mut_leaky_relu_swapped, alpha: 0.1}", "softmax_cross_entropy", ("2", "x")),
    Mutant("mut_softplus_wrong", "wrong activation derivative", MLP % "{type: mut_softplus_wrong}", "softmax_cross_entropy", ("2", "x")),
    Mutant("mut_softmax_wrong_axis", "off-by-one axis", MLP % "{type: mut_softmax_wrong_axis}", "mse", ("2", "x")),
    Mutant("mut_dense_db_wrong_axis", "bias summed over the wrong axis", MLP % "{type: mut_dense_db_wrong_axis, units: 5}", "softmax_cross_entropy", ("2", "b")),
    Mutant("mut_dense_db_not_summed", "bias summed over the wrong axis", MLP % "{type: mut_dense_db_not_summed, units: 5}", "softmax_cross_entropy", ("2", "b")),
    Mutant("mut_dense_cols_db_wrong_axis", "bias summed over the wrong axis", MLP % "{type: mut_dense_cols_db_wrong_axis, units: 5}", "softmax_cross_entropy", ("2", "b"), layout="columns"),
    Mutant("mut_relu_inplace_dout", "in-place mutation", MLP % "{type: mut_relu_inplace_dout}", "softmax_cross_entropy", ("2", "x")),
    Mutant("mut_relu_inplace_x", "in-place mutation", MLP % "{type: mut_relu_inplace_x}", "softmax_cross_entropy", ("2", "x")),
    Mutant("mut_dense_wrong_cache", "wrong cache", MLP % "{type: mut_dense_wrong_cache, units: 4}", "softmax_cross_entropy", ("2", "W")),
]


def mutant_spec(m: Mutant, seed: int) -> str:
    return (f"name: {m.name}\nseed: {seed}\nlayout: {m.layout}\ninput: {{shape: [{m.input}], batch: 5}}\n"
            f"layers: {m.layers}\nloss: {m.loss}\n")


@dataclass(frozen=True)
class Hard:
    """A correct network that is hard on a checker."""

    name: str
    category: str
    text: str


HARD: list[Hard] = [
    Hard("relu-mlp", "relu kinks", "input: {shape: [6], batch: 8}\nlayers: [{type: dense, units: 16, activation: relu}, {type: dense, units: 16, activation: relu}, {type: dense, units: 3}]\nloss: softmax_cross_entropy\n"),
    # a step of 5e-3 (a user's choice) makes perturbations cross relu decisions regularly
    Hard("relu-mlp-large-step", "relu kinks", "check: {eps: 5e-3}\ninput: {shape: [6], batch: 8}\nlayers: [{type: dense, units: 16, activation: relu}, {type: dense, units: 16, activation: relu}, {type: dense, units: 3}]\nloss: softmax_cross_entropy\n"),
    Hard("relu-maxpool", "max-pool ties", "input: {shape: [2, 6, 6], batch: 2}\nlayers: [{type: conv2d, filters: 3, kernel: 3, padding: 1, activation: relu}, {type: maxpool2d, kernel: 2}, {type: flatten}, {type: dense, units: 4}]\nloss: softmax_cross_entropy\n"),
    Hard("float32-mlp", "float32", "dtype: float32\ninput: {shape: [6], batch: 5}\nlayers: [{type: dense, units: 8, activation: tanh}, {type: dense, units: 8, activation: gelu}, {type: dense, units: 8, activation: softplus}, {type: dense, units: 3}]\nloss: softmax_cross_entropy\n"),
    Hard("float32-relu", "float32", "dtype: float32\ninput: {shape: [5], batch: 6}\nlayers: [{type: dense, units: 8, activation: relu}, {type: dense, units: 1, activation: sigmoid}]\nloss: binary_cross_entropy\n"),
    Hard("bias-before-batchnorm", "exactly zero gradients", "input: {shape: [5], batch: 6}\nlayers: [{type: dense, units: 6}, {type: batchnorm, activation: tanh}, {type: dense, units: 3}]\nloss: softmax_cross_entropy\n"),
    Hard("kinked-losses", "relu kinks", "input: {shape: [4], batch: 6}\nlayers: [{type: dense, units: 5, activation: leaky_relu}, {type: dense, units: 3}]\nloss: {type: huber, delta: 0.5}\n"),
    Hard("l1-loss", "relu kinks", "input: {shape: [4], batch: 6}\nlayers: [{type: dense, units: 5, activation: relu}, {type: dense, units: 3}]\nloss: l1\n"),
]


def hard_spec(h: Hard, seed: int) -> str:
    return f"name: {h.name}\nseed: {seed}\n{h.text}"
