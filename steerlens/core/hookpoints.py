"""Hook points: names built and checked in one place, hooks added the TransformerLens way.

Every TransformerLens model (``TransformerBridge`` or classic ``HookedTransformer``) exposes
``hook_dict`` (name -> ``HookPoint``), ``cfg.n_layers`` and ``cfg.d_model``. steerlens adds
its hooks with ``HookPoint.add_hook``, so TransformerLens lists them (``model.list_hooks()``)
and ``model.reset_hooks()`` removes them; ``attached`` removes them again on exit, always.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from torch import Tensor, nn

from .errors import SteerlensError, SteerlensTypeError
from .validate import check_choice, is_int, shown

SITES = ("resid_pre", "resid_mid", "resid_post")
HookFn = Callable[[Tensor, Any], Tensor | None]


def n_layers(model: Any) -> int:
    return int(model.cfg.n_layers)


def d_model(model: Any) -> int:
    return int(model.cfg.d_model)


def check_d_model(name: str, width: int, model: Any) -> None:
    """Raise unless a direction of ``width`` entries fits the model's residual stream."""
    if width != d_model(model):
        raise SteerlensError(
            f"{name}: d_model {width} does not match the model's {d_model(model)} "
            f"({model_name(model)})"
        )


def model_name(model: Any) -> str:
    return str(getattr(model.cfg, "model_name", None) or type(model).__name__)


def model_device(model: Any) -> Any:
    """Where the model's inputs go (``cfg.device``, else CPU)."""
    return getattr(model.cfg, "device", None) or "cpu"


def check_site(site: Any) -> str:
    """Return ``site`` if it names a residual-stream site, else raise with the options."""
    return check_choice("site", site, SITES)


def normalise_layer(model: Any, layer: Any, name: str = "layer") -> int:
    """Map a (possibly negative, Python-style) layer index to ``0..n_layers-1``."""
    count = n_layers(model)
    if not is_int(layer):
        raise SteerlensTypeError(f"{name}: expected an int, got {shown(layer)}")
    if not -count <= layer < count:
        raise SteerlensError(
            f"{name}: {layer} is out of range for a model with {count} layers "
            f"(valid: 0..{count - 1}, or -{count}..-1 counted from the end)"
        )
    return int(layer) % count


def layer_list(layers: Any, name: str = "layers") -> list[int]:
    """An int or a non-empty sequence of ints naming no layer twice, as a list."""
    if is_int(layers):
        return [int(layers)]
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise SteerlensTypeError(f"{name}: expected an int or a list of ints, got {shown(layers)}")
    bad = [layer for layer in layers if not is_int(layer)]
    if bad:
        raise SteerlensTypeError(f"{name}: expected ints, got {shown(bad[0])}")
    if not layers:
        raise SteerlensError(f"{name}: expected at least one layer, got an empty list")
    if len(set(layers)) != len(layers):
        raise SteerlensError(f"{name}: {list(layers)} names a layer twice")
    return [int(layer) for layer in layers]


def normalise_layers(model: Any, layers: Any, name: str = "layers") -> list[int]:
    """Validate ``"all"``, a layer or a list of layers; return sorted indices."""
    if isinstance(layers, str):
        if layers != "all":
            raise SteerlensError(
                f"{name}: expected 'all', an int or a list of ints, got {layers!r}"
            )
        return list(range(n_layers(model)))
    normalized = [normalise_layer(model, layer, name) for layer in layer_list(layers, name)]
    if len(set(normalized)) != len(normalized):
        raise SteerlensError(f"{name}: {layers} names a layer twice (counting from the end)")
    return sorted(normalized)


def hook_name(layer: int, site: str) -> str:
    """The TransformerLens name of the residual stream at ``site`` of block ``layer``."""
    return f"blocks.{layer}.hook_{check_site(site)}"


def hook_point(model: Any, layer: int, site: str) -> nn.Module:
    """The ``HookPoint`` for (layer, site), checked against ``model.hook_dict``."""
    name = hook_name(normalise_layer(model, layer), site)
    points = model.hook_dict
    point = points.get(name)
    if point is None:
        available = sorted(n for n in points if n.startswith(f"blocks.{layer}.hook_resid"))
        raise SteerlensError(
            f"site: the model has no hook point {name!r}; this architecture may not expose "
            f"{site!r}. Available residual hooks of block {layer}: {available}"
        )
    return point


def edit_hooks(model: Any, layer: int, site: str, fn: HookFn) -> tuple[list, list]:
    """``(edits, reads)``: hooks that replace the residual stream at (layer, site) by
    ``fn(resid)``; attach the edits, then the reads, after any other hook of the block.

    Where the site's hook point is the stream itself (classic ``HookedTransformer``,
    ``resid_pre``, ``resid_post``) that is ``fn`` there. A ``TransformerBridge``'s
    ``hook_resid_mid`` is the input hook of the MLP's norm (``ln2.hook_in``): what a hook
    returns there reaches the MLP but not the residual the block adds the MLP's output to.
    So the edit is made where that residual is formed: ``hook_attn_out`` returns
    ``fn(x + attn_out) - x``, with ``x`` the block's input (read at ``hook_resid_pre``).
    """
    point = hook_point(model, layer, site)
    if site != "resid_mid" or getattr(point, "name", None) in (None, hook_name(layer, site)):
        return [(point, fn)], []
    attn_out = model.hook_dict.get(f"blocks.{layer}.hook_attn_out")
    if attn_out is None:
        raise SteerlensError(
            f"site: {hook_name(layer, site)} is an alias of {point.name} and the model has no "
            f"blocks.{layer}.hook_attn_out; steerlens cannot edit the residual stream there"
        )
    seen: dict[str, Tensor] = {}

    def read(resid: Tensor, **_: Any) -> None:
        seen["x"] = resid

    def edit(out: Tensor, **kwargs: Any) -> Tensor:
        x = seen["x"]
        summed = x + out
        new = fn(summed, **kwargs)
        return out if new is None or new is summed else new - x

    return [(attn_out, edit)], [(hook_point(model, layer, "resid_pre"), read)]


def _add(point: Any, fn: HookFn) -> Any:
    """``point.add_hook(fn)``; returns the handle (classic TransformerLens returns None and
    appends it to ``point.fwd_hooks``)."""
    handle = point.add_hook(fn, dir="fwd")
    return handle if handle is not None else point.fwd_hooks[-1]


def _remove(point: Any, handle: Any) -> None:
    handle.hook.remove()
    point.fwd_hooks = [h for h in point.fwd_hooks if h is not handle]


@contextmanager
def attached(hooks: Sequence[tuple[Any, HookFn]]) -> Iterator[None]:
    """Add forward hooks ``fn(activation, hook=point)`` to hook points for a ``with`` block.

    A hook returning a tensor replaces the activation; ``None`` leaves it. Hooks run in
    the order given and are removed on exit, exceptions included.
    """
    added = []
    try:
        for point, fn in hooks:
            added.append((point, _add(point, fn)))
        yield
    finally:
        for point, handle in reversed(added):
            _remove(point, handle)
