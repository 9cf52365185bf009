"""Generation through the Hugging Face modules a TransformerBridge wraps.

A bridge stands a Python component in front of every Hugging Face module (attention,
MLP, norms, each linear layer) so that all of TransformerLens's hook points exist, and it
recomputes attention step by step for ``hook_pattern``. Steering at ``resid_pre`` or
``resid_post`` needs none of that (what it cost is measured in docs/results.md, "Steered
generate"). ``native_forward`` puts the wrapped modules back for the
length of a ``with`` block and keeps only the hook points that can still fire exactly:
each block's ``hook_in`` / ``hook_out`` (``hook_resid_pre`` / ``hook_resid_post``), run by
plain PyTorch hooks on the Hugging Face decoder layer, and the embedding (which the
position tracker watches). Attention runs as PyTorch's ``scaled_dot_product_attention``
and the prompt pass computes the last position's logits only.

It steps aside (the bridge runs as usual) when anything could tell the difference: a hook
on any other hook point or a PyTorch hook on a component it would skip, processed weights
(compatibility mode), offloaded or split weights, or a block that is not a plain
``BlockBridge``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn

from .cache_keyword import hand_over_cache

#: the attention implementation used while the bridge's own attention is skipped
FAST_ATTENTION = "sdpa"


def _original(module: nn.Module) -> nn.Module | None:
    """The Hugging Face module a bridge component wraps (``None`` for anything else)."""
    from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent

    if not isinstance(module, GeneralizedComponent):
        return None
    return module._modules.get("_original_component")


def _bridged(model: Any) -> list[tuple[nn.Module, str, nn.Module]]:
    """``(parent, name, bridge component)`` for every component to skip, outermost first:
    all of them in the Hugging Face tree except the embedding."""
    found: list[tuple[nn.Module, str, nn.Module]] = []

    def walk(module: nn.Module) -> None:
        for name, child in module._modules.items():
            original = None if child is None or child is model.embed else _original(child)
            if original is not None:
                found.append((module, name, child))
                walk(original)
            elif child is not None:
                walk(child)

    walk(model.original_model)
    return found


def _hooked(module: nn.Module, internal: frozenset[int] = frozenset()) -> bool:
    """Whether ``module`` carries PyTorch hooks, leaving aside the KV-cache keyword shim and
    the hooks whose ids are in ``internal``."""
    pre = [
        key
        for key, hook in module._forward_pre_hooks.items()
        if hook is not hand_over_cache and key not in internal
    ]
    post = [key for key in module._forward_hooks if key not in internal]
    return bool(pre or post or module._backward_hooks)


def _capture_hook_ids(blocks: list[nn.Module]) -> frozenset[int]:
    """The ids of the hooks a ``BlockBridge`` puts on its norms on its first forward: they
    only copy inputs for hook points of the block (``hook_mlp_in``, the attention's split
    q/k/v), whose own hooks ``_why_not`` checks."""
    handles = [h for block in blocks for h in getattr(block, "_capture_hook_handles", [])]
    return frozenset(handle.id for handle in handles)


def _why_not(model: Any, bridged: list[tuple[nn.Module, str, nn.Module]]) -> str | None:
    """Why the bridge must run as usual, or ``None`` if its modules can run natively."""
    from transformer_lens.model_bridge.generalized_components.block import BlockBridge

    if getattr(model, "_weights_processed", False):
        return "processed weights"
    if getattr(model.original_model, "hf_device_map", None):
        return "a device map"
    blocks = list(getattr(model, "blocks", []))
    if not blocks or any(type(block) is not BlockBridge for block in blocks):
        return "a block that is not a plain BlockBridge"
    live = {id(block.hook_in) for block in blocks} | {id(block.hook_out) for block in blocks}
    live |= {id(point) for point in model.embed.modules()}
    for name, point in model.hook_dict.items():
        if id(point) not in live and _hooked(point):
            return f"a hook on {name}"
    internal = _capture_hook_ids(blocks)
    for _, _, component in bridged:
        if _hooked(component, internal):
            return f"a PyTorch hook on {type(component).__name__}"
    return None


def _residual_hooks(block: nn.Module, layer: nn.Module) -> list[Any]:
    """Hooks on the Hugging Face ``layer`` that run ``block.hook_in`` on its input hidden
    states and ``block.hook_out`` on its output, as ``BlockBridge.forward`` does."""

    def before(_module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if args:
            return (block.hook_in(args[0]), *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": block.hook_in(kwargs["hidden_states"])}

    def after(_module: nn.Module, _args: tuple, _kwargs: dict, output: Any) -> Any:
        if isinstance(output, tuple):
            return (block.hook_out(output[0]), *output[1:])
        return block.hook_out(output)

    return [
        layer.register_forward_pre_hook(before, with_kwargs=True),
        layer.register_forward_hook(after, with_kwargs=True),
    ]


def _last_logits_only(_module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    return args, {**kwargs, "logits_to_keep": 1}


@contextmanager
def native_forward(model: Any) -> Iterator[bool]:
    """Inside the block, ``model``'s forward runs on its Hugging Face modules when nothing
    but residual-stream hooks could notice (see the module docstring). Yields whether it
    did; everything is put back on exit, exceptions included.

    Only for callers that read the last position's logits (generation).
    """
    bridged = _bridged(model)
    if _why_not(model, bridged) is not None:
        yield False
        return
    hf_model = model.original_model
    attention = hf_model.config._attn_implementation
    blocks = list(model.blocks)  # read first: the swap below changes what it returns
    handles: list[Any] = []
    try:
        for parent, name, component in bridged:
            parent._modules[name] = _original(component)
        for block in blocks:
            handles += _residual_hooks(block, _original(block))
        if getattr(type(hf_model), "_supports_sdpa", False):
            hf_model.set_attn_implementation(FAST_ATTENTION)
        if "logits_to_keep" in inspect.signature(hf_model.forward).parameters:
            handles.append(hf_model.register_forward_pre_hook(_last_logits_only, with_kwargs=True))
        yield True
    finally:
        for handle in handles:
            handle.remove()
        for parent, name, component in reversed(bridged):
            parent._modules[name] = component
        if hf_model.config._attn_implementation != attention:
            hf_model.set_attn_implementation(attention)
