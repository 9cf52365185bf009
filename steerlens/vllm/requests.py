"""Intervention lists per prompt, checked before anything reaches the engine, and the vLLM
prompts and sampling parameters that carry them.

Everything a worker would otherwise find out mid-batch is checked here, where an error is
a ``SteerlensError`` for this call rather than a stopped engine: the kinds, layers, sites,
``d_model`` and residual basis of every intervention, and every position rule against
every prompt (indices in range, boolean masks of the prompt's length, chat-role markers
present), as ``sl.steer`` checks them on the first pass over a prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..core.errors import SteerlensError, SteerlensTypeError
from ..core.hookpoints import SITES, check_d_model
from ..core.positions import Positions
from ..core.roles import ROLES, ChatSpans
from ..core.validate import shown
from ..steering.conditional import Conditional
from ..steering.conflicts import warn_conflicts
from ..steering.interventions import EXPECTED, Intervention
from . import payload
from .engine import EngineModel


def per_prompt(interventions: Any, n_prompts: int) -> list[list[Any]]:
    """One list per prompt: ``None`` or ``[]`` (unsteered), one intervention or one list
    (the same for every prompt), or a list of lists (one per prompt)."""
    steers = (Intervention, Conditional)
    if interventions is None:
        return [[] for _ in range(n_prompts)]
    if isinstance(interventions, steers):
        return [[interventions]] * n_prompts
    if isinstance(interventions, Sequence) and not isinstance(interventions, str):
        items = list(interventions)
        if all(isinstance(item, steers) for item in items):
            return [items] * n_prompts
        if all(isinstance(item, Sequence) and not isinstance(item, str) for item in items):
            if len(items) != n_prompts:
                raise SteerlensError(
                    f"interventions: {len(items)} lists for {n_prompts} prompts; give one "
                    "list per prompt ([] for an unsteered one), or one list for all"
                )
            return [list(item) for item in items]
    raise SteerlensTypeError(
        "interventions: expected an intervention, a list of them (for every prompt) or one "
        f"list per prompt, got {shown(interventions)}"
    )


def check_entry(model: EngineModel, entry: Any, name: str) -> None:
    """Raise unless ``entry`` fits the engine's model (layers, site, size, basis)."""
    if isinstance(entry, Conditional):
        _check_where(model, [entry.layer], entry.site, entry.direction.shape[-1], name)
        check_entry(model, entry.intervention, f"{name}.intervention")
        return
    if not isinstance(entry, Intervention):
        raise SteerlensTypeError(
            f"{name}: expected {EXPECTED} or an sl.when result, got {shown(entry)}"
        )
    _check_where(model, entry.layers, entry.site, entry.d_model, name)
    if entry.basis not in (None, "plain") and not entry.basis_invariant():
        raise SteerlensError(
            f"{name}: {entry!r} was read in the {entry.basis!r} residual basis and does not "
            "apply exactly to vLLM's plain (Hugging Face) residual stream"
        )


def _check_where(model: EngineModel, layers: list[int], site: str, size: Any, name: str) -> None:
    count = model.cfg.n_layers
    bad = [layer for layer in layers if not 0 <= layer < count]
    if bad:
        raise SteerlensError(
            f"{name}: layers {bad} are out of range for a model with {count} layers "
            f"(valid: 0..{count - 1})"
        )
    if site not in SITES:
        raise SteerlensError(f"{name}: site {site!r} is not one of {SITES}")
    if size is not None:
        check_d_model(name, size, model)


def check_rules(model: EngineModel, entries: list[Any], ids: list[int], row: int) -> None:
    """Every position rule of ``entries`` against prompt ``row`` (as on a first pass)."""
    rules = [getattr(e, "intervention", e).positions for e in entries]
    if not rules:
        return
    roles = None
    if any(rule.kind in ROLES for rule in rules):
        tokens = torch.tensor([ids])
        roles = ChatSpans(model.tokenizer, tokens, torch.ones_like(tokens, dtype=torch.bool))
        try:
            roles.bounds()
        except SteerlensError as error:
            raise SteerlensError(f"prompts[{row}]: {error}") from error
    where = Positions(torch.arange(len(ids))[None], torch.tensor([len(ids)]), True, roles)
    for rule in rules:
        try:
            rule.select(where)
        except SteerlensError as error:
            raise SteerlensError(f"prompts[{row}]: {error}") from error


def check_lists(model: EngineModel, lists: list[list[Any]], encoded: list[list[int]]) -> None:
    """Check every prompt's list (each distinct list's entries once), warning of conflicts
    as ``sl.steer`` does (``sl.steering.find_conflicts``)."""
    seen: set[int] = set()
    for row, entries in enumerate(lists):
        if id(entries) not in seen:
            seen.add(id(entries))
            for index, entry in enumerate(entries):
                check_entry(model, entry, f"interventions[{index}]")
            warn_conflicts([getattr(entry, "intervention", entry) for entry in entries])
        check_rules(model, entries, encoded[row], row)


def engine_requests(
    lists: list[list[Any]], encoded: list[list[int]], params: Any
) -> tuple[list[dict[str, Any]], list[Any]]:
    """vLLM prompts and sampling parameters: a steered prompt carries its payload and a
    cache salt (``payload``); an unsteered one goes as plain vLLM would run it."""
    encoded_lists: dict[int, str] = {}
    prompts, all_params = [], []
    for entries, ids in zip(lists, encoded, strict=True):
        prompt: dict[str, Any] = {"prompt_token_ids": ids}
        if not entries:
            prompts.append(prompt)
            all_params.append(params)
            continue
        if id(entries) not in encoded_lists:
            encoded_lists[id(entries)] = payload.encode(entries)
        carried = encoded_lists[id(entries)]
        prompt["cache_salt"] = payload.salt(carried, entries, ids)
        prompts.append(prompt)
        steered = params.clone()
        steered.extra_args = {payload.KEY: carried}
        all_params.append(steered)
    return prompts, all_params
