"""What every measure shares: sizes, timing, the stimulus texts and the machine."""

from __future__ import annotations

import os
import platform
import statistics
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
        **reference_speeds(),
    }


def reference_speeds() -> dict[str, float]:
    """Two speeds that tell machines apart: a pure-Python loop (``sum(range(10**6))``, best
    of 5, ms) and a float32 matmul of the default model's MLP shape (336 x 576 @ 576 x 1536,
    GFLOP/s, best of 5 runs of 20)."""
    loop = min(timed(lambda: sum(range(10**6)), 5)) * 1e3
    x, w = torch.randn(336, 576), torch.randn(1536, 576)
    matmul = min(timed(lambda: [torch.nn.functional.linear(x, w) for _ in range(20)], 5))
    return {"python_loop_ms": loop, "matmul_gflops": 20 * 2 * 336 * 576 * 1536 / matmul / 1e9}
