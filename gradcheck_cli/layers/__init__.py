"""Built-in layers; importing this package registers them."""
from . import activations, dense, losses  # noqa: F401
from . import (activations_extra, attention, composite, conv, dropout, embedding,  # noqa: F401
               linear, losses_extra, norm, pool, recurrent, reshape)
