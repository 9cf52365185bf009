"""Independent references on the untouched Hugging Face model (no steerlens or TransformerLens
code involved), shared by every test that checks steerlens's numbers against them: the
residual stream edited by plain PyTorch hooks on its decoder layers, token ids built by hand.

``resid_pre`` of layer ``l`` is the input of decoder layer ``l``, ``resid_post`` its output,
``resid_mid`` the residual after the attention block's residual add, before the MLP: the
input ``x`` plus the term the layer adds after attention (the attention output, or its
post-attention norm in Gemma 2/3 and OLMo 2), so editing ``resid_mid`` to ``f(x + t)``
means replacing that term by ``f(x + t) - x``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

#: the submodule of a decoder layer whose output is added to the residual after attention
MID_TERM = {
    "gemma2": "post_attention_layernorm",
    "gemma3_text": "post_attention_layernorm",
    "olmo2": "post_attention_layernorm",
    "gpt2": "attn",
}
#: architectures with a parallel residual (attention and MLP read the same input)
PARALLEL = {"gpt_neox": "GPT-NeoX adds attention and MLP in parallel: there is no resid_mid"}


def decoder_layers(hf_model: Any) -> Any:
    base = hf_model.base_model
    return base.layers if hasattr(base, "layers") else base.h


def edit_fn(
    kind: str, direction: Tensor, amount: float, plane: Tensor | None = None
) -> Callable[[Tensor], Tensor]:
    """``x -> x'`` in float32, cast back to ``x``'s dtype: the closed forms of DESIGN §12
    (``amount``: add's coefficient, clamp's value, rotate's degrees, scale's factor)."""
    unit = direction.float() / direction.float().norm()

    def edit(x: Tensor) -> Tensor:
        y = x.float()
        d, u = direction.to(x.device).float(), unit.to(x.device)
        along = (y @ u)[..., None]
        if kind == "add":
            out = y + amount * d
        elif kind == "add_norm":
            moved = y + amount * d
            out = moved * y.norm(dim=-1, keepdim=True) / moved.norm(dim=-1, keepdim=True)
        elif kind in ("ablate", "clamp"):
            out = y - along * u + (amount * u if kind == "clamp" else 0)
        elif kind == "scale":
            out = y + (amount - 1) * along * u
        else:  # rotate, in each residual's own plane or in span(u, plane)
            theta = math.radians(amount)
            if plane is None:
                b = y - along * u  # no component off u (e.g. a zero residual): no plane, b = 0
                norm = b.norm(dim=-1, keepdim=True)
                b = torch.where(norm > 0, b / norm.where(norm > 0, 1.0), 0.0)
                inside = y
            else:
                b = plane.to(x.device).float() - (plane.to(x.device).float() @ u) * u
                b = b / b.norm()
                inside = along * u + (y @ b)[..., None] * b
            radius = inside.norm(dim=-1, keepdim=True)
            out = y - inside + radius * (math.cos(theta) * u + math.sin(theta) * b)
        return out.to(x.dtype)

    return edit


def _replace_first(output: Any, value: Tensor) -> Any:
    return (value, *output[1:]) if isinstance(output, tuple) else value


def _first(output: Any) -> Tensor:
    return output[0] if isinstance(output, tuple) else output


@contextmanager
def edited(hf_model: Any, arch: str, layer: int, site: str, edit: Callable) -> Iterator[None]:
    """Inside the block, ``hf_model`` runs with ``edit`` applied at (layer, site)."""
    block = decoder_layers(hf_model)[layer]
    seen: dict[str, Tensor] = {}

    def pre(_module, args, kwargs):
        x = args[0] if args else kwargs["hidden_states"]
        seen["x"] = x
        if site != "resid_pre":
            return None
        if args:
            return (edit(x), *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": edit(x)}

    def post(_module, _args, output):
        return _replace_first(output, edit(_first(output)))

    def mid(_module, _args, output):
        x, term = seen["x"], _first(output)
        return _replace_first(output, edit(x + term) - x)

    handles = [block.register_forward_pre_hook(pre, with_kwargs=True)]
    if site == "resid_post":
        handles.append(block.register_forward_hook(post))
    elif site == "resid_mid":
        term = getattr(block, MID_TERM.get(arch, "self_attn"))
        handles.append(term.register_forward_hook(mid))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def rows_logits(hf_model: Any, rows: list[list[int]]) -> Tensor:
    """``[n_rows, d_vocab]`` next-token logits of each row run alone (float32)."""
    with torch.no_grad():
        return torch.stack([hf_model(torch.tensor([row])).logits[0, -1].float() for row in rows])


def hf_ids(model, prompt, completion):
    """Token ids built independently: BOS + prompt ids + completion ids."""
    tok = model.tokenizer
    bos = [tok.bos_token_id] if model.cfg.default_prepend_bos else []
    prompt_ids = bos + tok(prompt, add_special_tokens=False)["input_ids"]
    return prompt_ids, tok(completion, add_special_tokens=False)["input_ids"]


def hf_logits(model, ids, vector, layer, n_steered=None):
    """Logits of the HF model with ``vector`` added to the input of decoder layer ``layer``
    at the first ``n_steered`` positions (all if None)."""

    def add(x):
        x = x.clone()
        x[:, :n_steered] = x[:, :n_steered] + vector
        return x

    with edited(model.original_model, "", layer, "resid_pre", add):
        return model.original_model(torch.tensor([ids])).logits[0]
