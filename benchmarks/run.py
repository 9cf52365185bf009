"""steerlens benchmarks: measured ratios on this machine, written to JSON and markdown.

Run with ``make bench`` (or ``python benchmarks/run.py [--quick]``). Each measure times the
steerlens path and its baseline in the same process, alternating repeats, and reports the
median ratio. Absolute times drift on a shared machine; the ratios are the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
D_MODEL = 576  # the default model's residual width
WORDS = [
    "the",
    "river",
    "carried",
    "small",
    "boats",
    "past",
    "quiet",
    "villages",
    "while",
    "children",
    "watched",
    "from",
    "the",
    "bridge",
    "and",
    "old",
    "men",
    "talked",
    "about",
    "the",
    "weather",
    "the",
    "harvest",
    "and",
    "the",
    "long",
    "winter",
    "ahead",
]


def texts(n: int, n_words: int, seed: int) -> list[str]:
    """``n`` pseudo-sentences of ``n_words`` words (about 1.2 tokens per word here)."""
    gen = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(WORDS), (n, n_words), generator=gen)
    return [" ".join(WORDS[i] for i in row).capitalize() + "." for row in picks.tolist()]


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def compare(ours: Callable, base: Callable, repeats: int) -> dict[str, float]:
    """Alternate ours/base ``repeats`` times after one warm-up each; median seconds."""
    ours(), base()
    a, b = [], []
    for _ in range(repeats):
        a += timed(ours, 1)
        b += timed(base, 1)
    ours_s, base_s = statistics.median(a), statistics.median(b)
    return {"ours_s": ours_s, "baseline_s": base_s, "ratio": ours_s / base_s}


def bench_extraction(model, quick: bool) -> dict:
    """mean_difference at layers 10 and 15 vs a bare HF full forward and steering-vectors."""
    import steerlens as sl
    from steerlens.core.tokens import encode, left_pad

    n_pairs = 8 if quick else 64
    pos, neg = texts(n_pairs, 24, 1), texts(n_pairs, 24, 2)
    layers = [10, 15]
    hf = model.original_model
    batches = [pos[i : i + 16] + neg[i : i + 16] for i in range(0, n_pairs, 16)]

    def ours():
        return sl.mean_difference(model, pos, neg, layers=layers, batch_size=32)

    def bare_forward():
        for batch in batches:
            tokens, mask = left_pad(model, [encode(model, t) for t in batch])
            with torch.no_grad():
                hf(tokens, attention_mask=mask.long())

    result = {
        "n_pairs": n_pairs,
        "mean_tokens": statistics.mean(len(encode(model, t)) for t in pos + neg),
    }
    result["vs_bare_forward"] = compare(ours, bare_forward, 2 if quick else 5)
    try:
        from steering_vectors import train_steering_vector
    except ImportError:
        result["vs_steering_vectors"] = "not installed (make bench installs it)"
        return result

    def peer():
        # steering-vectors' layer i is the output of decoder layer i = our resid_pre of i+1.
        return train_steering_vector(
            hf,
            model.tokenizer,
            list(zip(pos, neg, strict=True)),
            layers=[layer - 1 for layer in layers],
            batch_size=32,
        )

    result["vs_steering_vectors"] = compare(ours, peer, 2 if quick else 5)
    theirs, mine = peer(), ours()
    result["cosine_with_peer"] = {
        layer: float(torch.cosine_similarity(theirs.layer_activations[layer - 1], mine[layer], 0))
        for layer in layers
    }
    return result


def bench_steering_overhead(model, quick: bool) -> dict:
    """Greedy generation of 64 tokens: unsteered vs one steered layer vs all layers."""
    import steerlens as sl

    n_new = 16 if quick else 64
    prompt = "Write a short story about a lighthouse keeper."
    gen = torch.Generator().manual_seed(0)
    one = sl.SteeringVector({15: torch.randn(D_MODEL, generator=gen)})
    every = sl.SteeringVector({layer: torch.randn(D_MODEL, generator=gen) for layer in range(30)})

    def generate():
        return sl.generate(model, prompt, max_new_tokens=n_new)

    def steered(vector):
        def run():
            with sl.steer(model, sl.add(vector, coeff=0.01)):
                return sl.generate(model, prompt, max_new_tokens=n_new)

        return run

    repeats = 2 if quick else 5
    return {
        "new_tokens": n_new,
        "one_layer": compare(steered(one), generate, repeats),
        "all_30_layers": compare(steered(every), generate, repeats),
    }


def bench_sweep(model, quick: bool) -> dict:
    """9 coefficients x 32 queries at layer 15: shared-prefix sweep vs the naive loop.

    The target is in units of one unsteered forward over the queries: the sweep should cost
    at most ``1 + 9 (L - l) / L`` of them (one prefix pass, then only the later blocks).
    """
    import steerlens as sl
    from steerlens.steering.readout import next_token_logits

    n_queries, layer = (8 if quick else 32), 15
    queries = [sl.format_chat(model, t) for t in texts(n_queries, 12, 4)]
    direction = torch.randn(D_MODEL, generator=torch.Generator().manual_seed(5))
    vector = sl.SteeringVector({layer: direction / direction.norm()})
    coeffs = [-8.0, -4.0, -2.0, -1.0, 1.0, 2.0, 4.0, 8.0, 16.0]
    n_layers = model.cfg.n_layers

    def forward():
        return next_token_logits(model, queries, batch_size=32, progress=False)

    def shared(max_rows: int):
        def run():
            return sl.tradeoff.sweep(
                model, vector, coeffs, queries, batch_size=32, max_rows=max_rows
            )

        return run

    def naive():
        for coeff in coeffs:
            with sl.steer(model, sl.add(vector, coeff)):
                forward()

    repeats = 2 if quick else 5
    forward_s = statistics.median(timed(forward, repeats))
    result = {
        "n_queries": n_queries,
        "layer": layer,
        "n_coeffs": len(coeffs),
        "forward_s": forward_s,
        "target_forwards": 1 + len(coeffs) * (n_layers - layer) / n_layers,
        # one coefficient per suffix pass (32 rows); all 9 in one pass (288 rows) is slower
        # per row on this CPU, so it is reported, not used
        "vs_naive_loop": compare(shared(32), naive, repeats),
        "all_coeffs_in_one_pass": compare(shared(288), naive, repeats),
    }
    result["sweep_forwards"] = result["vs_naive_loop"]["ours_s"] / forward_s
    result["naive_forwards"] = result["vs_naive_loop"]["baseline_s"] / forward_s
    return result


def bench_one_shot_step(model, quick: bool) -> dict:
    """Seconds per optimization step at layer 15: prefix-cached vs full forward+backward.

    A step's time is ``(t(N steps) - t(0 steps)) / N``, so the one-off prefix pass and
    tokenization are not counted; cached and full runs alternate.
    """
    import steerlens as sl

    prompt = sl.format_chat(model, "How do I bake a loaf of sourdough bread?")
    steps, repeats = (5, 1) if quick else (20, 3)

    def seconds(cached: bool, iters: int) -> float:
        start = time.perf_counter()
        sl.optimize_one_shot(
            model,
            prompt,
            promote="I'm sorry, but I can't help with that.",
            layer=15,
            max_iters=iters,
            tolerance=None,
            cached=cached,
            progress=False,
        )
        return time.perf_counter() - start

    seconds(True, 1), seconds(False, 1)  # warm-up
    per_step: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeats):
        for cached in (True, False):
            per_step[cached].append((seconds(cached, steps) - seconds(cached, 0)) / steps)
    cached_s, full_s = statistics.median(per_step[True]), statistics.median(per_step[False])
    return {
        "steps": steps,
        "layer": 15,
        "cached_vs_full": {"ours_s": cached_s, "baseline_s": full_s, "ratio": cached_s / full_s},
    }


REQUESTS = [
    "How do I bake a loaf of sourdough bread?",
    "What is a good way to learn the guitar?",
    "Can you explain how tides work?",
    "Suggest a name for a small bookshop.",
    "How should I water a cactus?",
    "What are the rules of chess castling?",
    "Write a haiku about autumn rain.",
    "How do bicycles stay upright?",
]


def bench_one_shot_batch(model, quick: bool) -> dict:
    """8 one-shot vectors at layer 12 (one per prompt): ``optimize_batch`` vs 8 sequential
    ``optimize_one_shot`` runs, the same fixed number of steps each (no early stop)."""
    import steerlens as sl

    prompts = [sl.format_chat(model, r) for r in REQUESTS]
    options = dict(
        promote="I'm sorry, but I can't",
        layer=12,
        max_iters=3 if quick else 10,
        tolerance=None,
        progress=False,
    )

    def batched():
        return sl.oneshot.optimize_batch(model, prompts, **options)

    def sequential():
        return [sl.optimize_one_shot(model, p, **options) for p in prompts]

    return {
        "n_vectors": len(prompts),
        "steps": options["max_iters"],
        "vs_sequential": compare(batched, sequential, 1 if quick else 3),
    }


MEMORY_SCRIPT = """
import os, sys, torch
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, {bench!r})
import steerlens as sl
from run import texts
model = sl.load_model()
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) after loading
base = status("VmRSS")
items = texts({n}, 24, 3)
layers = [5, 10, 15, 20]
if {mode!r} == "ours":
    sl.collect_activations(model, items, layers, batch_size=32, progress=False)
