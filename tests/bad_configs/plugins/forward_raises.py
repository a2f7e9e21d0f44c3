"""A plugin layer whose forward raises on line 13."""
from gradcheck_cli import register
from gradcheck_cli.layers.protocol import Layer


@register("forward_raises")
class ForwardRaises(Layer):
    """out = x (but forward fails)."""
    def output_shape(self, input_shape):
        return input_shape

    def forward(self, x):
        raise ValueError("operands could not be broadcast together")

    def backward(self, dout, cache):
        return dout, {}
