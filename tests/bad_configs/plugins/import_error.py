"""A plugin whose import fails on line 5."""
import numpy as np

LIMIT = 3
raise RuntimeError("this plugin is broken on purpose")
