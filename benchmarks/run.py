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


SMOKE = {"on": False}  # --tiny: smallest sizes, every comparison once, without warm-up


def size(quick: bool, tiny: int, small: int, full: int) -> int:
    """A size for ``--tiny`` (smoke test), ``--quick`` or the full run."""
    return tiny if SMOKE["on"] else small if quick else full


def compare(ours: Callable, base: Callable, repeats: int) -> dict[str, float]:
    """Alternate ours/base ``repeats`` times after one warm-up each; median seconds."""
    if SMOKE["on"]:
        repeats = 1
    else:
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

    n_pairs = size(quick, 2, 8, 64)
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

    n_new = size(quick, 2, 16, 64)
    prompt = "Write a short story about a lighthouse keeper."
    gen = torch.Generator().manual_seed(0)
    width = model.cfg.d_model
    one = sl.SteeringVector({15: torch.randn(width, generator=gen)})
    every = sl.SteeringVector({layer: torch.randn(width, generator=gen) for layer in range(30)})

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


def untouched_hf_model():
    """The same weights as a plain Hugging Face model that no bridge has wrapped (the
    bridge's ``original_model`` has its layers replaced, and its own ``generate`` breaks)."""
    if SMOKE["on"]:
        return tiny_hf_model()
    from steerlens.core.model_cache import default_gguf_path, load_gguf

    return load_gguf(default_gguf_path(), torch.float32)[0].eval()


