"""steerlens inside vLLM: throughput of steered generation and of reading activations.

Run in the vLLM environment (``make bench`` does: ``.venv-vllm/bin/python
benchmarks/vllm_speed.py``); writes ``results/vllm.json`` and ``results/vllm.md``.

- steered vs unsteered vLLM: 32 prompts x 64 greedy tokens on the default model, the same
  engine and sitting, alternating repeats (prefix caching off, so every repeat computes);
  steered = one ``sl.add`` at one layer for every prompt, and one list per prompt (32
  different vectors in one batch);
- vLLM (steered) vs ``sl.generate`` under ``sl.steer`` (one left-padded batch) at the same
  torch thread count;
- ``sl.vllm.collect_activations`` vs ``sl.collect_activations``: tokens read per second.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import torch
from common import D_MODEL, HERE, REQUESTS, machine, texts, timed


def until_eos(row, eos: int) -> int:
    """Tokens generated up to and including the first end-of-sequence token."""
    ids = [int(i) for i in row]
    return ids.index(eos) + 1 if eos in ids else len(ids)


def alternate(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Each fn once as warm-up, then ``repeats`` rounds in turn; seconds per round."""
    for fn in fns.values():
        fn()
    out = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            out[name] += timed(fn, 1)
    return out


def bench_generation(llm, model, n_prompts: int, n_new: int, repeats: int) -> dict:
    import steerlens as sl
    from steerlens.core.tokens import encode
    from steerlens.steering.generation import _new_tokens, prompt_texts
    from steerlens.vllm.generation import new_tokens

    prompts = [REQUESTS[i % len(REQUESTS)] + f" ({i})" for i in range(n_prompts)]
    gen = torch.Generator().manual_seed(0)
    vecs = [torch.randn(D_MODEL, generator=gen) for _ in range(n_prompts)]
    one = sl.add(vecs[0] / vecs[0].norm(), 4.0, layers=[12])
    each = [[sl.add(v / v.norm(), 4.0, layers=[12])] for v in vecs]
    counts: dict[str, int] = {}

    def run(name, lists):
        def fn():
            got = new_tokens(llm, prompts, lists, max_new_tokens=n_new)
            counts[name] = sum(until_eos(row, model.tokenizer.eos_token_id) for row in got)

        return fn

    fns = {
        "unsteered": run("unsteered", None),
        "steered": run("steered", [one]),
        "per_request": run("per_request", each),
    }
    seconds = alternate(fns, repeats)
    rates = {name: counts[name] / statistics.median(s) for name, s in seconds.items()}

    encoded = [encode(model, t, "prompt") for t in prompt_texts(model, prompts, True, False)]
    options = dict(
        max_new_tokens=n_new,
        do_sample=False,
        use_past_kv_cache=True,
        verbose=False,
        return_type="tokens",
    )

    def reference():
        with sl.steer(model, one):
            rows = _new_tokens(model, encoded, options)
        counts["sl.generate"] = sum(until_eos(row, model.tokenizer.eos_token_id) for row in rows)

    ref_seconds = timed(reference, 1 if repeats < 3 else 2)
    ref_tokens = counts["sl.generate"]
    return {
        "n_prompts": n_prompts,
        "max_new_tokens": n_new,
        "tokens_per_s": rates,
        "steered_vs_unsteered": rates["steered"] / rates["unsteered"],
        "per_request_vs_unsteered": rates["per_request"] / rates["unsteered"],
        "sl_generate_tokens_per_s": ref_tokens / statistics.median(ref_seconds),
        "vllm_steered_vs_sl_generate": rates["steered"]
        / (ref_tokens / statistics.median(ref_seconds)),
        "seconds": seconds,
    }


def bench_extraction(llm, model, n_texts: int, repeats: int) -> dict:
    import steerlens as sl
    from steerlens.core.tokens import encode

    items = texts(n_texts, 24, 1)
    n_tokens = sum(len(encode(model, t)) for t in items)
    layers = [8, 12]
    seconds = alternate(
        {
            "vllm": lambda: sl.vllm.collect_activations(llm, items, layers, position="mean"),
            "transformer_lens": lambda: sl.collect_activations(
                model, items, layers, position="mean", batch_size=32, progress=False
            ),
        },
        repeats,
    )
    rates = {name: n_tokens / statistics.median(s) for name, s in seconds.items()}
    return {
        "n_texts": n_texts,
        "n_tokens": n_tokens,
        "tokens_per_s": rates,
        "vllm_vs_transformer_lens": rates["vllm"] / rates["transformer_lens"],
    }


def markdown(results: dict) -> str:
    gen, ext = results["generation"], results["extraction"]
    rate = gen["tokens_per_s"]
    return "\n".join(
        [
            "| measure | tokens/s | baseline tokens/s | ratio | target |",
            "|---|---|---|---|---|",
            f"| vLLM steered vs unsteered ({gen['n_prompts']} prompts x {gen['max_new_tokens']}"
            f" tokens) | {rate['steered']:.0f} | {rate['unsteered']:.0f} | "
            f"{gen['steered_vs_unsteered']:.2f} | ≥ 0.95 |",
            f"| vLLM, a different vector per request, vs unsteered | {rate['per_request']:.0f} | "
            f"{rate['unsteered']:.0f} | {gen['per_request_vs_unsteered']:.2f} | (reported) |",
            f"| vLLM steered vs sl.generate under sl.steer | {rate['steered']:.0f} | "
            f"{gen['sl_generate_tokens_per_s']:.0f} | {gen['vllm_steered_vs_sl_generate']:.2f} "
            "| (reported) |",
            f"| sl.vllm.collect_activations vs sl.collect_activations ({ext['n_texts']} texts) | "
            f"{ext['tokens_per_s']['vllm']:.0f} | {ext['tokens_per_s']['transformer_lens']:.0f} | "
            f"{ext['vllm_vs_transformer_lens']:.2f} | (reported) |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer repeats")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    import steerlens as sl

    model = sl.load_model()
    llm = sl.vllm.load(enable_prefix_caching=False, max_model_len=1024)
    repeats = 2 if args.quick else 5
    results = {"machine": machine(), "quick": args.quick, "load_average_start": os.getloadavg()}
    results["generation"] = bench_generation(
        llm, model, 8 if args.quick else 32, 16 if args.quick else 64, repeats
    )
    results["extraction"] = bench_extraction(llm, model, 32 if args.quick else 256, repeats)
    results["load_average_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vllm.json").write_text(json.dumps(results, indent=2))
    (args.out / "vllm.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
