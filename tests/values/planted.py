"""A tiny Llama with planted value directions, for the value-entanglement tests.

Token embeddings carry three planted coordinates: dimension 0 is moral value (good verbs +A,
bad verbs -A, otherwise identical), dimension 1 grammatical value (marker " today" vs
" yesterday") and dimension 2 economic value (" profit" vs " debt"). The markers also carry
``c * A`` on the moral coordinate: the planted entanglement. Every block is the identity
except block 0's attention, which adds the uniform average of the (RMS-normalized) token
embeddings' first 32 dimensions to every position; so the last position sees the whole item.
The answer tokens' unembedding rows read ``e1 + lam * e0`` (grammar: leakage ``lam``),
``e2 + lam * e0`` (economics) and ``e0`` (morality).
"""

from __future__ import annotations

import copy

import pandas as pd
import torch

from steerlens.values import RatingPrompt

A = 0.05
C = 0.5  # the markers' planted moral component (relative to A)
LAM = 0.8  # how much the grammar / economic readouts also read the moral coordinate
SCALE = 2.0

PAIRS = [(" helped", " robbed"), (" saved", " hit"), (" fed", " mocked"), (" thanked", " kicked")]
SUBJECTS = [" man", " woman", " boy", " girl", " king", " cook", " nurse", " pilot"]
OBJECTS = [" dog", " cat", " horse", " bird"]
MARKERS = {"moral_grammar": (" today", " yesterday"), "moral_economic": (" profit", " debt")}
ANSWERS = {
    "grammar": (" correct", " incorrect"),
    "economic": (" gained", " lost"),
    "moral": (" good", " bad"),
}
PROMPTS = {
    name: RatingPrompt("{text}", " Verdict", positive, negative, chat=False)
    for name, (positive, negative) in ANSWERS.items()
}


def planted_stimuli(n_frames: int = 8) -> pd.DataFrame:
    rows = []
    for set_name, (plus, minus) in MARKERS.items():
        target = "grammar" if set_name == "moral_grammar" else "economic"
        other = "economic" if target == "grammar" else "grammar"
        for f in range(n_frames):
            good, bad = PAIRS[f % len(PAIRS)]
            subject, obj = SUBJECTS[f % len(SUBJECTS)], OBJECTS[f % len(OBJECTS)]
            for label, marker in ((1, plus), (-1, minus)):
                for moral, verb in ((1, good), (-1, bad)):
                    rows.append(
                        {
                            "id": f"{set_name}-{f}-{label}-{moral}",
                            "set": set_name,
                            "frame": f"{set_name}-{f}",
                            "text": f"The{subject}{verb} the{obj}{marker}.",
                            "moral": moral,
                            target: label,
                            other: None,
                        }
                    )
    return pd.DataFrame(rows)


def _id(tokenizer, word: str) -> int:
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    assert len(ids) == 1, word
    return ids[0]


def planted_model(tiny_model, tokenizer):
    from transformer_lens.model_bridge import TransformerBridge

    hf = copy.deepcopy(tiny_model.original_model)
    with torch.no_grad():
        emb = hf.model.embed_tokens.weight
        emb[:, :3] = 0.0

        def plant(plus: str, minus: str, vector: list[float]) -> None:
            i, j = _id(tokenizer, plus), _id(tokenizer, minus)
            emb[j] = emb[i]
            emb[i, :3] = torch.tensor(vector)
            emb[j, :3] = -torch.tensor(vector)

        for good, bad in PAIRS:
            plant(good, bad, [A, 0.0, 0.0])
        plant(*MARKERS["moral_grammar"], [C * A, A, 0.0])
        plant(*MARKERS["moral_economic"], [C * A, 0.0, A])
        readouts = {"grammar": [LAM, 1.0, 0.0], "economic": [LAM, 0.0, 1.0], "moral": [1, 0, 0]}
        for name, (positive, negative) in ANSWERS.items():
            plant(positive, negative, [SCALE / 2 * v for v in readouts[name]])
        for layer in hf.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        attn = hf.model.layers[0].self_attn
        attn.q_proj.weight.zero_()
        attn.k_proj.weight.zero_()
        value = torch.zeros_like(attn.v_proj.weight)  # [2 kv heads x 16, 64]
        value[torch.arange(32), torch.arange(32)] = 1.0
        attn.v_proj.weight.copy_(value)
        out = torch.zeros_like(attn.o_proj.weight)  # [64, 4 heads x 16]
        out[torch.arange(16), torch.arange(16)] = 1.0  # head 0 (kv head 0) -> dims 0..15
        out[16 + torch.arange(16), 32 + torch.arange(16)] = 1.0  # head 2 (kv 1) -> 16..31
        attn.o_proj.weight.copy_(out)
    return TransformerBridge.boot_transformers(
        "tiny-llama-planted", hf_model=hf, tokenizer=tokenizer
    ).eval()
