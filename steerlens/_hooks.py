"""Hook-point names, built and checked in one place.

Every TransformerLens model (``TransformerBridge`` or classic ``HookedTransformer``) exposes
``hook_dict`` (name -> ``HookPoint``), ``cfg.n_layers`` and ``cfg.d_model``; steerlens needs
nothing else from a model to read or steer its residual stream.
"""

from __future__ import annotations

import difflib
from typing import Any

from torch import nn

from ._errors import SteerlensError

SITES = ("resid_pre", "resid_mid", "resid_post")


def check_model(model: Any) -> None:
    """Raise unless ``model`` has the TransformerLens hook API steerlens relies on."""
    missing = [attr for attr in ("hook_dict", "cfg", "embed") if not hasattr(model, attr)]
    cfg = getattr(model, "cfg", None)
    missing += [a for a in ("n_layers", "d_model") if cfg is not None and not hasattr(cfg, a)]
    if missing or not isinstance(model, nn.Module):
        raise SteerlensError(
            f"model: expected a TransformerLens model (TransformerBridge or HookedTransformer) "
            f"with hook points; got {type(model).__name__} lacking {missing or ['nn.Module']}. "
            "Load one with steerlens.load_model()."
        )


def n_layers(model: Any) -> int:
    return int(model.cfg.n_layers)


def d_model(model: Any) -> int:
    return int(model.cfg.d_model)


def model_name(model: Any) -> str:
    return str(getattr(model.cfg, "model_name", None) or type(model).__name__)


def check_site(site: str) -> str:
    """Return ``site`` if it names a residual-stream site, else raise with the options."""
    if site not in SITES:
        hint = difflib.get_close_matches(str(site), SITES, n=1)
        did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
        raise SteerlensError(f"site: expected one of {SITES}, got {site!r}.{did_you_mean}")
    return site


def normalise_layer(model: Any, layer: int) -> int:
    """Map a (possibly negative, Python-style) layer index to ``0..n_layers-1``."""
    count = n_layers(model)
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise SteerlensError(f"layer: expected an int, got {layer!r} ({type(layer).__name__})")
    if not -count <= layer < count:
        raise SteerlensError(
            f"layer: {layer} is out of range for a model with {count} layers "
            f"(valid: 0..{count - 1}, or -{count}..-1 counted from the end)"
        )
    return layer % count


def normalise_layers(model: Any, layers: Any) -> list[int]:
    """Validate a layer, a list of layers or ``"all"``; return sorted unique indices."""
    if isinstance(layers, str):
        if layers != "all":
            raise SteerlensError(
                f"layers: expected 'all', an int or a list of ints, got {layers!r}"
            )
        return list(range(n_layers(model)))
    if isinstance(layers, int) and not isinstance(layers, bool):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise SteerlensError("layers: expected at least one layer, got an empty list")
    normalised = [normalise_layer(model, layer) for layer in layers]
    if len(set(normalised)) != len(normalised):
        raise SteerlensError(f"layers: {layers} names a layer twice")
    return sorted(normalised)


def hook_name(layer: int, site: str) -> str:
    """The TransformerLens name of the residual stream at ``site`` of block ``layer``."""
    return f"blocks.{layer}.hook_{check_site(site)}"


def hook_point(model: Any, layer: int, site: str) -> nn.Module:
    """The ``HookPoint`` module for (layer, site), checked against ``model.hook_dict``."""
    name = hook_name(normalise_layer(model, layer), site)
    point = model.hook_dict.get(name)
    if point is None:
        raise SteerlensError(
            f"site: the model has no hook point {name!r}; this architecture may not expose "
            f"{site!r}. Available residual hooks of block {layer}: "
            f"{sorted(n for n in model.hook_dict if n.startswith(f'blocks.{layer}.hook_resid'))}"
        )
    return point