else:
    names = [f"blocks.{{l}}.hook_resid_pre" for l in layers]
    kept = []
    for i in range(0, len(items), 32):
        _, cache = model.run_with_cache(items[i:i + 32], names_filter=names)
        kept.append({{k: v for k, v in cache.items()}})
print(status("VmHWM") - base)
"""


def bench_memory(quick: bool) -> dict:
    """Extra peak RSS (MiB) of extracting texts at 4 layers: ours vs keeping run_with_cache."""
    out = {}
    for n in [64] if quick else [128, 512]:
        row = {}
        for mode in ("ours", "run_with_cache"):
            script = MEMORY_SCRIPT.format(bench=str(HERE), n=n, mode=mode)
            done = subprocess.run(
                [sys.executable, "-c", script], capture_output=True, text=True, check=True
            )
            row[mode + "_mib"] = float(done.stdout.strip().splitlines()[-1])
        out[f"{n}_texts"] = row
    return out


def machine() -> dict:
    cpu = "unknown"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def markdown(results: dict) -> str:
    lines = ["| measure | steerlens (s) | baseline (s) | ratio | target |", "|---|---|---|---|---|"]
    targets = {
        ("extraction", "vs_bare_forward"): "≤ 0.6",
        ("extraction", "vs_steering_vectors"): "< 1",
        ("steering_overhead", "one_layer"): "≤ 1.05",
        ("steering_overhead", "all_30_layers"): "(reported)",
        ("sweep", "vs_naive_loop"): "(reported)",
        ("sweep", "all_coeffs_in_one_pass"): "(reported)",
        ("one_shot_step", "cached_vs_full"): "≤ 0.7",
        ("one_shot_batch", "vs_sequential"): "≤ 0.35",
    }
    for (group, key), target in targets.items():
        row = results.get(group, {}).get(key)
        if isinstance(row, dict):
            lines.append(
                f"| {group}: {key} | {row['ours_s']:.3f} | {row['baseline_s']:.3f} "
                f"| {row['ratio']:.2f} | {target} |"
            )
    sweep = results.get("sweep")
    if sweep:
        lines.append(
            f"| sweep: cost in unsteered forwards | {sweep['sweep_forwards']:.2f} | "
            f"{sweep['naive_forwards']:.2f} (naive) | | ≤ {sweep['target_forwards']:.2f} |"
        )
    cosines = results.get("extraction", {}).get("cosine_with_peer")
    if isinstance(cosines, dict):
        agree = ", ".join(f"layer {layer}: {c:.4f}" for layer, c in cosines.items())
        lines += ["", f"Cosine with steering-vectors' vector ({agree}); target ≥ 0.99."]
    memory = results.get("memory", {})
    if memory:
        lines += [
            "",
            "| texts | extra peak RSS, ours (MiB) | run_with_cache (MiB) | activations (MiB) |",
            "|---|---|---|---|",
        ]
        for key, row in memory.items():
            n = int(key.split("_")[0])
            kept = n * 4 * D_MODEL * 4 / 2**20  # texts x 4 layers x d_model float32
            lines.append(
                f"| {n} | {row['ours_mib']:.0f} | {row['run_with_cache_mib']:.0f} | {kept:.1f} |"
            )
    lines += ["", f"Machine: {results['machine']}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    import steerlens as sl

    model = sl.load_model()
    results = {"machine": machine(), "quick": args.quick}
    results["extraction"] = bench_extraction(model, args.quick)
    results["steering_overhead"] = bench_steering_overhead(model, args.quick)
    results["sweep"] = bench_sweep(model, args.quick)
    results["one_shot_step"] = bench_one_shot_step(model, args.quick)
    results["one_shot_batch"] = bench_one_shot_batch(model, args.quick)
    results["memory"] = bench_memory(args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=2))
    (args.out / "bench.md").write_text(markdown(results))
    print(markdown(results))
    print(json.dumps(results["memory"], indent=1))


if __name__ == "__main__":
    main()
