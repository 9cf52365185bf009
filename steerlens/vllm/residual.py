"""The residual stream of vLLM's decoder layers, hooked at ``resid_pre``/``mid``/``post``.

vLLM's decoder layers pass the stream as two tensors, ``(hidden_states, residual)``, and
add them inside the next fused RMSNorm: the residual stream is their sum (the first
layer's input is ``hidden_states`` alone). An edit must change the sum. So at a hooked point
the stream ``s = h + r`` is formed, edited in place at the selected tokens, and handed on
as ``(0, s)`` for those tokens (the fused add then gives exactly ``s``) and as the untouched
``(h, r)`` for every other token, which therefore runs bit for bit as without steerlens.

- ``resid_pre`` of layer ``l``: a forward pre-hook on the layer (its ``(h, r)`` inputs);
- ``resid_mid``: a pre-hook on the norm that adds the attention output to the residual
  before the MLP (``post_attention_layernorm``; Gemma 2/3: ``pre_feedforward_layernorm``);
- ``resid_post``: a forward hook on the layer (its ``(h, r)`` output).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jaxtyping import Float
from torch import Tensor, nn

from ..core.errors import SteerlensError

#: vLLM architectures whose decoder layers carry ``(hidden_states, residual)``, with the
#: norm that forms ``resid_mid``.
MID_NORM = {
    "LlamaForCausalLM": "post_attention_layernorm",
    "MistralForCausalLM": "post_attention_layernorm",
    "Qwen2ForCausalLM": "post_attention_layernorm",
    "Qwen3ForCausalLM": "post_attention_layernorm",
    "GemmaForCausalLM": "post_attention_layernorm",
    "Gemma2ForCausalLM": "pre_feedforward_layernorm",
    "Gemma3ForCausalLM": "pre_feedforward_layernorm",
}

#: ``edit(layer, site, stream) -> touched rows or None``: edits ``stream`` in place.
Editor = Callable[[int, str, Tensor], Tensor | None]


def split_edit(
    editor: Editor, layer: int, site: str, h: Tensor, r: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    """``(h, r)`` after ``editor`` edited the stream ``h + r`` at some tokens."""
    stream: Float[Tensor, "tokens d_model"] = h.clone() if r is None else h + r
    touched = editor(layer, site, stream)
    if touched is None:
        return h, r
    if r is None:
        return stream, None
    return h.index_fill(0, touched, 0), r.index_copy(0, touched, stream.index_select(0, touched))


def _inputs(args: tuple, kwargs: dict) -> tuple[Tensor, Tensor | None]:
    h = kwargs["hidden_states"] if "hidden_states" in kwargs else args[1]
    r = kwargs["residual"] if "residual" in kwargs else (args[2] if len(args) > 2 else None)
    return h, r


def _with_inputs(args: tuple, kwargs: dict, h: Tensor, r: Tensor | None) -> tuple:
    args, kwargs = list(args), dict(kwargs)
    if "hidden_states" in kwargs:
        kwargs["hidden_states"] = h
    else:
        args[1] = h
    if "residual" in kwargs:
        kwargs["residual"] = r
    elif len(args) > 2:
        args[2] = r
    return tuple(args), kwargs


def install(
    layers: dict[int, nn.Module], mid_norm: str, editor: Editor, wanted: Callable[[int, str], bool]
) -> list[Any]:
    """Hook ``layers`` (index -> decoder layer) at the three sites; ``wanted(layer, site)``
    says cheaply whether this step edits or reads there. Returns the hook handles."""
    handles = []
    for index, layer in layers.items():
        norm = getattr(layer, mid_norm, None)
        if norm is None:
            raise SteerlensError(f"model: decoder layer {index} has no {mid_norm} (resid_mid)")
        handles += [
            layer.register_forward_pre_hook(_pre(index, editor, wanted), with_kwargs=True),
            norm.register_forward_pre_hook(_mid(index, editor, wanted), with_kwargs=True),
            layer.register_forward_hook(_post(index, editor, wanted)),
        ]
    return handles


def _pre(index: int, editor: Editor, wanted: Callable[[int, str], bool]):
    def hook(_module: nn.Module, args: tuple, kwargs: dict):
        if not wanted(index, "resid_pre"):
            return None
        h, r = _inputs(args, kwargs)
        return _with_inputs(args, kwargs, *split_edit(editor, index, "resid_pre", h, r))

    return hook


def _mid(index: int, editor: Editor, wanted: Callable[[int, str], bool]):
    def hook(_module: nn.Module, args: tuple, kwargs: dict):
        if not wanted(index, "resid_mid"):
            return None
        x = kwargs["x"] if "x" in kwargs else args[0]
        r = kwargs["residual"] if "residual" in kwargs else args[1]
        x, r = split_edit(editor, index, "resid_mid", x, r)
        return (x, r), {}

    return hook


def _post(index: int, editor: Editor, wanted: Callable[[int, str], bool]):
    def hook(_module: nn.Module, _args: tuple, output: Any):
        if not wanted(index, "resid_post"):
            return None
        if not (isinstance(output, tuple) and len(output) == 2):
            raise SteerlensError(
                f"model: decoder layer {index} returned {type(output).__name__}, not "
                "(hidden_states, residual)"
            )
        return split_edit(editor, index, "resid_post", *output)

    return hook


def decoder_layers(model: nn.Module) -> dict[int, nn.Module]:
    """The decoder layers this worker holds (pipeline stages hold a slice)."""
    inner = getattr(model, "model", None)
    stack = getattr(inner, "layers", None)
    if not isinstance(stack, nn.ModuleList):
        raise SteerlensError(f"model: {type(model).__name__} has no model.layers to hook")
    start = getattr(inner, "start_layer", 0)
    end = getattr(inner, "end_layer", len(stack))
    return {i: stack[i] for i in range(start, end)}


def before_forward(model: nn.Module, hook: Callable[[Tensor], None]) -> Any:
    """Call ``hook(positions)`` before every forward pass of ``model``."""

    def pre(_module: nn.Module, args: tuple, kwargs: dict) -> None:
        positions = kwargs["positions"] if "positions" in kwargs else args[1]
        hook(positions)

    return model.register_forward_pre_hook(pre, with_kwargs=True)
