"""Diagnosis of a failing gradient: which common backprop bug explains the numbers, if any.

Each hypothesis is a small function of (analytic, numeric, context) that returns a message only
when the gradient fails and the hypothesis, applied to the numeric gradient (and what the context
knows: the upstream gradient, the layer's input and output, neighbouring gradients), reproduces
the analytic one to within ``EXPLAIN_FACTOR`` times the pass threshold. So no hypothesis is ever
reported for a correct gradient, or for one it does not explain.

One module per kind of hypothesis: ``factors`` (a constant or per-slice factor, an L2 term),
``shapes`` (a wrong shape, a sum over the wrong axes), ``derivatives`` (an activation's or a
softmax's derivative), ``terms`` (a skip path, a normalization's mean and variance terms, a
gradient copied from another tensor), ``localize`` and ``windows`` (where the wrong entries are),
``candidates`` (gradients computed another way: the wrong cache, a flipped kernel, stride 1, the
layer's backward with a cached matrix transposed); ``hypotheses`` orders them; ``evidence``
gathers what they may use from the check, ``quantities`` the config's numbers and axis names.
"""
from .candidates import transformed_candidates, wrong_cache_candidates
from .context import EXPLAIN_FACTOR, Context
from .hypotheses import HYPOTHESES, diagnose
from .shapes import shape_hypothesis

__all__ = ["EXPLAIN_FACTOR", "Context", "HYPOTHESES", "diagnose", "shape_hypothesis",
           "transformed_candidates", "wrong_cache_candidates"]
