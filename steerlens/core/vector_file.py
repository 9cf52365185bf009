"""The steering-vector file: safetensors tensors plus a JSON metadata header, never pickle.

Schema (``FORMAT``): one tensor ``layer.{l}`` of shape ``[d_model]`` per layer, of a float
dtype in ``DTYPES`` (kept as float32 after loading, and finite there), and under the
header key ``"steerlens"`` a JSON object with exactly the keys of ``FIELDS`` (``basis``, the
residual basis, is optional: files written before it existed load as ``"plain"``, the basis
they were all read in). Every check
runs before a tensor is used; a malformed file raises ``SteerlensError`` naming the path
and the field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from .basis import BASES
from .errors import SteerlensError
from .hookpoints import SITES
from .validate import check_path, is_int

FORMAT = "steerlens.SteeringVector/1"
DTYPES = ("F32", "F16", "BF16", "F64")  # safetensors dtype codes
FIELDS = (
    "format",
    "site",
    "method",
    "model_name",
    "position",
    "params",
    "data_hash",
    "d_model",
    "layers",
    "basis",
)
#: fields older files may lack, with the value they mean
OPTIONAL = {"basis": "plain"}


def write(path: str | os.PathLike, directions: Mapping[int, Tensor], meta: Mapping) -> None:
    """Save ``directions`` (layer -> [d_model] float32) and ``meta`` under ``path``."""
    path = check_path("path", path)
    if os.path.isdir(path):
        raise SteerlensError(f"path: {path!r} is a directory; give a file name to save to")
    first = next(iter(directions.values()))
    header = {
        "format": FORMAT,
        **meta,
        "d_model": int(first.numel()),
        "layers": list(directions),
    }
    tensors = {f"layer.{layer}": v.contiguous() for layer, v in directions.items()}
    try:
        save_file(tensors, path, metadata={"steerlens": json.dumps(header)})
    except Exception as error:  # noqa: BLE001 - OSError, or safetensors' own I/O error
        raise SteerlensError(f"path: cannot write {path!r} ({error})") from error


def read(path: str | os.PathLike) -> tuple[dict[int, Tensor], dict[str, Any]]:
    """``(directions, fields)`` of a vector file: the keyword arguments of ``SteeringVector``
    besides ``directions`` (``format``, ``d_model`` and ``layers`` are checked and dropped)."""
    path = check_path("path", path)
    if not os.path.isfile(path):
        raise SteerlensError(f"path: no file at {path!r}")
    try:
        with safe_open(path, framework="pt") as handle:
            header = handle.metadata() or {}
            names = list(handle.keys())
            meta = _metadata(path, header)
            _check_names(path, names, meta)
            dtypes = {name: handle.get_slice(name).get_dtype() for name in names}
            _check_dtypes(path, dtypes)
            tensors = {name: handle.get_tensor(name) for name in names}
    except SteerlensError:
        raise
    except Exception as error:  # noqa: BLE001 - any parse failure of a foreign file
        raise SteerlensError(
            f"path: {path!r} is not a readable safetensors file ({type(error).__name__}: "
            f"{error}); steerlens never unpickles files"
        ) from error
    directions = {}
    for layer in meta["layers"]:
        directions[layer] = _direction(path, layer, tensors[f"layer.{layer}"], meta["d_model"])
    fields = {k: v for k, v in meta.items() if k not in ("format", "d_model", "layers")}
    return directions, fields


def _bad(path: str, field: str, why: str) -> SteerlensError:
    return SteerlensError(f"path: {path!r} has invalid metadata field {field!r}: {why}")


def _metadata(path: str, header: Mapping[str, str]) -> dict[str, Any]:
    if "steerlens" not in header:
        raise SteerlensError(f"path: {path!r} has no steerlens metadata (header key 'steerlens')")
    try:
        meta = json.loads(header["steerlens"])
    except ValueError as error:
        raise _bad(path, "steerlens", f"not JSON ({error})") from error
    if not isinstance(meta, dict):
        raise _bad(path, "steerlens", f"expected a JSON object, got {type(meta).__name__}")
    meta = {**OPTIONAL, **meta}
    missing = [k for k in FIELDS if k not in meta]
    if missing:
        raise _bad(path, missing[0], "missing")
    extra = sorted(set(meta) - set(FIELDS))
    if extra:
        raise _bad(path, extra[0], f"unknown field (valid: {list(FIELDS)})")
    if meta["format"] != FORMAT:
        raise _bad(path, "format", f"expected {FORMAT!r}, got {meta['format']!r}")
    if meta["site"] not in SITES:
        raise _bad(path, "site", f"expected one of {SITES}, got {meta['site']!r}")
    if meta["basis"] not in BASES:
        raise _bad(path, "basis", f"expected one of {BASES}, got {meta['basis']!r}")
    for key in ("method", "position"):
        if not isinstance(meta[key], str) or not meta[key]:
            raise _bad(path, key, f"expected a non-empty string, got {meta[key]!r}")
    for key in ("model_name", "data_hash"):
        if meta[key] is not None and not (isinstance(meta[key], str) and meta[key]):
            raise _bad(path, key, f"expected a non-empty string or null, got {meta[key]!r}")
    if not isinstance(meta["params"], dict):
        raise _bad(path, "params", f"expected an object, got {type(meta['params']).__name__}")
    if not is_int(meta["d_model"]) or meta["d_model"] < 1:
        raise _bad(path, "d_model", f"expected an int >= 1, got {meta['d_model']!r}")
    layers = meta["layers"]
    if (
        not isinstance(layers, list)
        or not layers
        or not all(is_int(layer) and 0 <= layer < 2**31 for layer in layers)
        or len(set(layers)) != len(layers)
    ):
        raise _bad(
            path, "layers", f"expected a non-empty list of distinct ints >= 0, got {layers!r}"
        )
    return meta


def _check_names(path: str, names: list[str], meta: Mapping[str, Any]) -> None:
    expected = sorted(f"layer.{layer}" for layer in meta["layers"])
    if sorted(names) != expected:
        raise _bad(path, "layers", f"tensors {sorted(names)} do not match the layers {expected}")


def _check_dtypes(path: str, dtypes: Mapping[str, str]) -> None:
    for name, dtype in dtypes.items():
        if dtype not in DTYPES:
            raise SteerlensError(
                f"path: {path!r} tensor {name!r} has dtype {dtype}; expected one of "
                f"{list(DTYPES)} (safetensors codes of float32, float16, bfloat16, float64)"
            )


def _direction(path: str, layer: int, tensor: Tensor, size: int) -> Tensor:
    if tensor.ndim != 1 or tensor.numel() != size:
        raise SteerlensError(
            f"path: {path!r} tensor 'layer.{layer}' has shape {tuple(tensor.shape)}; the "
            f"metadata's d_model is {size}"
        )
    direction = tensor.to(torch.float32)
    if not bool(torch.isfinite(direction).all()):
        raise SteerlensError(f"path: {path!r} tensor 'layer.{layer}' holds NaN or inf (as float32)")
    return direction
