"""Stimulus sets shipped with steerlens (written for it; see ``data/CARDS.md``).

``names()`` lists them; ``load(name)`` returns a pandas DataFrame. ``load`` also accepts a
path to a JSONL or CSV file, a DataFrame, or a Hugging Face ``datasets.Dataset``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import SteerlensError

DATA_DIR = Path(__file__).parents[1] / "data"


def names() -> list[str]:
    """Names of the shipped datasets."""
    return sorted(path.stem for path in DATA_DIR.glob("*.jsonl"))


def load(source: Any) -> pd.DataFrame:
    """A dataset as a DataFrame: a shipped name, a JSONL/CSV path, a DataFrame or an HF dataset."""
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
    elif hasattr(source, "to_pandas"):
        frame = source.to_pandas()
    elif isinstance(source, (str, os.PathLike)):
        frame = _read(source)
    else:
        raise SteerlensError(
            f"source: expected a dataset name, a path, a DataFrame or an HF dataset, got {source!r}"
        )
    if frame.empty:
        raise SteerlensError(f"source: {source!r} has no rows")
    return frame.reset_index(drop=True)


def _read(source: str | os.PathLike) -> pd.DataFrame:
    path = Path(source)
    if str(source) in names():
        path = DATA_DIR / f"{source}.jsonl"
    elif not path.is_file():
        raise SteerlensError(
            f"source: {str(source)!r} is neither a shipped dataset {names()} nor a file"
        )
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    raise SteerlensError(f"source: expected a .jsonl or .csv file, got {path.name!r}")
