"""The checker: a planned network built, then every (layer, tensor) gradient compared with finite
differences, isolated and end to end, judged against the dtype's tolerance and diagnosed."""
