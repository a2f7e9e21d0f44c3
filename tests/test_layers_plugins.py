"""A user's own layer next to the library: a loop-based conv written the way a student would
(no probe axes, one example at a time) checks in a convnet config exactly like conv2d, and agrees
with it, so a user can compare their layer against ours by changing one `type:`."""
from __future__ import annotations

import json

import numpy as np

from gradcheck_cli.check.engine import check_network
from gradcheck_cli.layers.protocol import Layer
from gradcheck_cli.check.network import build_network
from gradcheck_cli.layers.catalog import register
from gradcheck_cli.results import Status
from gradcheck_cli.config.models import spec_from_text


@register("test_student_conv")
class StudentConv(Layer):
    """A naive 3x3, stride 1, padding 1 convolution with explicit loops."""

    layouts = ("rows",)

    def __init__(self, filters: int) -> None:
        super().__init__()
        self.filters = filters

    def build(self, input_shape, rng):
        c, h, w = input_shape
        self.params = {"W": np.sqrt(2.0 / (9 * c)) * rng.standard_normal((self.filters, c, 3, 3)),
                       "b": 0.1 * rng.standard_normal(self.filters)}
        return (self.filters, h, w)

    def forward(self, x):
        W, b = self.params["W"], self.params["b"]
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        m, _, h, w = x.shape
        out = np.empty((m, self.filters, h, w))
        for i in range(h):
            for j in range(w):
                out[:, :, i, j] = np.einsum("ncab,fcab->nf", xp[:, :, i:i + 3, j:j + 3], W) + b
        return out, xp

    def backward(self, dout, xp):
        W = self.params["W"]
        m, f, h, w = dout.shape
        dxp, dW = np.zeros_like(xp), np.zeros_like(W)
        for i in range(h):
            for j in range(w):
                dW += np.einsum("nf,ncab->fcab", dout[:, :, i, j], xp[:, :, i:i + 3, j:j + 3])
                dxp[:, :, i:i + 3, j:j + 3] += np.einsum("nf,fcab->ncab", dout[:, :, i, j], W)
        return dxp[:, :, 1:-1, 1:-1], {"W": dW, "b": dout.sum(axis=(0, 2, 3))}


def _net(conv: dict):
    spec = {"seed": 4, "input": {"shape": [2, 5, 5], "batch": 2}, "loss": "softmax_cross_entropy",
            "layers": [conv, {"type": "tanh"}, {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"},
                       {"type": "dense", "units": 3}]}
    return build_network(spec_from_text(json.dumps(spec)))


def test_a_plugin_conv_checks_like_the_builtin_and_agrees_with_it():
    ours = _net({"type": "conv2d", "filters": 3, "kernel": 3, "padding": 1})
    theirs = _net({"type": "test_student_conv", "filters": 3})
    mine = check_network(theirs)
    assert mine.status is Status.PASS, [(r.label, r.tensor, r.reason) for r in mine.rows if r.status is not Status.PASS]
    assert check_network(ours).status is Status.PASS
    layer = ours.nodes[0].layer
    layer.params = dict(theirs.nodes[0].layer.params)
    np.testing.assert_allclose(layer.forward(ours.x)[0], theirs.nodes[0].layer.forward(ours.x)[0], rtol=1e-12)
