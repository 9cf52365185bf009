"""The llama.cpp control-vector GGUF format (what repeng writes and ``--control-vector`` reads).

Format: GGUF architecture ``"controlvector"``, metadata ``controlvector.model_hint``
(string) and ``controlvector.layer_count`` (uint32), one float32 tensor ``direction.{N}`` of
shape ``[d_model]`` per layer.

Layer convention: llama.cpp adds ``direction.N`` to the *output* of its 0-based layer ``N``
(the control vector is applied at the end of each layer's compute), for
``1 <= N <= n_layer - 1``; there is never a vector for ``N = 0``. repeng uses the same index
for the output of ``model.layers[N]``. In TransformerLens names that output is
``blocks.{N}.hook_resid_post``, which equals ``blocks.{N+1}.hook_resid_pre``.
So ``resid_post`` of layer ``l`` is ``direction.{l}`` and ``resid_pre`` of layer ``l`` is
``direction.{l-1}``; ``resid_post`` of layer 0, ``resid_pre`` of layers 0 and 1, and any
``resid_mid`` have no control-vector equivalent and are refused.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import gguf
import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from .errors import SteerlensError
from .hookpoints import check_site

ARCH = "controlvector"
CONTROL_SITES = ("resid_pre", "resid_post")


def check_control_site(site: str) -> str:
    """``site`` if a control vector can be read or written there (``resid_mid`` cannot)."""
    if check_site(site) not in CONTROL_SITES:
        raise SteerlensError(
            f"site: llama.cpp control vectors have no {site!r} equivalent; use one of "
            f"{CONTROL_SITES}"
        )
    return site


def tl_layer_to_gguf_index(layer: int, site: str) -> int:
    """The ``direction.N`` index for a TransformerLens (layer, site)."""
    check_control_site(site)
    index = layer if site == "resid_post" else layer - 1
    if index < 1:
        raise SteerlensError(
            f"layer: {site} of layer {layer} would be direction.{index}; llama.cpp never "
            "applies a control vector before the output of its layer 1"
        )
    return index


def gguf_index_to_tl_layer(index: int, site: str = "resid_pre") -> int:
    """The TransformerLens layer of ``direction.{index}`` at ``site``."""
    check_control_site(site)
    if index < 1:
        raise SteerlensError(f"index: direction.{index} is not valid (llama.cpp starts at 1)")
    return index + 1 if site == "resid_pre" else index


def write_control_vector(
    path: str | os.PathLike,
    directions: Mapping[int, Float[Tensor, " d_model"]],
    *,
    model_hint: str,
) -> None:
    """Write ``{N: direction}`` (``N >= 1``) as a llama.cpp control vector."""
    if not directions:
        raise SteerlensError("directions: expected at least one layer, got none")
    bad = [n for n in directions if n < 1]
    if bad:
        raise SteerlensError(f"directions: indices {bad} are invalid; llama.cpp starts at 1")
    writer = gguf.GGUFWriter(os.fspath(path), ARCH)
    writer.add_string(f"{ARCH}.model_hint", model_hint)
    writer.add_uint32(f"{ARCH}.layer_count", len(directions))
    for index, vector in sorted(directions.items()):
        writer.add_tensor(f"direction.{index}", vector.detach().cpu().float().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def read_control_vector(path: str | os.PathLike) -> tuple[dict[int, Tensor], str]:
    """Read a llama.cpp control vector: ``({N: direction}, model_hint)``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SteerlensError(f"path: no file at {path!r}")
    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, OSError, IndexError) as error:
        raise SteerlensError(f"path: {path!r} is not a readable GGUF file ({error})") from error
    arch = reader.fields.get("general.architecture")
    if arch is None or bytes(arch.parts[-1]).decode() != ARCH:
        raise SteerlensError(f"path: {path!r} is a GGUF file but not a control vector")
    hint = reader.fields.get(f"{ARCH}.model_hint")
    model_hint = bytes(hint.parts[-1]).decode() if hint is not None else ""
    directions = {}
    for tensor in reader.tensors:
        if tensor.name.startswith("direction."):
            data = np.array(tensor.data, dtype=np.float32).reshape(-1)
            directions[int(tensor.name.split(".", 1)[1])] = torch.from_numpy(data.copy())
    if not directions:
        raise SteerlensError(f"path: {path!r} holds no direction.N tensors")
    return directions, model_hint
