"""Shared fixtures: a tiny random Llama bridge (unit tests) and the default model (slow)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch


@pytest.fixture(scope="session")
def default_model():
    """SmolLM2-135M-Instruct, loaded once per session (integration tests)."""
    import steerlens as sl

    return sl.load_model()


@pytest.fixture(scope="session")
def tokenizer():
    """The default model's tokenizer (from the steerlens cache; no weights loaded)."""
    from steerlens.core.model_cache import default_tokenizer

    return default_tokenizer()


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    """A 3-layer random Llama (d_model 64) with the default model's tokenizer."""
    from transformer_lens.model_bridge import TransformerBridge

    from tests.architectures import tiny_llama

    hf_model = tiny_llama(tokenizer, tie_word_embeddings=True)
    model = TransformerBridge.boot_transformers(
        "tiny-llama", hf_model=hf_model, tokenizer=tokenizer
    )
    return model.eval()


@contextmanager
def single_thread() -> Iterator[None]:
    """Small matrices are much faster on one thread on a shared CPU (and a 135M model
    several times faster); the thread count is restored on exit."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_thread():
    """The module's tests run on one thread (``single_thread``)."""
    with single_thread():
        yield


# --- one result of each research line, shared by its tests and the contract test -------------
@pytest.fixture(scope="session")
def tradeoff_result(tiny_model):
    """``tradeoff_report`` on the tiny model with a synthetic behaviour and task."""
    from tests.tradeoff.synthetic import synthetic_report

    return synthetic_report(tiny_model)


@pytest.fixture(scope="session")
def values_result(tiny_model, tokenizer):
    """``value_entanglement`` on the planted tiny model (``tests/values/planted.py``)."""
    import steerlens as sl
    from tests.values.planted import PROMPTS, planted_model, planted_stimuli

    settings = sl.values.ValuesSettings(helpfulness=False, n_boot=300, progress=False)
    with single_thread():
        planted = planted_model(tiny_model, tokenizer)
        return sl.value_entanglement(planted, planted_stimuli(), prompts=PROMPTS, settings=settings)


@pytest.fixture(scope="session")
def one_shot_study(default_model):
    """The quick one-shot refusal study on the default model (slow)."""
    import steerlens as sl

    settings = sl.oneshot.StudySettings.quick(progress=False)
    return sl.oneshot.one_shot_refusal_study(default_model, settings)


from tests.coverage import pytest_runtest_makereport, pytest_sessionfinish  # noqa: E402, F401


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "coverage(check): a cell of the architecture coverage table (docs/models.md)"
    )
