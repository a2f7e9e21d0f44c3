"""A plugin importing a module that does not exist."""
import numpy as np
import no_such_module_for_gradcheck  # noqa: F401
