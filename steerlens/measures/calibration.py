"""A steering coefficient from a KL budget: bisection on the coefficient of ``sl.add`` until a
quantile of per-token ``KL(p_unsteered || p_steered)`` on neutral text equals the budget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import torch
from tqdm.auto import tqdm

from ..core.errors import SteerlensError
from ..core.types import HookedModel
from ..core.validate import check_bool, check_int, check_model, check_number, check_texts
from ..core.vector import SteeringVector, as_vector
from ..steering.interventions import add
from .kl import neutral_texts, token_kl

MAX_DOUBLINGS = 20  # a factor of 10^6 either way from ``start``


@dataclass(frozen=True)
class Calibration:
    """The coefficient at which the ``quantile`` of per-token KL on the texts is ``kl``.

    Attributes:
        coeff: the calibrated coefficient of ``sl.add(vector, coeff)`` (positive).
        kl: the target KL (nats per token).
        quantile: the quantile of per-token KL that was matched.
        achieved: the KL quantile measured at ``coeff``.
        curve: every coefficient tried, sorted: columns ``coeff``, ``kl_quantile``,
            ``kl_mean`` (nats per token).
        n_tokens: the number of text tokens each KL quantile is taken over.
    """

    coeff: float
    kl: float
    quantile: float
    achieved: float
    curve: pd.DataFrame
    n_tokens: int

    def figure(self) -> go.Figure:
        """The KL quantile against the coefficient, with the target and the result."""
        fig = go.Figure(
            go.Scatter(
                x=self.curve["coeff"],
                y=self.curve["kl_quantile"],
                mode="markers+lines",
                name=f"KL quantile {self.quantile:g}",
            )
        )
        fig.add_hline(y=self.kl, line_dash="dot", annotation_text=f"target {self.kl:g}")
        fig.add_vline(x=self.coeff, line_dash="dot", annotation_text=f"coeff {self.coeff:.4g}")
        fig.update_layout(
            title="KL budget calibration",
            xaxis_title="coefficient c (x ← x + c·v)",
            yaxis_title=f"{self.quantile:g} quantile of KL(p ‖ p_steered), nats",
        )
        return fig


def _checked(
    vector: Any, kl: Any, texts: Any, quantile: Any, steps: Any, rtol: Any, start: Any
) -> tuple[float, list[str], float, int, float, float]:
    """The arguments of ``calibrate``, checked before any compute."""
    kl = check_number("kl", kl, low=0.0, open_low=True)
    texts = check_texts("texts", neutral_texts() if texts is None else texts)
    quantile = check_number("quantile", quantile, low=0.0, high=1.0, open_low=True)
    steps = check_int("steps", steps, low=1)
    rtol = check_number("rtol", rtol, low=0.0, high=1.0, open_low=True)
    start = check_number("start", start, low=0.0, open_low=True)
    if not any(v.abs().max() > 0 for v in vector.directions.values()):
        raise SteerlensError("vector: is zero at every layer; no coefficient moves the model")
    return kl, texts, quantile, steps, rtol, start


def calibrate(
    model: HookedModel,
    vector: SteeringVector | torch.Tensor,
    kl: float = 1.0,
    texts: Sequence[str] | None = None,
    quantile: float = 0.95,
    *,
    layers: int | Sequence[int] | None = None,
    site: str | None = None,
    steps: int = 12,
    rtol: float = 0.02,
    start: float = 1.0,
    batch_size: int = 8,
    progress: bool | None = None,
) -> Calibration:
    """Find ``c > 0`` where the ``quantile`` of per-token ``KL(p || p_steered)`` under
    ``sl.add(vector, c)`` over the texts' tokens equals ``kl`` (steering-lite's rule).

    The coefficient is doubled from ``start`` until the KL quantile passes ``kl``, then
    bisected for at most ``steps`` steps, stopping once within ``rtol`` (relative) of ``kl``.
    Coefficients are positive: to calibrate the opposite direction, pass ``-vector``.

    Args:
        model: a TransformerLens model.
        vector: a ``SteeringVector``, or a ``[d_model]`` tensor together with ``layers``.
        kl: the KL budget in nats per token (> 0).
        texts: raw texts (default: the shipped ``neutral`` set).
        quantile: which quantile of the per-token KLs must equal ``kl``, in ``(0, 1]``.
        layers: a subset of the vector's layers (default: all of them).
        site: ``resid_pre`` / ``resid_mid`` / ``resid_post`` (default: the vector's site).
        steps: at most this many bisection steps.
        rtol: stop when ``|KL quantile - kl| <= rtol * kl``.
        start: the first coefficient tried.
        batch_size: texts per forward pass.
        progress: show a progress bar.

    Returns:
        A ``Calibration`` (``.coeff``, ``.curve``, ``.figure()``).

    Example:
        >>> cal = sl.calibrate(model, vec.unit(), kl=0.5, texts=texts)   # or the shipped ones
        >>> with sl.steer(model, sl.add(vec.unit(), cal.coeff)): ...
    """
    check_model(model)
    check_bool("progress", progress, none=True)
    vector = as_vector(vector, layers, site).select(layers)
    vector.check_model(model, additive=True)
    kl, texts, quantile, steps, rtol, start = _checked(
        vector, kl, texts, quantile, steps, rtol, start
    )
    tried: dict[float, tuple[float, float]] = {}
    n_tokens = 0

    def measure(coeff: float) -> float:
        nonlocal n_tokens
        if coeff not in tried:
            intervention = add(vector, coeff, site=site)
            kls = token_kl(model, {"kl": intervention}, texts, batch_size=batch_size)["kl"]
            n_tokens = kls.numel()
            tried[coeff] = (float(torch.quantile(kls, quantile)), float(kls.mean()))
            bar.update()
        return tried[coeff][0]

    with tqdm(desc="calibrate", unit="coeff", disable=not progress) as bar:
        _bisect(measure, kl, *_bracket(measure, kl, start), steps, rtol)
    coeff = min(tried, key=lambda c: abs(tried[c][0] - kl))
    curve = pd.DataFrame(
        [(c, q, m) for c, (q, m) in sorted(tried.items())],
        columns=["coeff", "kl_quantile", "kl_mean"],
    )
    return Calibration(coeff, kl, quantile, tried[coeff][0], curve, n_tokens)


def _bracket(measure: Any, kl: float, start: float) -> tuple[float, float]:
    """``(low, high)`` with KL quantile ``< kl`` at ``low`` (0 at worst) and ``>= kl`` at
    ``high``: doubling up from ``start``, or halving down."""
    coeff = start
    if measure(coeff) >= kl:
        for _ in range(MAX_DOUBLINGS):
            if measure(coeff / 2) < kl:
                return coeff / 2, coeff
            coeff /= 2
        raise SteerlensError(
            f"kl: the KL quantile is still >= {kl:g} at coeff {coeff:.3g}; the model is "
            "not unsteered at coefficient 0, or kl is too small to resolve"
        )
    for _ in range(MAX_DOUBLINGS):
        if measure(coeff * 2) >= kl:
            return coeff, coeff * 2
        coeff *= 2
    raise SteerlensError(
        f"kl: the KL quantile never reached {kl:g} up to coeff {coeff:.3g} (it saturates "
        "below the budget); choose a smaller kl"
    )


def _bisect(measure: Any, kl: float, low: float, high: float, steps: int, rtol: float) -> None:
    """Halve ``[low, high]`` around the crossing of ``kl`` until a measured coefficient is
    within ``rtol`` of it, or ``steps`` run out."""
    if abs(measure(high) - kl) <= rtol * kl:
        return
    for _ in range(steps):
        middle = (low + high) / 2
        found = measure(middle)
        if abs(found - kl) <= rtol * kl:
            return
        low, high = (middle, high) if found < kl else (low, middle)
