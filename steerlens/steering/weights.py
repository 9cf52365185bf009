"""Weight orthogonalization (Arditi et al.): a direction removed from the model's weights.

Every matrix that writes to the residual stream (token and position embeddings, each
attention output and MLP output projection, and their biases) gets ``W <- (I - u u^T) W``
on its output side, ``u`` the unit direction. The residual then never has a component
along ``u``, and the edited model computes what the original computes under
``sl.ablate(u)`` at every residual write point (``resid_pre`` of the first block and every
``resid_mid`` / ``resid_post``). A tied unembedding is untied first, so the readout stays.
``save_model`` writes the edited weights as a Hugging Face folder ``sl.load_model`` reads.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn

from ..core.errors import SteerlensError
from ..core.forward import is_bridge
from ..core.hookpoints import check_d_model
from ..core.linalg import unit
from ..core.validate import check_bool, check_model, check_path
from ..core.vector import SteeringVector, single_layer

#: (sublayer, projection) of each block whose output is added to the residual stream.
WRITER_PARTS = (("attn", "o"), ("mlp", "out"))


def _direction(model: Any, vector: Any, layer: int | None) -> Float[Tensor, " d_model"]:
    """The unit direction to remove, from a one-layer vector, ``layer``, or a tensor."""
    raw = isinstance(vector, Tensor) and layer is None  # a bare direction: any layer
    vector, chosen = single_layer(vector, 0 if raw else layer)
    check_d_model("vector", vector.d_model, model)
    return unit(vector[chosen], f"vector[{chosen}]").double()


def _check_editable(model: Any) -> None:
    if not is_bridge(model):
        raise SteerlensError(
            "model: orthogonalize_weights edits a TransformerBridge (sl.load_model's default)"
        )
    if getattr(model, "compatibility_mode", False):
        raise SteerlensError(
            "model: compatibility mode processes the weights; load it without "
            "compatibility_mode to orthogonalize them"
        )
    for index, block in enumerate(model.blocks):
        post_norms = [name for name, _ in block.named_children() if name.endswith("_post")]
        missing = [f"{part}.{name}" for part, name in WRITER_PARTS if not _has(block, part, name)]
        if post_norms or missing:
            raise SteerlensError(
                f"model: block {index} writes to the residual through "
                f"{post_norms or missing} (a norm after the sublayer, or no plain output "
                "projection), which a weight edit cannot make orthogonal"
            )


def _has(block: Any, part: str, name: str) -> bool:
    return name in dict(getattr(block, part).named_children())


def writers(model: Any) -> list[nn.Module]:
    """The modules whose outputs are added to the residual stream."""
    bridges = [model.embed, *([model.pos_embed] if hasattr(model, "pos_embed") else [])]
    for block in model.blocks:
        bridges += [getattr(getattr(block, part), name) for part, name in WRITER_PARTS]
    return [bridge.original_component for bridge in bridges]


def _remove(module: nn.Module, u: Tensor) -> None:
    """Project ``u`` out of ``module``'s outputs (its weight's output side and its bias)."""
    weight = module.weight
    w = weight.data.double()
    # nn.Linear [d_model, d_in] has outputs as columns; nn.Embedding [vocab, d_model] and
    # GPT-2's Conv1D [d_in, d_model] as rows.
    columns = isinstance(module, nn.Linear)
    w = w - torch.outer(u, u @ w) if columns else w - torch.outer(w @ u, u)
    weight.data.copy_(w.to(weight.dtype))
    bias = getattr(module, "bias", None)
    if bias is not None:
        b = bias.data.double()
        bias.data.copy_((b - (b @ u) * u).to(bias.dtype))


def _untie(model: Any) -> None:
    """Give the unembedding its own weight when it shares the embedding's."""
    embedding = model.embed.original_component.weight
    unembed = model.unembed.original_component
    if unembed.weight is embedding or unembed.weight.data_ptr() == embedding.data_ptr():
        unembed.weight = nn.Parameter(unembed.weight.detach().clone())
        model.original_model.config.tie_word_embeddings = False


def orthogonalize_weights(
    model: Any,
    vector: SteeringVector | Tensor,
    *,
    layer: int | None = None,
    inplace: bool = False,
) -> Any:
    """Remove a direction from every weight that writes to the residual stream.

    Args:
        model: a ``TransformerBridge`` (not in compatibility mode).
        vector: a one-layer ``SteeringVector`` or a ``[d_model]`` tensor (the direction).
        layer: which layer's direction to use when the vector has several.
        inplace: edit ``model`` itself instead of returning an edited copy.

    Returns:
        The edited model (a copy unless ``inplace``); it computes what ``model`` computes
        under ``sl.ablate`` of the direction at every residual write point.

    Example:
        >>> edited = sl.orthogonalize_weights(model, refusal.select([12]))
        >>> sl.steering.save_model(edited, "smollm2-orthogonalized")
    """
    check_model(model)
    check_bool("inplace", inplace)
    u = _direction(model, vector, layer)
    _check_editable(model)
    edited = model if inplace else copy.deepcopy(model)
    _untie(edited)
    with torch.no_grad():
        for module in writers(edited):
            _remove(module, u.to(module.weight.device))
    return edited


def _hf_module(root: nn.Module, path: list[str]) -> nn.Module:
    """The Hugging Face module at ``path`` inside a booted model (bridges unwrapped)."""
    current = root
    for name in path:
        current = getattr(current, name)
        while hasattr(current, "original_component") and current.original_component is not None:
            current = current.original_component
    return current


def save_model(model: Any, folder: str | os.PathLike) -> None:
    """Write a bridge's current weights and tokenizer as a Hugging Face folder.

    ``sl.load_model(folder)`` loads it back. The weights are those the bridge runs with
    (e.g. after ``orthogonalize_weights``), under the Hugging Face names.
    """
    from transformers import AutoModelForCausalLM

    check_model(model)
    folder = check_path("folder", folder)
    if not is_bridge(model):
        raise SteerlensError("model: save_model writes a TransformerBridge's Hugging Face model")
    hf_model = model.original_model
    fresh = AutoModelForCausalLM.from_config(hf_model.config, dtype=hf_model.dtype)
    weights = {}
    for key in fresh.state_dict():
        *path, leaf = key.split(".")
        weights[key] = getattr(_hf_module(hf_model, path), leaf).detach()
    fresh.load_state_dict(weights, strict=True)
    fresh.save_pretrained(folder)
    model.tokenizer.save_pretrained(folder)
