"""steerlens inside vLLM: throughput of steered generation and of reading activations.

Run in the vLLM environment (``make bench`` does: ``.venv-vllm/bin/python
benchmarks/vllm_speed.py``); writes ``results/vllm.json`` and ``results/vllm.md``.

- steered vs unsteered vLLM: 32 prompts x 64 greedy tokens on the default model (every arm
  exactly 2048 tokens: end-of-sequence ignored), the same engine and sitting, alternating
  repeats (prefix caching off, so every repeat computes);
  steered = one ``sl.add`` at one layer for every prompt, and one list per prompt (32
  different vectors in one batch);
- vLLM (steered) vs ``sl.generate`` under ``sl.steer`` (one left-padded batch) at the same
  thread count: vLLM's CPU worker keeps one core per worker for its scheduler by default
  (one compute thread on a 2-core host), so the engine here is started with
  ``VLLM_CPU_NUM_OF_RESERVED_CPU=0`` (every core computes, as torch's threads do);
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
    """Every arm generates exactly ``n_prompts x n_new`` tokens (end-of-sequence ignored),
    so a steered reply that would stop early does not change the count."""
    from vllm import SamplingParams

    import steerlens as sl
    from steerlens.core.tokens import encode
    from steerlens.steering.generation import _new_tokens, prompt_texts
    from steerlens.vllm.requests import engine_requests, per_prompt

    prompts = [REQUESTS[i % len(REQUESTS)] + f" ({i})" for i in range(n_prompts)]
    encoded = [encode(model, t, "prompt") for t in prompt_texts(model, prompts, True, False)]
    gen = torch.Generator().manual_seed(0)
    vecs = [torch.randn(D_MODEL, generator=gen) for _ in range(n_prompts)]
    one = sl.add(vecs[0] / vecs[0].norm(), 4.0, layers=[12])
    each = [[sl.add(v / v.norm(), 4.0, layers=[12])] for v in vecs]
    params = SamplingParams(max_tokens=n_new, temperature=0.0, ignore_eos=True)
    n_tokens = n_prompts * n_new

    def run(lists):
        requests = engine_requests(per_prompt(lists, n_prompts), encoded, params)
        return lambda: llm.generate(*requests, use_tqdm=False)

    fns = {"unsteered": run(None), "steered": run([one]), "per_request": run(each)}
    seconds = alternate(fns, repeats)
    rates = {name: n_tokens / statistics.median(s) for name, s in seconds.items()}
    options = dict(
        max_new_tokens=n_new,
        do_sample=False,
        use_past_kv_cache=True,
        stop_at_eos=False,
        verbose=False,
        return_type="tokens",
    )

    def reference():
        with sl.steer(model, one):
            _new_tokens(model, encoded, options)

    ref_seconds = timed(reference, 1 if repeats < 3 else 2)
    ref_rate = n_tokens / statistics.median(ref_seconds)
    return {
        "n_prompts": n_prompts,
        "max_new_tokens": n_new,
        "tokens_per_s": rates,
        "steered_vs_unsteered": rates["steered"] / rates["unsteered"],
        "per_request_vs_unsteered": rates["per_request"] / rates["unsteered"],
        "sl_generate_tokens_per_s": ref_rate,
        "vllm_steered_vs_sl_generate": rates["steered"] / ref_rate,
        "torch_threads": torch.get_num_threads(),
        "vllm_reserved_cpus": os.environ.get("VLLM_CPU_NUM_OF_RESERVED_CPU"),
        "seconds": {**seconds, "sl.generate": ref_seconds},
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
    os.environ["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"  # the engine process inherits it
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
