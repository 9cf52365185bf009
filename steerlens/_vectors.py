"""``SteeringVector``: per-layer directions plus where they were read and how they were made."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from jaxtyping import Float
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from ._errors import SteerlensError
from ._hooks import check_site, d_model, hook_name, model_name, normalise_layer

FORMAT = "steerlens.SteeringVector/1"


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
        params: the creation parameters (JSON-serialisable).
        data_hash: a hash of the data the vector was computed from, if any.

    Example:
        >>> vec = sl.mean_difference(model, positives, negatives, layers=[8, 12])
        >>> vec.layers, vec[8].shape
        ([8, 12], torch.Size([576]))
    """

    directions: Mapping[int, Float[Tensor, " d_model"]]
    site: str = "resid_pre"
    method: str = "manual"
    model_name: str | None = None
    position: str = "last"
    params: Mapping[str, Any] = field(default_factory=dict)
    data_hash: str | None = None

    def __post_init__(self) -> None:
        check_site(self.site)
        if not self.directions:
            raise SteerlensError("directions: expected at least one layer, got none")
        cleaned: dict[int, Tensor] = {}
        sizes = set()
        for layer, vector in sorted(self.directions.items()):
            if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
                raise SteerlensError(f"directions: layer keys must be ints >= 0, got {layer!r}")
            if not isinstance(vector, Tensor) or vector.ndim != 1 or vector.numel() == 0:
                shape = tuple(vector.shape) if isinstance(vector, Tensor) else type(vector)
                raise SteerlensError(
                    f"directions[{layer}]: expected a 1-D tensor [d_model], got {shape}"
                )
            if not vector.is_floating_point():
                raise SteerlensError(f"directions[{layer}]: expected floats, got {vector.dtype}")
            if not bool(torch.isfinite(vector).all()):
                raise SteerlensError(f"directions[{layer}]: contains NaN or inf")
            sizes.add(vector.numel())
            cleaned[layer] = vector.detach().to("cpu", torch.float32).clone()
        if len(sizes) > 1:
            raise SteerlensError(f"directions: layers disagree on d_model: {sorted(sizes)}")
        json.dumps(dict(self.params))  # fails early if params cannot be saved
        object.__setattr__(self, "directions", cleaned)
        object.__setattr__(self, "params", dict(self.params))

    # --- access -------------------------------------------------------------------------
    @property
    def layers(self) -> list[int]:
        return list(self.directions)

    @property
    def d_model(self) -> int:
        return next(iter(self.directions.values())).numel()

    def __getitem__(self, layer: int) -> Float[Tensor, " d_model"]:
        if layer not in self.directions:
            raise SteerlensError(f"layer: {layer!r} is not in this vector's layers {self.layers}")
        return self.directions[layer]

    def norms(self) -> dict[int, float]:
        return {layer: float(v.norm()) for layer, v in self.directions.items()}

    def __repr__(self) -> str:
        names = hook_name(0, self.site).replace(
            ".0.", ".{" + ",".join(map(str, self.layers)) + "}."
        )
        norms = ", ".join(f"{layer}: {n:.3g}" for layer, n in self.norms().items())
        return (
            f"SteeringVector(method={self.method!r}, model={self.model_name!r}, "
            f"d_model={self.d_model}, read at {names} [{self.position} token], "
            f"applies at {names} unless an intervention names another site, "
            f"norms {{{norms}}}, data_hash={self.data_hash!r})"
        )

    # --- algebra ------------------------------------------------------------------------
    def _with(self, directions: Mapping[int, Tensor], method: str) -> SteeringVector:
        return replace(self, directions=directions, method=method)

    def _check_compatible(self, other: SteeringVector, op: str) -> None:
        if not isinstance(other, SteeringVector):
            raise SteerlensError(f"other: expected a SteeringVector for {op}, got {type(other)}")
        if other.layers != self.layers or other.site != self.site:
            raise SteerlensError(
                f"other: {op} needs the same layers and site; got {self.layers}@{self.site} "
                f"and {other.layers}@{other.site}"
            )
        if other.d_model != self.d_model:
            raise SteerlensError(f"other: d_model {other.d_model} != {self.d_model}")

    def __add__(self, other: SteeringVector) -> SteeringVector:
        self._check_compatible(other, "+")
        summed = {layer: v + other[layer] for layer, v in self.directions.items()}
        return self._with(summed, f"({self.method} + {other.method})")

    def __sub__(self, other: SteeringVector) -> SteeringVector:
        return self + (-other)

    def __neg__(self) -> SteeringVector:
        return self * -1.0

    def __mul__(self, scale: float) -> SteeringVector:
        if (
            isinstance(scale, bool)
            or not isinstance(scale, (int, float))
            or not math.isfinite(scale)
        ):
            raise SteerlensError(f"scale: expected a finite number, got {scale!r}")
        return self._with({layer: v * scale for layer, v in self.directions.items()}, self.method)

    __rmul__ = __mul__

    def unit(self) -> SteeringVector:
        """The same directions scaled to norm 1 per layer (zero vectors are refused)."""
        zero = [layer for layer, n in self.norms().items() if n == 0.0]
        if zero:
            raise SteerlensError(f"vector: layers {zero} are zero and have no direction")
        return self._with({lay: v / v.norm() for lay, v in self.directions.items()}, self.method)

    def cosine(self, other: SteeringVector) -> dict[int, float]:
        """Cosine similarity per shared layer."""
        if not isinstance(other, SteeringVector):
            raise SteerlensError(f"other: expected a SteeringVector, got {type(other)}")
        shared = [layer for layer in self.layers if layer in other.directions]
        if not shared:
            raise SteerlensError(f"other: no shared layers ({self.layers} vs {other.layers})")
        return {
            layer: float(torch.cosine_similarity(self[layer], other[layer], dim=0))
            for layer in shared
        }

    def check_model(self, model: Any) -> None:
        """Raise unless the vector fits ``model`` (d_model and layer range)."""
        if self.d_model != d_model(model):
            raise SteerlensError(
                f"vector: d_model {self.d_model} does not match the model's {d_model(model)} "
                f"({model_name(model)})"
            )
        for layer in self.layers:
            normalise_layer(model, layer)

    # --- files --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write a safetensors file with the metadata as JSON in its header (no pickle)."""
        meta = {
            "format": FORMAT,
            "site": self.site,
            "method": self.method,
            "model_name": self.model_name,
            "position": self.position,
            "params": self.params,
            "data_hash": self.data_hash,
            "d_model": self.d_model,
            "layers": self.layers,
        }
        tensors = {f"layer.{layer}": v.contiguous() for layer, v in self.directions.items()}
        save_file(tensors, os.fspath(path), metadata={"steerlens": json.dumps(meta)})

    @classmethod
    def load(cls, path: str | os.PathLike, model: Any = None) -> SteeringVector:
        """Read a file written by ``save``; validates it, and its fit to ``model`` if given."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise SteerlensError(f"path: no file at {path!r}")
        try:
            with safe_open(path, framework="pt") as handle:
                header = handle.metadata() or {}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            raise SteerlensError(
                f"path: {path!r} is not a readable safetensors file ({error}); steerlens never "
                "unpickles files"
            ) from error
        try:
            meta = json.loads(header["steerlens"])
            if meta.get("format") != FORMAT:
                raise KeyError("format")
            layers = [int(layer) for layer in meta["layers"]]
        except (KeyError, ValueError, TypeError) as error:
            raise SteerlensError(
                f"path: {path!r} has no valid steerlens metadata (missing/invalid {error})"
            ) from error
        if sorted(tensors) != sorted(f"layer.{layer}" for layer in layers):
            raise SteerlensError(
                f"path: tensors {sorted(tensors)} do not match the metadata's layers {layers}"
            )
        if any(t.ndim != 1 or t.numel() != meta["d_model"] for t in tensors.values()):
            raise SteerlensError(f"path: tensor shapes do not match d_model={meta['d_model']}")
        vector = cls(
            directions={layer: tensors[f"layer.{layer}"] for layer in layers},
            site=meta["site"],
            method=meta["method"],
            model_name=meta["model_name"],
            position=meta["position"],
            params=meta["params"],
            data_hash=meta["data_hash"],
        )
        if model is not None:
            vector.check_model(model)
        return vector

    # --- llama.cpp interop --------------------------------------------------------------
    def to_gguf(self, path: str | os.PathLike, model_hint: str | None = None) -> None:
        """Write a llama.cpp control vector (see ``steerlens._gguf`` for the layer mapping)."""
        from ._gguf import tl_layer_to_gguf_index, write_control_vector

        directions = {
            tl_layer_to_gguf_index(layer, self.site): v for layer, v in self.directions.items()
        }
        write_control_vector(path, directions, model_hint=model_hint or self.model_name or "")

    @classmethod
    def from_gguf(cls, path: str | os.PathLike, site: str = "resid_pre") -> SteeringVector:
        """Read a llama.cpp / repeng control vector as directions at ``site``."""
        from ._gguf import gguf_index_to_tl_layer, read_control_vector

        check_site(site)
        directions, hint = read_control_vector(path)
        return cls(
            {gguf_index_to_tl_layer(n, site): v for n, v in directions.items()},
            site=site,
            method="gguf_control_vector",
            model_name=hint or None,
        )


def as_vector(
    vector: SteeringVector | Tensor, layers: Sequence[int] | None, site: str | None
) -> SteeringVector:
    """Accept a ``SteeringVector`` or a raw ``[d_model]`` tensor plus ``layers``."""
    if isinstance(vector, SteeringVector):
        return vector
    if isinstance(vector, Tensor):
        if layers is None:
            raise SteerlensError("layers: required when the vector is a raw tensor")
        layers = [layers] if isinstance(layers, int) else list(layers)
        return SteeringVector({layer: vector for layer in layers}, site=site or "resid_pre")
    raise SteerlensError(
        f"vector: expected a SteeringVector or a [d_model] tensor, got {type(vector).__name__}"
    )
