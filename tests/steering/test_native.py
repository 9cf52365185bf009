"""``native_forward`` on the tiny model: when it runs the Hugging Face modules, that it puts
the bridge back afterwards (errors included), and every case that keeps the bridge."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens.steering.native import native_forward

PROMPTS = ["Hello there", "A longer prompt, so the batch is left-padded"]


def tree(model):
    """The module types of the wrapped Hugging Face model, in order."""
    return [type(module).__name__ for module in model.original_model.modules()]


def vector(model, site="resid_pre"):
    direction = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(1))
    return sl.SteeringVector({1: 4 * direction}, site=site)


def test_inside_the_block_the_hf_modules_run_and_everything_returns(tiny_model):
    before = tree(tiny_model)
    attention = tiny_model.original_model.config._attn_implementation
    with native_forward(tiny_model) as native:
        assert native
        inside = tree(tiny_model)
        assert "PositionEmbeddingsAttentionBridge" not in inside and "BlockBridge" not in inside
        assert tiny_model.original_model.config._attn_implementation == "sdpa"
    assert tree(tiny_model) == before
    assert tiny_model.original_model.config._attn_implementation == attention


def test_an_error_inside_the_block_puts_the_bridge_back(tiny_model):
    before = tree(tiny_model)
    with pytest.raises(RuntimeError, match="boom"), native_forward(tiny_model):
        raise RuntimeError("boom")
    assert tree(tiny_model) == before


def test_runs_natively_after_ordinary_bridge_forwards(tiny_model):
    """A bridge forward (here with the cache) leaves the blocks' own capture hooks behind."""
    tiny_model.run_with_cache("Hello there", names_filter=lambda name: "hook_mlp_in" in name)
    assert any(block._capture_hook_handles for block in tiny_model.blocks)
    with native_forward(tiny_model) as native:
        assert native


def test_residual_hooks_fire_on_the_hf_modules(tiny_model):
    seen = []
    hooks = [
        ("blocks.1.hook_resid_pre", lambda x, hook: seen.append(hook.name)),
        ("blocks.1.hook_resid_post", lambda x, hook: seen.append(hook.name)),
    ]
    with tiny_model.hooks(fwd_hooks=hooks), native_forward(tiny_model) as native:
        sl.generate(tiny_model, PROMPTS, max_new_tokens=2, chat=False)
    assert native and seen.count("blocks.1.hook_in") == 2 and seen.count("blocks.1.hook_out") == 2


def test_steered_tokens_equal_the_bridge_path(tiny_model):
    def generate():
        return sl.generate(tiny_model, PROMPTS, max_new_tokens=5, chat=False, stop_at_eos=False)

    with sl.steer(tiny_model, sl.add(vector(tiny_model), 1.0)):
        fast = generate()
        with tiny_model.hooks(fwd_hooks=[("blocks.0.attn.hook_pattern", lambda x, hook: None)]):
            slow = generate()
    assert fast == slow != generate()


def test_steering_resid_mid_keeps_the_bridge(tiny_model):
    with sl.steer(tiny_model, sl.add(vector(tiny_model, "resid_mid"), 1.0)):
        with native_forward(tiny_model) as native:
            assert not native


def test_a_pytorch_hook_on_a_skipped_component_keeps_the_bridge(tiny_model):
    handle = tiny_model.blocks[0].mlp.register_forward_hook(lambda *args: None)
    try:
        with native_forward(tiny_model) as native:
            assert not native
    finally:
        handle.remove()


def test_processed_weights_keep_the_bridge(tokenizer):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model("gpt2", vocab_size=len(tokenizer), n_layer=2, n_embd=32, n_head=2)
    model = sl.load_model(
        AutoModelForCausalLM.from_config(config), tokenizer=tokenizer, compatibility_mode=True
    )
    with native_forward(model) as native:
        assert not native
