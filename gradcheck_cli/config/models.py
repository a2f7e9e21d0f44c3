"""The spec schema: top-level keys validated with pydantic, errors located in the source file
(the wording of those errors is messages.py's).

Layer entries are validated later, against the option signature of their registered class
(see config/plan.py), so that plugin layers are checked exactly like built-ins.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from annotated_types import Ge, Gt, Le
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..names import DTYPES, LAYOUTS, METHODS, MODES
from .document import Document, load_document, parse_text
from .messages import pydantic_error

#: Sizes beyond this are refused at validation, before anything is allocated.
MAX_DIM = 1 << 24

Dim = Annotated[int, Ge(1), Le(MAX_DIM)]


class _Model(BaseModel):
    # strict: "5" is not 5 and true is not 1; extra keys are errors; inf/nan are not numbers.
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class InputSpec(_Model):
    """The network input: per-example shape and batch size m."""

    shape: list[Dim] = Field(min_length=1, max_length=6,
                             description="Per-example shape, without the batch axis.")
    batch: Dim = Field(4, description="Batch size m.")
    vocab: Union[Dim, None] = Field(None, description="The input holds integer indices in "
                                                      "[0, vocab) (token ids for an embedding).")


class CheckSpec(_Model):
    """How the finite-difference check runs; command-line options override these."""

    eps: Union[Literal["auto"], Annotated[float, Gt(0), Le(1)]] = Field(
        "auto", description="Step h (scaled per coordinate by max(1, |θ|)), or auto for the "
                            "rounding-optimal step of the method and dtype.")
    method: Literal[METHODS] = Field(
        "central", description="Difference method: central (default), forward, richardson "
                               "(central at h, h/2, h/4 combined), complex (complex step).")
    mode: Literal[MODES] = Field(
        "full", description="Check every entry, a seeded sample of entries per tensor, or "
                            "random directions per tensor.")
    samples: Annotated[int, Ge(1), Le(1_000_000)] = Field(
        16, description="Entries per tensor in sample mode (the largest |analytic| always among them).")
    directions: Annotated[int, Ge(1), Le(1000)] = Field(
        4, description="Random unit directions per tensor in directional mode.")
    pass_rtol: Union[Annotated[float, Gt(0), Le(1)], None] = Field(
        None, description="Relative error below which a check passes (default: per dtype).")
    warn_rtol: Union[Annotated[float, Gt(0), Le(1)], None] = Field(
        None, description="Relative error below which a check warns instead of failing.")
    shortcuts: bool = Field(
        True, description="Share perturbed copies where the layers are verified to allow it; "
                          "false evaluates every copy alone, through the rest of the network "
                          "(slower, same verdicts: a way to rule the shortcuts out).")


class Spec(_Model):
    """A network to check: input, layers, loss, and how to check it."""

    name: Union[str, None] = Field(None, description="Defaults to the file stem.")
    seed: Annotated[int, Ge(0), Le(2**63 - 1)] = 0
    dtype: Literal[DTYPES] = "float64"
    layout: Literal[LAYOUTS] = "rows"
    input: InputSpec
    layers: list[dict[str, Any]] = Field(min_length=1)
    loss: Union[str, dict[str, Any]]
    l2: Annotated[float, Ge(0)] = 0.0
    check: CheckSpec = CheckSpec()
    plugins: list[str] = Field(default_factory=list,
                               description="Plugin files, relative to the config; loaded only "
                                           "with --allow-plugins.")

    # Not part of the schema: where this spec came from, for locating later errors.
    _doc: Document | None = None

    @property
    def doc(self) -> Document:
        assert self._doc is not None
        return self._doc


def load_spec(path: str | Path, display: str | None = None) -> Spec:
    """Read, parse and validate one config file; raise SpecError located in it."""
    doc = load_document(path, display)
    spec = validate_document(doc)
    if spec.name is None:
        spec.name = Path(path).stem
    return spec


def spec_from_text(text: str, fmt: str = "yaml", path: str = "<config>") -> Spec:
    spec = validate_document(parse_text(text, fmt, path))
    if spec.name is None:
        spec.name = Path(path).stem if path != "<config>" else "network"
    return spec


def validate_document(doc: Document) -> Spec:
    try:
        spec = Spec.model_validate(doc.data)
    except ValidationError as exc:
        raise pydantic_error(doc, exc, model=Spec) from None
    spec._doc = doc
    return spec
