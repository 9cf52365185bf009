"""How far steering moves next-token distributions: per-token KL on reference texts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from ..core import datasets
from ..core.batching import padded_batches
from ..core.errors import SteerlensError
from ..core.forward import run
from ..core.tokens import encode
from ..core.types import HookedModel
from ..core.validate import check_bool, check_instance, check_model, check_text, check_texts
from ..steering.context import check_fits, steer
from ..steering.interventions import EXPECTED, Intervention


def neutral_texts() -> list[str]:
    """The shipped ``neutral`` set: plain descriptive prose with no moral, grammatical-
    judgement or financial content (a reference for side effects of steering)."""
    return list(datasets.load("neutral")["text"])


def check_named_interventions(model: HookedModel, interventions: object) -> None:
    """A non-empty dict name -> intervention, each fitting ``model``."""
    check_instance("interventions", interventions, Mapping, "a dict name -> Intervention")
    if not interventions:
        raise SteerlensError("interventions: expected at least one, got an empty dict")
    for name, intervention in interventions.items():
        check_text("interventions key", name)
        check_instance(f"interventions[{name!r}]", intervention, Intervention, EXPECTED)
        check_fits(model, intervention)


def token_kl(
    model: HookedModel,
    interventions: Mapping[str, Intervention],
    texts: Sequence[str] | None = None,
    *,
    batch_size: int = 8,
    progress: bool | None = None,
) -> dict[str, Float[Tensor, " n_tokens"]]:
    """``KL(p_unsteered || p_steered)`` (nats) at every real token of ``texts``, per
    intervention; the unsteered distributions are computed once per batch.

    Args:
        model: a TransformerLens model.
        interventions: name -> intervention (``sl.add`` / ``sl.ablate`` / ...).
        texts: raw texts (default: the shipped ``neutral`` set).
        batch_size: texts per forward pass.
        progress: show a progress bar.

    Returns:
        name -> ``[n_tokens]`` float64 KLs, tokens in input order (row by row).
    """
    check_model(model)
    check_named_interventions(model, interventions)
    check_bool("progress", progress, none=True)
    texts = check_texts("texts", neutral_texts() if texts is None else texts)
    batches = padded_batches(model, [encode(model, text) for text in texts], batch_size)
    found: dict[str, list[tuple[int, Tensor]]] = {name: [] for name in interventions}
    for batch in tqdm(batches, desc="KL", disable=not progress):
        base = torch.log_softmax(run(model, batch.tokens, batch.mask).double(), dim=-1)
        real = batch.mask.to(base.device)
        for name, intervention in interventions.items():
            with steer(model, intervention):
                steered = torch.log_softmax(run(model, batch.tokens, batch.mask).double(), -1)
            kl = (base.exp() * (base - steered)).sum(-1)
            found[name] += [(row, kl[i][real[i]].cpu()) for i, row in enumerate(batch.rows)]
    out = {
        name: torch.cat([kl for _, kl in sorted(rows, key=lambda r: r[0])])
        for name, rows in found.items()
    }
    for name, kl in out.items():
        if not bool(torch.isfinite(kl).all()):
            raise SteerlensError(f"model: produced NaN or inf distributions under {name!r}")
    return out


def mean_kl(
    model: HookedModel,
    interventions: Mapping[str, Intervention],
    texts: Sequence[str] | None = None,
    *,
    batch_size: int = 8,
) -> dict[str, float]:
    """The mean over real tokens of ``token_kl`` (nats per token), per intervention."""
    kls = token_kl(model, interventions, texts, batch_size=batch_size)
    return {name: float(kl.mean()) for name, kl in kls.items()}
