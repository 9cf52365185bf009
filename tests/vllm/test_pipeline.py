"""Pipeline parallel 2 on the CPU with steering: not possible with vLLM 0.32.

Steering needs eager mode (a compiled graph would freeze the per-request hooks in). With
``pipeline_parallel_size=2``, ``enforce_eager=True`` and ``VLLM_CPU_OMP_THREADS_BIND="0|1"``
the engine starts, and the second stage's first step fails inside vLLM, before any hook:
``AssertionError`` at ``assert self.intermediate_tensors is not None`` in
``GPUModelRunner.sync_and_gather_intermediate_tensors``. The buffer is made by
``_dummy_run``, which the CPU model runner calls only when warming up compiled graphs
(``CPUModelRunner.warming_up_model`` returns early in eager mode). Measured 2026-12-06 with
``STEERLENS_TRY_PIPELINE=1``, which runs the attempt instead of skipping.
"""

from __future__ import annotations

import os

import pytest
import torch

import steerlens as sl
from tests.vllm.helpers import engine_tokens, reference

UPSTREAM = (
    "vLLM 0.32 CPU, pipeline_parallel_size=2 in eager mode: stage 2 fails at "
    "`assert self.intermediate_tensors is not None` (made only by the compiled warm-up)"
)


@pytest.mark.skipif(not os.environ.get("STEERLENS_TRY_PIPELINE"), reason=UPSTREAM)
def test_pipeline_parallel_two_stages(default_model, monkeypatch):
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0|1")
    llm = sl.vllm.load(
        pipeline_parallel_size=2, max_model_len=256, distributed_executor_backend="mp"
    )
    steer = [sl.add(torch.ones(576) / 24, 8.0, layers=[20])]  # on the second stage
    prompts = ["Name a colour."]
    assert engine_tokens(llm, prompts, steer, 8) == reference(default_model, prompts, steer, 8)
