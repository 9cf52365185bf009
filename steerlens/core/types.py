"""What steerlens needs from a model, and the shapes of the tensors it passes around.

Any TransformerLens model works: a TransformerLens 4 ``TransformerBridge`` or a classic
``HookedTransformer``. steerlens reads ``cfg.n_layers`` and ``cfg.d_model``, finds hook
points in ``hook_dict`` and registers hooks on them through TransformerLens's own
``HookPoint.add_hook``, so ``model.list_hooks()`` and ``model.reset_hooks()`` see them.

Axis names follow TransformerLens: ``batch``, ``pos``, ``d_model``, ``d_vocab``; results
indexed by input text use ``n_texts``, by layer ``n_layers``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from jaxtyping import Bool, Float, Int
from torch import Tensor


@runtime_checkable
class HookedModel(Protocol):
    """A model with TransformerLens's hook API (``cfg``, ``hook_dict``, ``run_with_hooks``).

    Only ``cfg`` and ``run_with_hooks`` are checked structurally (cheaply, on every call);
    ``core.hookpoints.check_model`` checks the rest once per public call.
    """

    cfg: Any

    def run_with_hooks(self, *args: Any, **kwargs: Any) -> Any: ...


Tokens = Int[Tensor, "batch pos"]
Mask = Bool[Tensor, "batch pos"]
Residual = Float[Tensor, "batch pos d_model"]
Direction = Float[Tensor, " d_model"]
Logits = Float[Tensor, "batch d_vocab"]
