"""The words a config or a command line may use for a choice, each spelled here once: the
command line's choices, the spec models' Literals (and so the JSON Schema) and the checker read
them from this module. No imports: the bottom of the package, beside errors.py and results.py."""

#: finite-difference methods (check/differences.py has each one's step, offsets and rounding)
METHODS = ("central", "forward", "richardson", "complex")
#: what a check probes: every entry, a sample of entries, or random directions per tensor
MODES = ("full", "sample", "directional")
#: dtypes a network may be checked in
DTYPES = ("float64", "float32")
#: where the batch axis stands: rows (m, ...) or columns (D, m)
LAYOUTS = ("rows", "columns")
#: formats of `gradcheck explain`
EXPLAIN_FORMATS = ("text", "markdown")
