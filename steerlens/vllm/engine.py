"""``sl.vllm.load``: a vLLM engine with steerlens's hooks in its workers.

The returned object is vLLM's own ``LLM``; steerlens keeps what it needs to know about it
(the model folder, architecture, sizes and tokenizer) in an ``EngineModel`` looked up by
``engine_model(llm)``. ``EngineModel`` has the ``cfg``/``tokenizer`` surface of a
TransformerLens model that steerlens's text helpers read (chat template, BOS, context).
"""

from __future__ import annotations

import importlib.util
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import SteerlensError
from ..core.model_cache import GGUF_SUFFIX, cached_folder, default_gguf_path
from .residual import MID_NORM

#: The worker extension vLLM mixes into its workers.
WORKER_EXTENSION = "steerlens.vllm.worker.SteerlensWorker"
#: Options steering cannot honour, and why.
REFUSED = {
    "worker_extension_cls": "steerlens installs its own worker extension",
    "speculative_config": "draft models are not hooked, so drafts would be unsteered",
}
CPU_KV_CACHE = 2 << 30  #: bytes of KV cache on the CPU unless told otherwise
_ENGINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class EngineConfig:
    """The sizes steerlens checks interventions against."""

    n_layers: int
    d_model: int
    n_ctx: int
    model_name: str
    default_prepend_bos: bool = True


@dataclass(frozen=True)
class EngineModel:
    """What steerlens knows about a loaded engine."""

    folder: str
    architecture: str
    cfg: EngineConfig
    tokenizer: Any


def model_folder(model: str | Path | None) -> str:
    """The folder vLLM loads: the default model's dequantised cache, a GGUF file's cache
    (built once), or a folder or name as given."""
    if model is None:
        return str(cached_folder(default_gguf_path()))
    if not isinstance(model, (str, Path)):
        raise SteerlensError(
            f"model: expected None (the default model), a folder, a .gguf file or a name, "
            f"got {type(model).__name__}"
        )
    path = Path(model).expanduser()
    if path.suffix == GGUF_SUFFIX and path.is_file():
        return str(cached_folder(path))
    return str(path) if path.exists() else str(model)


def architecture(folder: str) -> tuple[str, Any]:
    """``(architecture, config)`` of a model folder, refusing ones steerlens cannot hook."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise SteerlensError(
            f"model: {folder!r} is not a model folder vLLM can load, and no model hub is "
            f"reachable ({error})"
        ) from error
    found = (getattr(config, "architectures", None) or ["?"])[0]
    if found not in MID_NORM:
        raise SteerlensError(
            f"model: steerlens.vllm steers {sorted(MID_NORM)}, whose decoder layers pass "
            f"(hidden_states, residual); {folder!r} is a {found}"
        )
    return found, config


def check_engine_options(options: dict[str, Any]) -> None:
    """Refuse options steering cannot honour (compiled graphs bake hooks in, drafts)."""
    for name, why in REFUSED.items():
        if options.get(name) is not None:
            raise SteerlensError(f"{name}: not available with steering ({why})")
    if options.get("enforce_eager") is False:
        raise SteerlensError(
            "enforce_eager: steering needs eager mode (torch.compile and CUDA graphs would "
            "freeze the per-request hooks into the graph); leave it True"
        )


def fixed_cpu_kv_cache(given: set[str]) -> bool:
    """Whether to ask for ``CPU_KV_CACHE`` bytes of KV cache: on the CPU vLLM reserves
    ``gpu_memory_utilization`` (0.92) of the machine's memory and refuses to start when other
    processes use more, so unless ``given`` names a KV-cache option (or
    ``VLLM_CPU_KVCACHE_SPACE`` is set), steerlens asks for a fixed size instead."""
    from vllm.platforms import current_platform

    chosen = {"kv_cache_memory_bytes", "gpu_memory_utilization"}
    return (
        current_platform.is_cpu()
        and not chosen & given
        and not os.environ.get("VLLM_CPU_KVCACHE_SPACE")
    )


def load(model: str | Path | None = None, **engine_kwargs: Any) -> Any:
    """A vLLM ``LLM`` with steerlens's hooks installed in its workers.

    Args:
        model: ``None`` for the offline default model (its dequantised cache folder), a
            folder of Hugging Face files, a ``.gguf`` file or a model name.
        **engine_kwargs: passed on to ``vllm.LLM`` (``dtype`` defaults to ``"float32"``,
            as ``sl.load_model``; ``enforce_eager`` is always True; e.g.
            ``tensor_parallel_size``, ``enable_prefix_caching``, ``block_size``).

    Returns:
        The ``vllm.LLM``, for ``sl.vllm.generate``, ``collect_activations`` and ``project``
        (and vLLM's own calls, which run unsteered).

    Example:
        >>> llm = sl.vllm.load()  # doctest: +SKIP
        >>> sl.vllm.generate(llm, ["How do I bake bread?"], [sl.add(vec, 4.0)])
    """
    check_engine_options(engine_kwargs)
    folder = model_folder(model)
    if importlib.util.find_spec("vllm") is None:
        raise SteerlensError(
            "vllm: not installed here; install the extra (pip install 'steerlens[vllm]', which "
            "pins vLLM's own torch and transformers) or use make test-vllm's .venv-vllm"
        )
    found, config = architecture(folder)
    from transformers import AutoTokenizer
    from vllm import LLM

    options = {"dtype": "float32", "tokenizer": folder, **engine_kwargs}
    if fixed_cpu_kv_cache(set(engine_kwargs)):
        options["kv_cache_memory_bytes"] = CPU_KV_CACHE
    llm = LLM(model=folder, enforce_eager=True, worker_extension_cls=WORKER_EXTENSION, **options)
    llm.collective_rpc("steerlens_install", args=(found,))
    cfg = EngineConfig(
        n_layers=int(config.num_hidden_layers),
        d_model=int(config.hidden_size),
        n_ctx=int(llm.llm_engine.model_config.max_model_len),
        model_name=Path(folder).name,
    )
    _ENGINES[llm] = EngineModel(
        folder, found, cfg, AutoTokenizer.from_pretrained(options["tokenizer"])
    )
    return llm


def engine_model(llm: Any) -> EngineModel:
    """What ``sl.vllm.load`` recorded about ``llm``."""
    try:
        return _ENGINES[llm]
    except (KeyError, TypeError):
        raise SteerlensError(
            f"llm: expected an engine from sl.vllm.load (its workers carry steerlens's "
            f"hooks), got {type(llm).__name__}"
        ) from None
