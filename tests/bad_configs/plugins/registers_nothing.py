"""A plugin that defines a layer but forgets @register."""
from gradcheck_cli.layers.protocol import Layer


class Forgotten(Layer):
    def output_shape(self, input_shape):
        return input_shape

    def forward(self, x):
        return x, None

    def backward(self, dout, cache):
        return dout, {}
