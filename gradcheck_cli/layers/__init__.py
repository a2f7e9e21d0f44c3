"""Built-in layers; importing this package registers them."""
from . import activations, dense, losses  # noqa: F401
