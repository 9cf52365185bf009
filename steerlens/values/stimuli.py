"""Value-entanglement stimuli: the schema, its validation, and subsampling by frame.

A stimulus set is a table with one row per item: ``id``, ``text``, ``set``
(``"moral_grammar"`` or ``"moral_economic"``), ``moral`` (+1 good act / -1 bad act) and the
set's target label: ``grammar`` (+1 well-formed / -1 ill-formed) for ``moral_grammar``,
``economic`` (+1 gain / -1 loss) for ``moral_economic``. An optional ``frame`` names the base
scenario an item was derived from (bootstrap resamples frames, so matched items stay
together); without it every item is its own frame. Both factors must be crossed in equal
numbers (a balanced 2 x 2 per set), so that the moral effect and the target effect are
estimated independently.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..core import datasets
from ..core.errors import SteerlensError

# target dimension -> the stimulus set where moral value varies independently of it
TARGETS = {"grammar": "moral_grammar", "economic": "moral_economic"}
SETS = {set_name: target for target, set_name in TARGETS.items()}
DIMENSIONS = ("moral", *TARGETS)


def check_dimensions(dimensions: Any) -> list[str]:
    """Validate target dimension names (``"grammar"``, ``"economic"``); keeps the order."""
    if isinstance(dimensions, str):
        dimensions = [dimensions]
    dimensions = list(dimensions)
    if not dimensions:
        raise SteerlensError(f"dimensions: expected at least one of {list(TARGETS)}, got none")
    for name in dimensions:
        if name not in TARGETS:
            hint = difflib.get_close_matches(str(name), list(TARGETS), n=1)
            did = f" Did you mean {hint[0]!r}?" if hint else ""
            raise SteerlensError(
                f"dimensions: unknown dimension {name!r}; valid: {list(TARGETS)}.{did}"
            )
    if len(set(dimensions)) != len(dimensions):
        raise SteerlensError(f"dimensions: {dimensions} names a dimension twice")
    return dimensions


def _labels(frame: pd.DataFrame, column: str, rows: pd.Series, set_name: str) -> pd.Series:
    if column not in frame.columns:
        raise SteerlensError(
            f"stimuli: items of set {set_name!r} need a {column!r} label column (+1 / -1); "
            f"columns are {list(frame.columns)}"
        )
    values = pd.to_numeric(frame.loc[rows, column], errors="coerce")
    bad = frame.loc[rows][~values.isin([1, -1])]
    if len(bad):
        raise SteerlensError(
            f"stimuli: column {column!r} must be +1 or -1 for every item of set {set_name!r}; "
            f"item {bad['id'].iloc[0]!r} has {frame.loc[bad.index[0], column]!r}"
        )
    return values.astype(int)


def load_stimuli(stimuli: Any = None, dimensions: Sequence[str] = tuple(TARGETS)) -> pd.DataFrame:
    """Load and validate a stimulus set; keep the sets of the requested dimensions.

    Args:
        stimuli: ``None`` (the shipped ``"values"`` set), a dataset name, a JSONL/CSV path or
            a DataFrame in the schema above.
        dimensions: target dimensions to keep (``"grammar"``, ``"economic"``).

    Returns:
        A copy with columns ``id, set, frame, text, moral, grammar, economic`` (labels as
        ints, ``0`` where a label does not apply) plus any extra columns, in input order.
    """
    dimensions = check_dimensions(dimensions)
    frame = datasets.load("values" if stimuli is None else stimuli)
    missing = [c for c in ("id", "text", "set", "moral") if c not in frame.columns]
    if missing:
        raise SteerlensError(
            f"stimuli: missing column(s) {missing}; expected id, text, set, moral and the "
            f"target labels (grammar / economic). Got {list(frame.columns)}"
        )
    unknown = sorted(set(frame["set"].astype(str)) - set(SETS))
    if unknown:
        raise SteerlensError(f"stimuli: unknown set(s) {unknown}; valid: {sorted(SETS)}")
    wanted = [TARGETS[d] for d in dimensions]
    frame = frame[frame["set"].isin(wanted)].reset_index(drop=True)
    absent = [s for s in wanted if s not in set(frame["set"])]
    if absent:
        raise SteerlensError(
            f"stimuli: no items in set(s) {absent}, needed for dimensions {dimensions}"
        )
    if frame["id"].isna().any() or not frame["id"].is_unique:
        raise SteerlensError("stimuli: every item needs a unique, non-empty id")
    texts = frame["text"]
    empty = frame[~texts.map(lambda t: isinstance(t, str) and bool(t.strip()))]
    if len(empty):
        raise SteerlensError(f"stimuli: item {empty['id'].iloc[0]!r} has no text")
    out = frame.copy()
    out["id"] = out["id"].astype(str)
    if "frame" not in out.columns:
        out["frame"] = out["id"]
    out["frame"] = out["frame"].fillna(out["id"]).astype(str)
    for target in TARGETS:
        out[target] = 0
    out["moral"] = 0
    for set_name in wanted:
        rows = frame["set"] == set_name
        target = SETS[set_name]
        out.loc[rows, "moral"] = _labels(frame, "moral", rows, set_name)
        out.loc[rows, target] = _labels(frame, target, rows, set_name)
        _check_cells(out[rows], set_name, target)
    first = ["id", "set", "frame", "text", "moral", *TARGETS]
    return out[first + [c for c in out.columns if c not in first]]


def _check_cells(items: pd.DataFrame, set_name: str, target: str) -> None:
    counts = items.groupby(["moral", target]).size()
    cells = {(m, t): int(counts.get((m, t), 0)) for m in (1, -1) for t in (1, -1)}
    described = ", ".join(f"moral {m:+d}/{target} {t:+d}: {n}" for (m, t), n in cells.items())
    if min(cells.values()) < 2:
        raise SteerlensError(
            f"stimuli: set {set_name!r} needs at least 2 items in each of its 4 cells "
            f"(moral x {target}); got {described}"
        )
    if len(set(cells.values())) > 1:
        raise SteerlensError(
            f"stimuli: set {set_name!r} is unbalanced ({described}); the moral and {target} "
            "effects are only separable in a balanced design: give every cell the same "
            "number of items (e.g. all four versions of each frame)"
        )


def subsample(items: pd.DataFrame, max_frames: int | None, seed: int = 0) -> pd.DataFrame:
    """Keep at most ``max_frames`` frames per set (seeded), all items of each kept frame."""
    if max_frames is None:
        return items
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 2:
        raise SteerlensError(f"max_frames: expected an int >= 2 or None, got {max_frames!r}")
    rng = np.random.default_rng(seed)
    kept = []
    for set_name in dict.fromkeys(items["set"]):
        frames = list(dict.fromkeys(items.loc[items["set"] == set_name, "frame"]))
        if len(frames) > max_frames:
            frames = sorted(rng.choice(frames, max_frames, replace=False), key=frames.index)
        kept += frames
    out = items[items["frame"].isin(kept)].reset_index(drop=True)
    for set_name in dict.fromkeys(out["set"]):
        _check_cells(out[out["set"] == set_name], set_name, SETS[set_name])
    return out
