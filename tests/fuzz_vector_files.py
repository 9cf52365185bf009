"""Seeded fuzz of the vector-file loader: mutated files must load finite or raise SteerlensError.

Each case starts from a valid file written by ``SteeringVector.save`` and applies one
mutation: byte flips, truncation, a changed header length, an edited metadata field, an
edited tensor entry (dtype, shape, offsets), or tensors added, removed or rewritten in
another dtype. A case fails when loading raises anything but ``SteerlensError``, or
returns a vector holding NaN or inf. ``tests/core/test_vector_fuzz.py`` runs 2,000 cases in
CI; ``make fuzz`` runs this file for 10,000+:

    python tests/fuzz_vector_files.py --n 10000 --seed 0
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import struct
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from steerlens.core.errors import SteerlensError
from steerlens.core.vector import SteeringVector

ODD_VALUES = (
    None,
    True,
    0,
    -1,
    2**63,
    1.5,
    "",
    "x",
    [],
    [1],
    {},
    {"a": 1},
    float("inf"),
    float("nan"),
    "Infinity",
)
DTYPE_CODES = ("F8_E4M3", "F8_E5M2", "I8", "U8", "I32", "I64", "BOOL", "F16", "BF16", "F64", "XX")
TORCH_DTYPES = (
    torch.float8_e4m3fn,
    torch.float8_e5m2,
    torch.int8,
    torch.uint8,
    torch.int32,
    torch.bool,
    torch.float16,
    torch.bfloat16,
    torch.float64,
)


def valid_bytes(rng: random.Random, folder: Path) -> bytes:
    """A valid vector file (1-3 layers, small d_model) as bytes."""
    size = rng.choice([1, 4, 8])
    layers = sorted(rng.sample(range(6), rng.randint(1, 3)))
    vector = SteeringVector(
        {layer: torch.randn(size) for layer in layers},
        method="mean_difference",
        model_name=rng.choice([None, "tiny"]),
        params={"n": 3, "texts": ["a", "b"]},
        data_hash=rng.choice([None, "abc123"]),
    )
    path = folder / "valid.safetensors"
    vector.save(path)
    return path.read_bytes()


def split(data: bytes) -> tuple[dict, bytes]:
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def join(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def flip_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def header_length(rng: random.Random, data: bytes) -> bytes:
    (length,) = struct.unpack("<Q", data[:8])
    new = rng.choice([0, 1, length - 1, length + 1, length * 2, 2**63, 2**64 - 1, len(data)])
    return struct.pack("<Q", max(0, min(new, 2**64 - 1))) + data[8:]


def edit_metadata(rng: random.Random, data: bytes) -> bytes:
    header, body = split(data)
    meta = json.loads(header["__metadata__"]["steerlens"])
    key = rng.choice([*meta, "extra"])
    action = rng.random()
    if action < 0.25:
        meta.pop(key, None)
    elif action < 0.7:
        meta[key] = rng.choice(ODD_VALUES)
    elif action < 0.8:
        meta["params"] = rng.choice(
            [{"x": float("nan")}, {"x": [float("inf")]}, {"x": {"y": -float("inf")}}, {"": 1}]
        )
    elif key == "layers" or action < 0.9:
        meta["layers"] = rng.choice(
            [[float("inf")], [1.0], [-1], [0, 0], [10**20], ["1"], meta["layers"][:-1]]
        )
    else:
        meta["d_model"] = rng.choice([0, meta["d_model"] + 1, 2**40, float("inf")])
    text = json.dumps(meta)  # allow_nan: writes NaN / Infinity, as a foreign writer might
    if rng.random() < 0.1:
        text = text[: rng.randrange(len(text))]
    header["__metadata__"]["steerlens"] = text
    if rng.random() < 0.05:
        header["__metadata__"] = rng.choice([{}, {"steerlens": 5}, "x"])
    return join(header, body)


def edit_tensor_entry(rng: random.Random, data: bytes) -> bytes:
    header, body = split(data)
    name = rng.choice([k for k in header if k != "__metadata__"])
    entry = header[name]
    field = rng.choice(["dtype", "shape", "data_offsets", "drop", "rename"])
    if field == "dtype":
        entry["dtype"] = rng.choice(DTYPE_CODES)
    elif field == "shape":
        entry["shape"] = rng.choice([[], [0], [1, entry["shape"][0]], [entry["shape"][0] * 2]])
    elif field == "data_offsets":
        start, end = entry["data_offsets"]
        entry["data_offsets"] = rng.choice([[end, start], [start, end + 4], [0, 2**40]])
    elif field == "drop":
        del header[name]
    else:
        header[rng.choice(["layer.99", "layer.x", "other"])] = header.pop(name)
    return join(header, body)


def rewrite_tensors(rng: random.Random, data: bytes, folder: Path) -> bytes:
    """Re-save with a tensor removed, added, reshaped or in another dtype (metadata kept)."""
    path = folder / "source.safetensors"
    path.write_bytes(data)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    name = rng.choice(list(tensors))
    action = rng.random()
    if action < 0.2:
        del tensors[name]
    elif action < 0.4:
        tensors[rng.choice(["layer.7", "layer.-1", "bias"])] = torch.randn(tensors[name].numel())
    elif action < 0.5:
        tensors[name] = torch.randn(2, tensors[name].numel())
    elif action < 0.65:
        tensors[name] = torch.tensor([1e300] * tensors[name].numel(), dtype=torch.float64)
    elif action < 0.75:
        tensors[name] = torch.full_like(tensors[name], rng.choice([float("nan"), float("inf")]))
    else:
        tensors[name] = tensors[name].to(rng.choice(TORCH_DTYPES))
    if not tensors:
        tensors = {"other": torch.zeros(1)}
    out = folder / "rewritten.safetensors"
    save_file(tensors, str(out), metadata=metadata)
    return out.read_bytes()


def mutate(rng: random.Random, data: bytes, folder: Path) -> tuple[str, bytes]:
    kind = rng.choice(
        ["flip", "truncate", "header_length", "metadata", "metadata", "entry", "tensors"]
    )
    if kind == "flip":
        return kind, flip_bytes(rng, data)
    if kind == "truncate":
        return kind, truncate(rng, data)
    if kind == "header_length":
        return kind, header_length(rng, data)
    if kind == "metadata":
        return kind, edit_metadata(rng, data)
    if kind == "entry":
        return kind, edit_tensor_entry(rng, data)
    return kind, rewrite_tensors(rng, data, folder)


def load_outcome(path: Path) -> str:
    """``loaded``, ``refused`` (SteerlensError naming the path), or a failure label."""
    try:
        vector = SteeringVector.load(path)
    except SteerlensError as error:
        return "refused" if str(path) in str(error) else "refused_without_path"
    except Exception as error:  # noqa: BLE001 - the fuzz's point: nothing else may escape
        return f"obscure:{type(error).__name__}: {str(error)[:80]}"
    finite = all(bool(torch.isfinite(v).all()) for v in vector.directions.values())
    dtypes = {v.dtype for v in vector.directions.values()}
    return "loaded" if finite and dtypes == {torch.float32} else "nonfinite_load"


def fuzz(n: int, seed: int = 0) -> collections.Counter:
    """Outcome counts over ``n`` mutated files (``loaded``, ``refused`` or failures)."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    counts: collections.Counter = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        originals = [valid_bytes(rng, folder) for _ in range(8)]
        path = folder / "mutated.safetensors"
        for _ in range(n):
            kind, data = mutate(rng, rng.choice(originals), folder)
            path.write_bytes(data)
            outcome = load_outcome(path)
            counts[outcome if outcome in ("loaded", "refused") else f"{kind}/{outcome}"] += 1
    return counts


def failures(counts: collections.Counter) -> dict[str, int]:
    return {key: n for key, n in counts.items() if key not in ("loaded", "refused")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    counts = fuzz(args.n, args.seed)
    bad = failures(counts)
    print(
        f"{args.n} mutated files (seed {args.seed}) in {time.perf_counter() - started:.1f} s: "
        f"{counts['loaded']} loaded (finite float32), {counts['refused']} refused with "
        f"SteerlensError, {sum(bad.values())} failures"
    )
    for key, count in sorted(bad.items(), key=lambda kv: -kv[1]):
        print(f"  {count:6d}  {key}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
