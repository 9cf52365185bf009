"""transformers 5.24 with TransformerLens 4.3: cached ``generate`` loses the prompt.

A random 2-layer GPT-2 and a word-level tokenizer, built offline. Greedy decoding gives both
runs the same first new token, so their logits for the second new token must agree too.
"""

import torch
from tokenizers import Tokenizer, models
from transformer_lens.model_bridge import TransformerBridge
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

torch.manual_seed(0)
config = GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=64, vocab_size=128)
words = Tokenizer(models.WordLevel({f"t{i}": i for i in range(128)}, unk_token="t0"))
tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, eos_token="t0")
hf_model = GPT2LMHeadModel(config).eval()
model = TransformerBridge.boot_transformers("gpt2", hf_model=hf_model, tokenizer=tokenizer)
prompt = torch.tensor([[1, 2, 3, 4, 5, 6]])


def new_token_logits(use_past_kv_cache: bool) -> torch.Tensor:
    """Logits for each new token, ``[2, 1, 128]``."""
    out = model.generate(
        prompt,
        max_new_tokens=2,
        do_sample=False,
        stop_at_eos=False,
        use_past_kv_cache=use_past_kv_cache,
        output_logits=True,
        verbose=False,
    )
    return torch.stack(out.logits)


gap = (new_token_logits(True) - new_token_logits(False)).abs().amax(dim=(1, 2))
print(gap)  # transformers 5.9 to 5.23: both ~1e-7; 5.24: 0 for the first, ~0.19 for the second
