"""Padding-aware forward passes on either kind of TransformerLens model."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .hookpoints import model_device
from .types import Mask, Tokens


def is_bridge(model: Any) -> bool:
    """True for a TransformerLens 4 ``TransformerBridge`` (HF model underneath)."""
    return hasattr(model, "original_model") and hasattr(model, "boot_transformers")


def position_ids(mask: Mask) -> Tokens:
    """Absolute positions counted from each row's first real token (pads get 0)."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def mask_kwargs(model: Any, mask: Mask) -> dict[str, Tensor]:
    """Keyword arguments that make a left-padded forward match unpadded runs.

    A bridge forwards them to Hugging Face (whose default positions ignore the mask); a
    classic ``HookedTransformer`` derives positions from ``attention_mask`` itself.
    """
    device = model_device(model)
    kwargs = {"attention_mask": mask.long().to(device)}
    if is_bridge(model):
        kwargs["position_ids"] = position_ids(mask).to(device)
    return kwargs


def run(model: Any, tokens: Tokens, mask: Mask, **kwargs: Any) -> Any:
    """``model(tokens, ...)`` without gradients, padding handled; kwargs go to the model."""
    with torch.no_grad():
        return model(tokens.to(model_device(model)), **mask_kwargs(model, mask), **kwargs)
