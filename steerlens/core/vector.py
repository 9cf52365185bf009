"""``SteeringVector``: per-layer directions plus where they were read and how they were made."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from . import control_vectors as gguf
from . import vector_file
from .basis import BASES, all_centred, check_basis
from .errors import SteerlensError, SteerlensTypeError
from .hookpoints import check_d_model, check_site, hook_name, layer_list, normalise_layer
from .linalg import unit
from .types import Direction
from .validate import (
    check_choice,
    check_direction,
    check_instance,
    check_int,
    check_model,
    check_number,
    check_path,
    check_string_keys,
    check_text,
    shown,
)


def data_hash(*groups: Sequence[str]) -> str:
    """A short SHA-256 of the texts a vector was computed from (order-sensitive)."""
    digest = hashlib.sha256()
    for group in groups:
        digest.update(json.dumps(list(group), ensure_ascii=False).encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class SteeringVector:
    """One direction per layer of the residual stream, with its provenance.

    Attributes:
        directions: layer -> ``Float[Tensor, "d_model"]`` (float32, CPU, finite).
        site: the residual site the directions were read at (``resid_pre`` by default);
            interventions apply them there unless told otherwise.
        method: how the directions were made (``mean_difference``, ``manual``, ...).
        model_name: the model they belong to.
        position: the token-position rule used when reading activations.
        params: the creation parameters (JSON-serializable).
        data_hash: a hash of the data the vector was computed from, if any.
        basis: the residual basis the directions were read in: ``"plain"`` (the Hugging
            Face residual; the default, and what files without the field mean) or
            ``"centred"`` (a model with centred writing weights, e.g. a LayerNorm bridge in
            compatibility mode); ``core.basis`` says when a vector applies across bases.

    Example:
        >>> vec = sl.mean_difference(model, positives, negatives, layers=[8, 12])
        >>> vec.layers, vec[8].shape   # [8, 12] and torch.Size([576]) on the default model
    """

    directions: Mapping[int, Direction]
    site: str = "resid_pre"
    method: str = "manual"
    model_name: str | None = None
    position: str = "last"
    params: Mapping[str, Any] = field(default_factory=dict)
    data_hash: str | None = None
    basis: str = "plain"

    def __post_init__(self) -> None:
        check_site(self.site)
        check_choice("basis", self.basis, BASES)
        check_instance("directions", self.directions, Mapping, "a dict layer -> [d_model] tensor")
        if not self.directions:
            raise SteerlensError("directions: expected at least one layer, got none")
        cleaned = {int(k): check_direction(k, v) for k, v in self.directions.items()}
        cleaned = dict(sorted(cleaned.items()))
        sizes = sorted({v.numel() for v in cleaned.values()})
        if len(sizes) > 1:
            raise SteerlensError(f"directions: layers disagree on d_model: {sizes}")
        for name in ("method", "position"):
            check_text(name, getattr(self, name))
        for name in ("model_name", "data_hash"):
            if getattr(self, name) is not None:
                check_text(name, getattr(self, name))
        check_instance("params", self.params, Mapping, "a dict of JSON-serializable values")
        check_string_keys("params", self.params)
        try:
            json.dumps(dict(self.params), allow_nan=False)
        except (TypeError, ValueError) as error:
            raise SteerlensTypeError(
                f"params: must be JSON-serializable (finite numbers, strings, lists, dicts) to "
                f"be saved; {error}"
            ) from error
        object.__setattr__(self, "directions", cleaned)
        object.__setattr__(self, "params", dict(self.params))

    # --- access -------------------------------------------------------------------------
    @property
    def layers(self) -> list[int]:
        return list(self.directions)

    @property
    def d_model(self) -> int:
        return next(iter(self.directions.values())).numel()

    def __getitem__(self, layer: int) -> Direction:
        if layer not in self.directions:
            raise SteerlensError(f"layer: {layer!r} is not in this vector's layers {self.layers}")
        return self.directions[layer]

    def norms(self) -> dict[int, float]:
        return {layer: float(v.norm()) for layer, v in self.directions.items()}

    def _sites(self) -> str:
        """``blocks.{8,12}.hook_resid_pre``: every layer's hook point at the vector's site."""
        return hook_name(0, self.site).replace(".0.", ".{" + ",".join(map(str, self.layers)) + "}.")

    def __repr__(self) -> str:
        """One line: method, where it is read and applied, position, size, model."""
        basis = "" if self.basis == "plain" else f", basis={self.basis!r}"
        return (
            f"SteeringVector({self.method}, read and applied at {self._sites()}, "
            f"{self.position} token, d_model={self.d_model}, model={self.model_name!r}{basis})"
        )

    def describe(self) -> str:
        """Where the vector was read and applies, its norms and its provenance, in prose."""
        norms = ", ".join(f"{layer}: {n:.3g}" for layer, n in self.norms().items())
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items()) or "none"
        return "\n".join(
            [
                f"A {self.method} steering vector for {self.model_name or 'an unnamed model'} "
                f"(d_model {self.d_model}), read at {self._sites()} at the {self.position} "
                "token of each text.",
                f"sl.add / sl.ablate / sl.clamp apply it at {self._sites()} unless they are "
                "given another site= (or layers=).",
                f"Norms per layer: {norms}.",
                f"Residual basis: {self.basis} (core.basis says when it applies across bases); "
                f"data hash: {self.data_hash or 'none'}.",
                f"Parameters: {params}.",
            ]
        )

    # --- algebra ------------------------------------------------------------------------
    def _with(self, directions: Mapping[int, Tensor], method: str) -> SteeringVector:
        return replace(self, directions=directions, method=method)

    def _check_compatible(self, other: Any, op: str) -> None:
        check_instance("other", other, SteeringVector, f"a SteeringVector for {op}")
        if other.layers != self.layers or other.site != self.site:
            raise SteerlensError(
                f"other: {op} needs the same layers and site; got {self.layers}@{self.site} "
                f"and {other.layers}@{other.site}"
            )
        if other.d_model != self.d_model:
            raise SteerlensError(f"other: d_model {other.d_model} != {self.d_model}")
        if other.basis != self.basis:
            raise SteerlensError(
                f"other: {op} needs vectors read in the same residual basis; got "
                f"{self.basis!r} and {other.basis!r}"
            )

    def __add__(self, other: SteeringVector) -> SteeringVector:
        self._check_compatible(other, "+")
        summed = {layer: v + other[layer] for layer, v in self.directions.items()}
        return self._with(summed, f"({self.method} + {other.method})")

    def __sub__(self, other: SteeringVector) -> SteeringVector:
        return self + (-other)

    def __neg__(self) -> SteeringVector:
        return self * -1.0

    def __mul__(self, scale: float) -> SteeringVector:
        scale = check_number("scale", scale)
        return self._with({layer: v * scale for layer, v in self.directions.items()}, self.method)

    __rmul__ = __mul__

    def unit(self) -> SteeringVector:
        """The same directions scaled to norm 1 per layer (zero vectors are refused)."""
        return self._with(
            {layer: unit(v, f"vector[{layer}]") for layer, v in self.directions.items()},
            self.method,
        )

    def cosine(self, other: SteeringVector) -> dict[int, float]:
        """Cosine similarity per shared layer."""
        check_instance("other", other, SteeringVector, "a SteeringVector")
        shared = [layer for layer in self.layers if layer in other.directions]
        if not shared:
            raise SteerlensError(f"other: no shared layers ({self.layers} vs {other.layers})")
        return {
            layer: float(torch.cosine_similarity(self[layer], other[layer], dim=0))
            for layer in shared
        }

    def check_model(self, model: Any, *, additive: bool = False) -> None:
        """Raise unless the vector fits ``model``: d_model, layer range, and its residual
        basis (``core.basis``) for projecting on it, or for adding it if ``additive``."""
        check_model(model)
        check_d_model("vector", self.d_model, model)
        for layer in self.layers:
            normalise_layer(model, layer)
        exact = additive or all_centred(self.directions.values())
        what = "Projecting on it (ablate, clamp, project)"
        check_basis(self.basis, model, exact_across_bases=exact, what=what)

    def select(self, layers: Any) -> SteeringVector:
        """The same vector on a subset of its layers (``None``: all of them)."""
        if layers is None:
            return self
        chosen = layer_list(layers)
        missing = [layer for layer in chosen if layer not in self.directions]
        if missing:
            raise SteerlensError(
                f"layers: {chosen} must be a subset of the vector's layers {self.layers}"
            )
        return replace(self, directions={layer: self[layer] for layer in sorted(chosen)})

    # --- files --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write a safetensors file with the metadata as JSON in its header (no pickle)."""
        meta = {
            "site": self.site,
            "method": self.method,
            "model_name": self.model_name,
            "position": self.position,
            "params": self.params,
            "data_hash": self.data_hash,
            "basis": self.basis,
        }
        vector_file.write(path, self.directions, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, model: Any = None) -> SteeringVector:
        """Read a file written by ``save``; validates it, and its fit to ``model`` if given
        (d_model and layers; the residual basis is checked where the vector is used)."""
        if model is not None:
            check_model(model)
        directions, meta = vector_file.read(path)
        try:
            vector = cls(directions=directions, **meta)
        except SteerlensError as error:
            raise type(error)(
                f"path: {os.fspath(path)!r} holds an invalid vector: {error}"
            ) from error
        if model is not None:
            vector.check_model(model, additive=True)
        return vector

    # --- llama.cpp interop --------------------------------------------------------------
    def to_gguf(self, path: str | os.PathLike, model_hint: str | None = None) -> None:
        """Write a llama.cpp control vector (layer mapping: ``core.control_vectors``)."""
        check_path("path", path)
        if model_hint is not None:
            check_text("model_hint", model_hint)
        directions = {
            gguf.tl_layer_to_gguf_index(layer, self.site): v for layer, v in self.directions.items()
        }
        gguf.write_control_vector(path, directions, model_hint=model_hint or self.model_name or "")

    @classmethod
    def from_gguf(cls, path: str | os.PathLike, site: str = "resid_pre") -> SteeringVector:
        """Read a llama.cpp / repeng control vector as directions at ``site`` (read on
        llama.cpp's plain residual: basis ``"plain"``)."""
        gguf.check_control_site(site)
        check_path("path", path)
        directions, hint = gguf.read_control_vector(path)
        return cls(
            {gguf.gguf_index_to_tl_layer(n, site): v for n, v in directions.items()},
            site=site,
            method="gguf_control_vector",
            model_name=hint or None,
        )


