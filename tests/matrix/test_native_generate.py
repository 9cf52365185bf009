"""``sl.generate`` on the Hugging Face modules a bridge wraps (``steering.native``), on every
architecture: steered batched greedy tokens equal the untouched Hugging Face model's own
``generate`` with the same edit made by plain PyTorch hooks, and a hook the native path
cannot serve sends generation back through the bridge, where it fires and the tokens agree."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens.core.tokens import decode_reply, encode, left_pad
from steerlens.steering.native import native_forward
from tests.architectures import ARCHITECTURES, build

from ..reference import edit_fn, edited

PROMPTS = ["Once upon a time", "The weather today is rather cold, so we"]
N_NEW = 4
LAYER = 1
#: architectures whose bridge blocks are not plain ``BlockBridge`` (the bridge runs as usual)
BRIDGE_ONLY = {"gpt_neox": "a ParallelBlockBridge (attention and MLP read the same input)"}


@pytest.fixture(scope="module", params=ARCHITECTURES)
def arch(request, tokenizer):
    """``(name, bridge, untouched HF model, direction [d_model])``."""
    model, hf = build(request.param, tokenizer)
    direction = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        hidden = hf(torch.tensor([encode(model, PROMPTS[0])]), output_hidden_states=True)
    scale = hidden.hidden_states[LAYER][0].norm(dim=-1).mean()
    return request.param, model, hf, 2 * scale * direction / direction.norm()


def hf_generate(model, hf, site, direction) -> list[str]:
    """The untouched model's own ``generate`` on the left-padded batch, edited at ``site``."""
    tokens, mask = left_pad(model, [encode(model, text) for text in PROMPTS])
    pad = model.tokenizer.pad_token_id
    with edited(hf, "", LAYER, site, edit_fn("add", direction, 1.0)), torch.no_grad():
        out = hf.generate(
            tokens,
            attention_mask=mask.long(),
            max_new_tokens=N_NEW,
            min_new_tokens=N_NEW,
            do_sample=False,
            pad_token_id=pad if pad is not None else model.tokenizer.eos_token_id,
        )
    return [decode_reply(model, row[tokens.shape[1] :]) for row in out]


def steered_generate(model, site, direction) -> list[str]:
    vector = sl.SteeringVector({LAYER: direction}, site=site)
    with sl.steer(model, sl.add(vector, 1.0)):
        return sl.generate(model, PROMPTS, max_new_tokens=N_NEW, chat=False, stop_at_eos=False)


def test_every_matrix_architecture_runs_natively(arch):
    name, model, _, _ = arch
    model("Once upon a time")  # the first bridge forward wires the blocks' capture hooks
    with native_forward(model) as native:
        assert native is (name not in BRIDGE_ONLY)
    if name in BRIDGE_ONLY:
        assert type(model.blocks[0]).__name__ == "ParallelBlockBridge"


@pytest.mark.parametrize("site", ["resid_pre", "resid_post"])
def test_steered_batch_equals_hf_generate_with_hooks(arch, site):
    _, model, hf, direction = arch
    expected = hf_generate(model, hf, site, direction)
    unsteered = sl.generate(model, PROMPTS, max_new_tokens=N_NEW, chat=False, stop_at_eos=False)
    assert expected != unsteered  # the edit changes the tokens, so the check can fail
    assert steered_generate(model, site, direction) == expected


def test_a_hook_inside_a_block_runs_the_bridge_and_fires(arch):
    _, model, _, direction = arch
    fast = steered_generate(model, "resid_pre", direction)
    calls = []

    def spy(pattern, hook):
        calls.append(hook.name)

    with model.hooks(fwd_hooks=[(f"blocks.{LAYER}.attn.hook_pattern", spy)]):
        with native_forward(model) as native:
            assert not native
        slow = steered_generate(model, "resid_pre", direction)
    assert calls and slow == fast
