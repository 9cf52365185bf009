"""The core contract of tests/matrix on ``cuda`` (float32 and bfloat16, every architecture):
the same tests, collected here with a ``pair`` fixture that puts both the bridge and the
untouched HF model on the GPU. Skipped without CUDA; run with ``make test-gpu``."""

from __future__ import annotations

import pytest
import torch

from tests.architectures import build
from tests.matrix.test_contract import (  # noqa: F401 - collected here, with this module's pair
    DTYPES,
    TEXT,
    direction_for,
    test_activations_equal_hf_hidden_states,
    test_interventions_match_hf_hooks,
    test_padded_batch_equals_rows_alone,
    test_sweep_equals_naive_loop,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class OnDevice:
    """The untouched HF model on ``device``, called with CPU token ids like the CPU tests."""

    def __init__(self, module, device) -> None:
        self.module, self.device = module, device

    def __call__(self, tokens, **kwargs):
        return self.module(tokens.to(self.device), **kwargs)

    def __getattr__(self, name):
        return getattr(self.module, name)


@pytest.fixture(scope="module")
def pair(request, tokenizer):
    arch, dtype = request.param
    model, hf = build(arch, tokenizer, DTYPES[dtype], device="cuda")
    hf = OnDevice(hf, "cuda")
    return arch, dtype, model, hf, direction_for(model, hf, TEXT)
