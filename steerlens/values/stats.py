"""Leakage statistics: moral and target main effects on each rating, with a frame bootstrap.

For the items of one set, rated on one dimension, fit ``rating ~ 1 + t + m + t:m`` with
``t`` (target label) and ``m`` (moral label) coded +1/-1. The model is saturated (four
parameters for four cells), so OLS reproduces the cell means and the effects are contrasts
of cell means; they are computed that way (exactly the OLS estimates, also for unequal cell
sizes) so that thousands of bootstrap draws cost almost nothing:

- ``moral_effect``  = 2 b_m: mean rating of good minus bad acts, averaged over the target's
  two levels ("the moral main effect with the target controlled"). On a grammar or economic
  rating this is the **leakage**; on the moral rating it is the moral discrimination.
- ``target_effect`` = 2 b_t: the same for the target label (grammar / economic
  discrimination; on the moral rating, the reverse leakage).
- ``interaction``   = 4 b_tm: moral effect among target +1 minus among target -1 items.
- ``moral_share``   = |moral_effect| / (|moral_effect| + |target_effect|), in [0, 1]: 0 when
  the rating ignores morality, 1 when only morality moves it.

Confidence intervals are percentile intervals over a cluster bootstrap that resamples frames
(matched items stay together). Several conditions (e.g. before and after an ablation) are
resampled with the same draws, so the change of a statistic gets a paired interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import SteerlensError
from ..core.validate import check_int, check_number

STATISTICS = ("moral_effect", "target_effect", "interaction", "moral_share")
COLUMNS = ("id", "set", "frame", "moral", "target", "dimension", "rating")


def cell_effects(
    rating: np.ndarray, target: np.ndarray, moral: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """The four statistics for each row of ``weights``.

    Args:
        rating: ``[n]`` ratings.
        target: ``[n]`` target labels (+1/-1).
        moral: ``[n]`` moral labels (+1/-1).
        weights: ``[draws, n]`` non-negative item weights (counts of a bootstrap draw).

    Returns:
        ``[draws, 4]`` in the order of ``STATISTICS`` (NaN where a cell has no weight).
    """
    means = {}
    for m in (1, -1):
        for t in (1, -1):
            inside = (moral == m) & (target == t)
            total = weights[:, inside].sum(1)
            with np.errstate(invalid="ignore", divide="ignore"):
                means[m, t] = (weights[:, inside] @ rating[inside]) / total
    moral_effect = (means[1, 1] + means[1, -1] - means[-1, 1] - means[-1, -1]) / 2
    target_effect = (means[1, 1] + means[-1, 1] - means[1, -1] - means[-1, -1]) / 2
    interaction = (means[1, 1] - means[-1, 1]) - (means[1, -1] - means[-1, -1])
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.abs(moral_effect) / (np.abs(moral_effect) + np.abs(target_effect))
    return np.stack([moral_effect, target_effect, interaction, share], axis=1)


def _interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    """Percentile interval of the finite values (NaN, NaN when there are none)."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return float(low), float(high)


def _check(conditions: Any) -> dict[str, pd.DataFrame]:
    if isinstance(conditions, pd.DataFrame):
        conditions = {"before": conditions}
    if not isinstance(conditions, Mapping) or not conditions:
        raise SteerlensError(
            "ratings: expected a DataFrame from sl.value_ratings or a non-empty mapping "
            f"condition -> DataFrame, got {type(conditions).__name__}"
        )
    checked = {}
    reference = None
    for name, frame in conditions.items():
        if not isinstance(frame, pd.DataFrame):
            raise SteerlensError(f"ratings[{name!r}]: expected a DataFrame, got {type(frame)}")
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise SteerlensError(
                f"ratings[{name!r}]: missing columns {missing}; pass the output of sl.value_ratings"
            )
        if frame.empty or not np.isfinite(frame["rating"].to_numpy(float)).all():
            raise SteerlensError(f"ratings[{name!r}]: empty, or ratings are NaN/inf")
        keys = frame[["set", "dimension", "id"]].apply(tuple, axis=1)
        if keys.duplicated().any():
            raise SteerlensError(f"ratings[{name!r}]: an item is rated twice on one dimension")
        ordered = frame.assign(_key=keys).sort_values(["set", "dimension", "id"])
        if reference is None:
            reference = ordered
        elif ordered["_key"].tolist() != reference["_key"].tolist():
            raise SteerlensError(
                f"ratings[{name!r}]: rates other items or dimensions than "
                f"{next(iter(conditions))!r}; conditions must rate the same items"
            )
        checked[str(name)] = ordered.reset_index(drop=True)
    return checked


