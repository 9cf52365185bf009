"""Speed of one-shot optimisation: a cached step, and a batch of vectors at once."""

from __future__ import annotations

import statistics
import time

from common import REQUESTS, compare, size


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
    ``optimize_one_shot`` runs, the same fixed number of steps each (no early stop); and vs
    8 sequential runs that recompute the whole model every step (``cached=False``), as
    llm-steering-opt does."""
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

    def sequential_full_forward():  # one vector at a time, the whole model each step
        return [sl.optimize_one_shot(model, p, cached=False, **options) for p in prompts]

    return {
        "n_vectors": len(prompts),
        "steps": options["max_iters"],
        "vs_sequential": compare(batched, sequential, 1 if quick else 3),
        "vs_sequential_full_forward": compare(batched, sequential_full_forward, 1),
    }
