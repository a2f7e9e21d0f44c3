"""check/diagnose/candidates.py: the gradients computed another way (the layer at stride 1, the
layer's own backward with a cached matrix transposed, the wrong cache) name their bug, and stay
silent on right gradients and on gradients wrong in no pattern, for random layers (hypothesis)."""
from __future__ import annotations

import copy

import numpy as np
from hypothesis import given, settings, strategies as st

from gradcheck_cli.check.diagnose import Context, diagnose
from gradcheck_cli.check.diagnose import candidates as cd
from gradcheck_cli.check.differences import AUTO_STEP

PASS = 1e-7
seeds = st.integers(0, 2**31 - 1)
few = settings(max_examples=10, deadline=None)


def ctx(tensor, **kw) -> Context:
    return Context(tensor, 2, "rows", PASS, **kw)


class Conv1D:
    """out[n, f, i] = Σ_{c,a} W[f, c, a]·x[n, c, s·i + a]: a 1-D strided cross-correlation."""

    def __init__(self, stride: int, rng):
        self.stride = stride
        self.params = {"W": rng.standard_normal((2, 3, 3))}

    def forward(self, x):
        k, s = self.params["W"].shape[-1], self.stride
        L = (x.shape[-1] - k) // s + 1
        cols = np.stack([x[:, :, s * i:s * i + k] for i in range(L)], axis=2)     # (n, c, L, k)
        return np.einsum("ncia,fca->nfi", cols, self.params["W"]), x

    def backward(self, dout, x, stride=None):
        """dW with the window positions taken at ``stride`` (the layer's own when None)."""
        k, s = self.params["W"].shape[-1], self.stride if stride is None else stride
        dW = np.zeros_like(self.params["W"])
        for a in range(k):
            dW[:, :, a] = np.einsum("nfi,nci->fc", dout, x[:, :, a:a + s * dout.shape[-1]:s])
        return None, {"W": dW}


def vjp(layer, tensor, x, g):
    def forward(xx, pp):
        new = copy.copy(layer)
        new.params = {**layer.params, **pp}
        return new.forward(xx)[0]
    return cd._vjp_by_differences(forward, x, layer.params, tensor, g, AUTO_STEP["central"], "central")


@few
@given(seeds, st.sampled_from([2, 3]))
def test_stride_one_correlation(seed, stride):
    rng = np.random.default_rng(seed)
    layer = Conv1D(stride, rng)
    x = rng.standard_normal((2, 3, 11))
    g = rng.standard_normal(layer.forward(x)[0].shape)
    n = vjp(layer, "W", x, g)
    right = layer.backward(g, x)[1]["W"]
    wrong = layer.backward(g, x, stride=1)[1]["W"]
    found = cd.stride_candidates(layer, "W", g, x)
    c = ctx("W", transformed=found)
    assert np.abs(right - n).max() < 1e-8 * np.abs(n).max()
    said = diagnose(wrong, n, c)
    assert said.startswith("dW is the stride-1 correlation") and f"stride {stride} is not applied" in said
    # silent on the right gradient, and on one wrong in no pattern
    assert diagnose(right, n, c) is None
    assert cd.transformed_layer(wrong + 0.3 * rng.standard_normal(n.shape), n, c) is None
    # a layer at stride 1 has no such candidate
    assert cd.stride_candidates(Conv1D(1, rng), "W", g, x) == {}


class Mix:
    """out = P·(x·W) per example, P a fixed row-stochastic (T, T) matrix kept in the cache."""

    def __init__(self, rng, T, D):
        s = rng.standard_normal((T, T))
        self.P = np.exp(s) / np.exp(s).sum(axis=-1, keepdims=True)
        self.params = {"W": rng.standard_normal((D, D))}

    def forward(self, x):
        return self.P @ (x @ self.params["W"]), (x, self.P)

    def backward(self, dout, cache, transposed=True):
        x, P = cache
        dV = (np.swapaxes(P, -1, -2) if transposed else P) @ dout
        return dV @ self.params["W"].T, {"W": np.einsum("mti,mtj->ij", x, dV)}


@few
@given(seeds)
def test_cached_matrix_used_untransposed(seed):
    rng = np.random.default_rng(seed)
    layer = Mix(rng, 4, 3)
    x = rng.standard_normal((2, 4, 3))
    out, cache = layer.forward(x)
    g = rng.standard_normal(out.shape)
    for tensor in ("x", "W"):
        n = vjp(layer, tensor, x, g)
        index = 0 if tensor == "x" else 1
        right = layer.backward(g, cache)
        right = right[0] if tensor == "x" else right[1]["W"]
        assert np.abs(right - n).max() < 1e-8 * np.abs(n).max()

        def buggy(dout, cache):
            return Mix.backward(layer, dout, cache, transposed=False)

        wrong = buggy(g, cache)
        wrong = wrong[0] if tensor == "x" else wrong[1]["W"]
        c = ctx(tensor, repairs=cd.transposed_cache_candidates(buggy, cache, tensor, g))
        said = diagnose(wrong, n, c)
        assert "cache item 1" in said and "attention weights P" in said and "dV = P·dO instead of Pᵀ·dO" in said
        # silent on the right gradient, and on a backward wrong in no pattern (repairing the
        # matrix does not make it right)
        assert diagnose(right, n, ctx(tensor, repairs=cd.transposed_cache_candidates(
            layer.backward, cache, tensor, g))) is None

        def noisy(dout, cache):
            dx, grads = buggy(dout, cache)
            return dx + 0.3, {"W": grads["W"] + 0.3}

        bad = noisy(g, cache)[index] if tensor == "x" else noisy(g, cache)[1]["W"]
        c = ctx(tensor, repairs=cd.transposed_cache_candidates(noisy, cache, tensor, g))
        assert cd.repaired_by_cache(bad, n, c) is None


def test_a_symmetric_or_broken_cache_has_no_candidates():
    P = np.eye(3) + 0.1
    assert cd.transposed_cache_candidates(lambda d, c: (d, {}), (np.ones(2), P), "x", np.ones(3)) == {}

    def raises(dout, cache):
        raise ValueError("no")
    M = np.arange(9.0).reshape(3, 3)
    assert cd.transposed_cache_candidates(raises, {"M": M}, "x", np.ones(3)) == {}


def test_wrong_cache_candidate_uses_the_checkers_differences():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((4, 3))
    x, other, g = rng.standard_normal((5, 4)), rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    found = cd.wrong_cache_candidates(lambda xx, pp: xx @ pp["W"], {"W": W}, "W", g, {"A[0]": other})
    assert np.abs(found["dW with A[0] as the cache"] - other.T @ g).max() < 1e-9
    # the complex step (the checker's, when chosen) gives the same to machine precision
    found = cd.wrong_cache_candidates(lambda xx, pp: xx @ pp["W"], {"W": W}, "W", g, {"A[0]": other},
                                      1e-20, "complex")
    assert np.abs(found["dW with A[0] as the cache"] - other.T @ g).max() < 1e-13