def as_vector(vector: Any, layers: Any, site: str | None, name: str = "vector") -> SteeringVector:
    """A ``SteeringVector``, or a raw ``[d_model]`` tensor placed at ``layers`` (``name``:
    the argument, for the error message)."""
    if isinstance(vector, SteeringVector):
        return vector
    if isinstance(vector, Tensor):
        if layers is None:
            raise SteerlensError("layers: required when the vector is a raw tensor")
        return SteeringVector(
            {layer: vector for layer in layer_list(layers)},
            site=check_site("resid_pre" if site is None else site),
        )
    raise SteerlensTypeError(
        f"{name}: expected a SteeringVector or a [d_model] tensor, got {shown(vector)}"
    )


def single_layer(vector: Any, layer: Any, name: str = "vector") -> tuple[SteeringVector, int]:
    """``(vector, layer)``: ``vector`` as a ``SteeringVector`` and the one layer to use:
    ``layer`` if given (a raw tensor is placed there), else the vector's only layer."""
    if layer is not None:
        layer = check_int("layer", layer)
    vector = as_vector(vector, layer, None, name)
    if layer is None and len(vector.layers) != 1:
        raise SteerlensError(f"layer: the {name} has layers {vector.layers}; name the one to use")
    chosen = vector.layers[0] if layer is None else layer
    if chosen not in vector.directions:
        raise SteerlensError(f"layer: the {name} has no layer {chosen} (it has {vector.layers})")
    return vector, chosen
