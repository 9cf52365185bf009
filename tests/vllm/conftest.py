"""Engines for the vLLM tests (skipped where vLLM is not installed, as in the main venv:
``make test-vllm`` runs them in ``.venv-vllm``). Each engine starts once per session
(~25-50 s each on 2 cores); every test sends its whole matrix as one continuous batch.

The default engine is set up to exercise what could shift positions or mix requests:
``max_num_batched_tokens=16`` splits every prompt into several prefill chunks (and caps a
step at 16 tokens), prefix caching is on with 32-token blocks (only full blocks are cached),
and a KV cache of 12 blocks makes the scheduler preempt and recompute requests.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
HERE = Path(__file__).parent

#: Engine options of the tests' engines.
CHUNKED = dict(
    block_size=32,
    enable_prefix_caching=True,
    max_num_batched_tokens=16,
    max_num_seqs=16,
    max_model_len=256,
    num_gpu_blocks_override=12,
    disable_log_stats=False,
)


def pytest_collection_modifyitems(items):
    if importlib.util.find_spec("vllm") is not None:
        return
    skip = pytest.mark.skip(reason="vLLM is not installed here; make test-vllm runs these")
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def engine():
    """The default model (SmolLM2-135M-Instruct, float32) in vLLM."""
    import steerlens as sl

    llm = sl.vllm.load(**CHUNKED)
    yield llm
    llm.llm_engine.engine_core.shutdown()