def bench_steered_generate(model, quick: bool) -> dict:
    """Greedy batched generation steered at layer 15: ``sl.generate`` inside ``sl.steer`` vs
    Hugging Face ``generate`` on the same model with a forward pre-hook adding the same
    vector to decoder layer 15's input (= our ``blocks.15.hook_resid_pre``), same batch."""
    import steerlens as sl
    from steerlens.core.tokens import encode, left_pad

    n_prompts, n_new, layer, coeff = size(quick, 2, 4, 8), size(quick, 2, 8, 32), 15, 4.0
    requests = REQUESTS[:n_prompts]
    direction = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(6))
    unit = direction / direction.norm()
    vector = sl.SteeringVector({layer: unit})
    hf = untouched_hf_model()
    tokens, mask = left_pad(model, [encode(model, sl.format_chat(model, r)) for r in requests])

    def ours():
        with sl.steer(model, sl.add(vector, coeff)):
            return sl.generate(model, requests, max_new_tokens=n_new, stop_at_eos=False)

    def add_vector(_module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        steered = hidden + coeff * unit.to(hidden.dtype)
        if args:
            return (steered, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": steered}

    def plain_hf():
        handle = hf.model.layers[layer].register_forward_pre_hook(add_vector, with_kwargs=True)
        try:
            with torch.no_grad():
                out = hf.generate(
                    tokens,
                    attention_mask=mask.long(),
                    max_new_tokens=n_new,
                    min_new_tokens=n_new,
                    do_sample=False,
                    pad_token_id=model.tokenizer.pad_token_id or model.tokenizer.eos_token_id,
                )
        finally:
            handle.remove()
        return [model.tokenizer.decode(row[tokens.shape[1] :]) for row in out]

    result = {"n_prompts": n_prompts, "new_tokens": n_new, "layer": layer, "coeff": coeff}
    result["vs_hf_generate_hook"] = compare(ours, plain_hf, 2 if quick else 3)
    theirs, mine = plain_hf(), ours()
    result["same_first_8_words"] = sum(
        a.split()[:8] == b.split()[:8] for a, b in zip(mine, theirs, strict=True)
    ) / len(mine)
    return result


def bench_sweep(model, quick: bool) -> dict:
    """9 coefficients x 32 queries at layer 15: shared-prefix sweep vs the naive loop.

    The target is in units of one unsteered forward over the queries: the sweep should cost
    at most ``1 + 9 (L - l) / L`` of them (one prefix pass, then only the later blocks).
    """
    import steerlens as sl
    from steerlens.steering.readout import next_token_logits

    n_queries, layer = size(quick, 2, 8, 32), 15
    queries = [sl.format_chat(model, t) for t in texts(n_queries, 12, 4)]
    direction = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(5))
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
    steps, repeats = size(quick, 1, 5, 20), size(quick, 1, 1, 3)

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


def bench_one_shot_batch(model, quick: bool) -> dict:
    """8 one-shot vectors at layer 12 (one per prompt): ``optimize_batch`` vs 8 sequential
    ``optimize_one_shot`` runs, the same fixed number of steps each (no early stop)."""
    import steerlens as sl

    prompts = [sl.format_chat(model, r) for r in REQUESTS[: size(quick, 2, 8, 8)]]
    options = dict(
        promote="I'm sorry, but I can't",
        layer=12,
        max_iters=size(quick, 1, 3, 10),
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
        ("steered_generate", "vs_hf_generate_hook"): "≤ 1.0",
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
    report = results.get("report")
    if report:
        stages = ", ".join(f"{k} {v} s" for k, v in report["stage_seconds"].items())
        lines += [
            "",
            f"`steerlens report`: {report['report_seconds']:.0f} s ({stages}); target ≤ 360 s.",
        ]
    loads = [results.get(k) for k in ("load_average_start", "load_average_end")]
    if all(loads):
        shown = " → ".join("/".join(f"{x:.1f}" for x in load) for load in loads)
        lines += ["", f"Load average (1/5/15 min) at start → end: {shown}"]
    lines += ["", f"Machine: {results['machine']}"]
    return "\n".join(lines)


def tiny_model():
    """A 30-layer random Llama (d_model 64) with the default tokenizer: ``--tiny`` checks the
    script runs (its numbers mean nothing)."""
    from transformer_lens.model_bridge import TransformerBridge

    from steerlens.core.model_cache import default_tokenizer

    tokenizer = default_tokenizer()
    bridge = TransformerBridge.boot_transformers(
        "tiny", hf_model=tiny_hf_model(), tokenizer=tokenizer
    )
    return bridge.eval()


def tiny_hf_model():
    """The tiny model's Hugging Face weights (seeded: every call gives the same model)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from steerlens.core.model_cache import default_tokenizer

    config = LlamaConfig(
        vocab_size=len(default_tokenizer()),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=30,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


REPORT_COMMAND = "from steerlens.report.cli import main; main()"


def report_time(out: Path) -> dict:
    """``steerlens report`` (the full main job) in a subprocess: total and per-stage seconds
    as its report.json records them, and the load average before and after."""
    load_before = os.getloadavg()
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", REPORT_COMMAND, "report", "--out", str(out / "report")],
        check=True,
    )
    seconds = time.perf_counter() - start
    report = json.loads((out / "report" / "report.json").read_text())
    stages = {
        name: part["stage_seconds"]
        for name, part in report.items()
        if isinstance(part, dict) and "stage_seconds" in part
    }
    return {
        "wall_s": seconds,
        "report_seconds": report["seconds"],
        "stage_seconds": stages,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }


BENCHES = {
    "extraction": bench_extraction,
    "steering_overhead": bench_steering_overhead,
    "steered_generate": bench_steered_generate,
    "sweep": bench_sweep,
    "one_shot_step": bench_one_shot_step,
    "one_shot_batch": bench_one_shot_batch,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer repeats")
    parser.add_argument("--tiny", action="store_true", help="a tiny random model (smoke test)")
    parser.add_argument("--report", action="store_true", help="also time `steerlens report`")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    import steerlens as sl

    quick = args.quick or args.tiny
    SMOKE["on"] = args.tiny
    model = tiny_model() if args.tiny else sl.load_model()
    results = {"machine": machine(), "quick": quick, "tiny": args.tiny}
    results["load_average_start"] = os.getloadavg()
    for name, bench in BENCHES.items():
        results[name] = bench(model, quick)
    if not args.tiny:  # the memory measure loads the default model in subprocesses
        results["memory"] = bench_memory(quick)
    if args.report:
        results["report"] = report_time(args.out)
    results["load_average_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=2))
    (args.out / "bench.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
