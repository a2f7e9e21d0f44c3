"""Plugin layers whose forward returns something the checker cannot use."""
import numpy as np

from gradcheck_cli import register
from gradcheck_cli.layers.protocol import Layer


class _Same(Layer):
    def output_shape(self, input_shape):
        return input_shape

    def backward(self, dout, cache):
        return dout, {}


@register("forward_returns_list")
class ReturnsList(_Same):
    def forward(self, x):
        return x.tolist(), None


@register("forward_returns_array")
class ReturnsArray(_Same):
    def forward(self, x):
        return x


@register("forward_returns_nan")
class ReturnsNaN(_Same):
    def forward(self, x):
        return np.where(x > 0, np.nan, x), None


@register("forward_wrong_shape")
class WrongShape(_Same):
    def forward(self, x):
        return x[:, :2], None


@register("picky")
class Picky(_Same):
    def __init__(self, size: int) -> None:
        super().__init__()
        if size % 2:
            raise ValueError(f"size must be even, got {size}")
        self.size = size

    def forward(self, x):
        return x, None


@register("forward_exits")
class Exits(_Same):
    def forward(self, x):
        raise SystemExit(0)


@register("forward_returns_objects")
class ReturnsObjects(_Same):
    def forward(self, x):
        return x.astype(object), None
