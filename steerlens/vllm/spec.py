"""The server's intervention specs: JSON objects naming a loaded vector, turned into the
same intervention objects as in Python, or a ``SpecError`` naming the bad field.

``{"vector": NAME, "kind": "add", "coeff": 4.0, "positions": "generated", "layers": [12]}``
- ``kind``: ``add`` (``coeff``, ``preserve_norm``), ``ablate``, ``clamp`` (``value``),
  ``rotate`` (``degrees``);
- ``layers`` (default: the vector's), ``site`` (default: the vector's), ``positions``
  (default ``"all"``) as in Python.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import SteerlensError
from ..core.vector import SteeringVector
from ..steering import interventions

#: kind -> (its builder, the fields it takes besides vector/kind/layers/site/positions)
KINDS = {
    "add": (interventions.add, ("coeff", "preserve_norm")),
    "ablate": (interventions.ablate, ()),
    "clamp": (interventions.clamp, ("value",)),
    "rotate": (interventions.rotate, ("degrees",)),
}
COMMON = ("vector", "kind", "layers", "site", "positions")


class SpecError(SteerlensError):
    """A malformed or unknown spec; ``field`` is the JSON path of the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def parse(specs: Any, vectors: dict[str, SteeringVector]) -> list[Any]:
    """Interventions from the ``steerlens`` field of a request."""
    if not isinstance(specs, list):
        raise SpecError("steerlens", f"expected a list of intervention specs, got {specs!r}")
    return [_one(spec, vectors, f"steerlens[{i}]") for i, spec in enumerate(specs)]


def _one(spec: Any, vectors: dict[str, SteeringVector], at: str) -> Any:
    if not isinstance(spec, dict):
        raise SpecError(at, f"expected an object with 'vector' and 'kind', got {spec!r}")
    for required in ("vector", "kind"):
        if required not in spec:
            raise SpecError(f"{at}.{required}", "missing")
    kind = spec["kind"]
    if kind not in KINDS:
        raise SpecError(f"{at}.kind", f"expected one of {sorted(KINDS)}, got {kind!r}")
    builder, extra = KINDS[kind]
    unknown = sorted(set(spec) - set(COMMON) - set(extra))
    if unknown:
        raise SpecError(
            f"{at}.{unknown[0]}", f"not a field of kind {kind!r} (fields: {[*COMMON, *extra]})"
        )
    vector = spec["vector"]
    if vector not in vectors:
        raise SpecError(f"{at}.vector", f"unknown vector {vector!r}; loaded: {sorted(vectors)}")
    options = {key: value for key, value in spec.items() if key not in ("vector", "kind")}
    try:
        return builder(vectors[vector], **options)
    except (SteerlensError, TypeError) as error:
        field = str(error).split(":", 1)[0].strip()
        field = field if field in options else next(iter(options), "vector")
        raise SpecError(f"{at}.{field}", str(error)) from error