def _effect_rows(
    conditions: dict[str, pd.DataFrame], cell: dict, counts: np.ndarray, alpha: float
) -> list[dict[str, Any]]:
    """The table rows of one (set, rated dimension): every statistic of every condition,
    with paired changes against the first condition."""
    names = list(conditions)
    frame_index = {f: i for i, f in enumerate(cell["frames"])}
    results = {}
    for name in names:
        part = conditions[name]
        part = part[(part["set"] == cell["set"]) & (part["dimension"] == cell["dimension"])]
        args = [part[c].to_numpy(float) for c in ("rating", "target", "moral")]
        point = cell_effects(*args, np.ones((1, len(part))))[0]
        boot = cell_effects(*args, counts[:, part["frame"].map(frame_index).to_numpy()])
        results[name] = (point, boot, len(part))
    base_point, base_boot, _ = results[names[0]]
    # a draw is valid when every cell is present (the effects are then defined)
    valid = np.isfinite(np.stack([r[1][:, :3] for r in results.values()])).all(0).all(1)
    if valid.sum() < len(counts) // 2:
        raise SteerlensError(
            f"ratings: set {cell['set']!r} has too few frames ({len(cell['frames'])}) for a "
            "bootstrap: most draws miss a cell"
        )
    rows = []
    for name, (point, boot, n_items) in results.items():
        for k, statistic in enumerate(STATISTICS):
            low, high = _interval(boot[valid, k], alpha)
            change = dict.fromkeys(("change", "change_low", "change_high"), np.nan)
            if name != names[0]:
                change_low, change_high = _interval(boot[valid, k] - base_boot[valid, k], alpha)
                change = {
                    "change": point[k] - base_point[k],
                    "change_low": change_low,
                    "change_high": change_high,
                }
            rows.append(
                {
                    "condition": name,
                    "set": cell["set"],
                    "dimension": cell["dimension"],
                    "statistic": statistic,
                    "estimate": point[k],
                    "ci_low": low,
                    "ci_high": high,
                    **change,
                    "n_items": n_items,
                    "n_frames": len(cell["frames"]),
                    "n_boot_valid": int(valid.sum()),
                }
            )
    return rows


def value_leakage(
    ratings: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Moral and target effects on every rating, with frame-bootstrap CIs.

    Args:
        ratings: the output of ``sl.value_ratings``, or a mapping condition -> such output
            (e.g. ``{"before": r0, "after": r1}``); the first condition is the baseline for
            the paired ``change`` columns.
        n_boot: bootstrap draws (frames resampled with replacement within each set).
        level: confidence level of the percentile intervals.
        seed: seed of the draws.

    Returns:
        One row per (condition, set, rated dimension, statistic) with ``estimate``,
        ``ci_low``, ``ci_high``, the paired ``change`` vs the baseline with its interval
        (NaN for the baseline), ``n_items``, ``n_frames`` and ``n_boot_valid`` (draws in
        which every cell was present). Statistics: see the module ``steerlens.values.stats``. The
        leakage is the ``moral_effect`` of a grammar or economic rating.

    Example:
        >>> before = sl.values.value_ratings(model, max_frames=4)
        >>> with sl.steer(model, sl.ablate(moral_vector)):
        ...     after = sl.values.value_ratings(model, max_frames=4)
        >>> table = sl.values.value_leakage({"before": before, "after": after})
    """
    check_int("n_boot", n_boot, low=100)
    check_number("level", level, low=0.5, high=0.999999)
    check_int("seed", seed, low=0)
    conditions = _check(ratings)
    first = next(iter(conditions.values()))
    rng = np.random.default_rng(seed)
    rows = []
    for set_name in dict.fromkeys(first["set"]):
        frames = list(dict.fromkeys(first.loc[first["set"] == set_name, "frame"]))
        draws = rng.integers(0, len(frames), size=(n_boot, len(frames)))
        counts = np.zeros((n_boot, len(frames)))
        np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
        for dimension in dict.fromkeys(first.loc[first["set"] == set_name, "dimension"]):
            cell = {"set": set_name, "dimension": dimension, "frames": frames}
            rows += _effect_rows(conditions, cell, counts, (1 - level) / 2)
    return pd.DataFrame(rows)
