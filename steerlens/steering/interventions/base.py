"""``Intervention``: the one object every steering backend asks how to edit the residual.

An intervention knows where it applies (``layers``, ``site``, ``positions``) and how it edits
a residual (``edit(x, layer)`` on ``[..., d_model]``). ``sl.steer``, ``sl.when``, steering
traces, conflict warnings, the residual-basis check and ``sl.vllm`` call its methods and never
look at which kind it is, so a subclass written in a notebook works in all of them.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from ...core.errors import SteerlensError
from ...core.hookpoints import check_site, layer_list
from ...core.positions import PositionRule, position_rule
from ...core.validate import shown

#: what an intervention argument takes, in words (error messages)
EXPECTED = "an Intervention (sl.add, sl.ablate, sl.clamp, sl.steering.rotate, or a subclass)"


class Intervention:
    """An edit of the residual stream at ``site`` of ``layers``, at ``positions``.

    Subclass it for an edit of your own: call ``super().__init__(layers=..., site=...,
    positions=...)`` and implement ``edit``. Override the other methods to tell the machinery
    more: ``d_model`` (checked against the model), ``touches`` / ``removes`` (conflict
    warnings), ``basis`` and ``basis_invariant`` (the residual-basis check), ``describe``
    (the ``repr``).

    Args:
        layers: an int or a list of ints (blocks to edit).
        site: ``"resid_pre"``, ``"resid_mid"`` or ``"resid_post"``.
        positions: ``"all"``, ``"prompt"``, ``"generated"``, a chat role, indices, or a
            boolean mask (``core.positions``); absolute, so the KV cache and left padding do
            not change which tokens are edited.

    Example:
        >>> class Scale(sl.steering.Intervention):
        ...     def __init__(self, d, f, **where):
        ...         super().__init__(**where)
        ...         self.d, self.f = d, f
        ...     def edit(self, x, layer):
        ...         return x + (self.f - 1) * (x @ self.d)[..., None] * self.d
        >>> with sl.steer(model, Scale(u, 3.0, layers=[1], site="resid_pre")):
        ...     logits = model("The quick brown fox")
    """

    #: the residual basis its directions were read in (``core.basis``); ``None``: not tied
    #: to one (the basis check is skipped)
    basis: str | None = None

    def __init__(self, *, layers: Any, site: str = "resid_pre", positions: Any = "all") -> None:
        self.layers: list[int] = sorted(layer_list(layers))
        self.site: str = check_site(site)
        self.positions: PositionRule = position_rule(positions)
        self._copies: dict[tuple, Tensor] = {}

    def edit(self, x: Float[Tensor, "... d_model"], layer: int) -> Float[Tensor, "... d_model"]:
        """The edited residual at every position of ``x`` (float32; the machinery keeps only
        the selected positions and casts back). Subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__}: implement edit(x, layer)")

    def apply(self, x: Float[Tensor, "... d_model"], layer: int) -> Float[Tensor, "... d_model"]:
        """``edit`` computed in float32 and cast back to ``x``'s dtype: what every backend
        calls. ``edit`` gets a copy, so editing it in place cannot reach positions or rows the
        machinery leaves alone. Raises if ``edit`` returns something other than a tensor
        shaped like ``x``."""
        edited = self.edit(x.to(torch.float32, copy=True), layer)
        if not isinstance(edited, Tensor) or edited.shape != x.shape:
            got = tuple(edited.shape) if isinstance(edited, Tensor) else shown(edited)
            raise SteerlensError(
                f"{self!r}: edit(x, {layer}) must return a tensor shaped like x "
                f"{tuple(x.shape)}, got {got}"
            )
        return edited.to(x.dtype)

    @property
    def d_model(self) -> int | None:
        """The residual width its directions have (``None``: not known, not checked)."""
        return None

    def touches(self, layer: int) -> Float[Tensor, "k d_model"] | None:  # noqa: ARG002
        """Directions along which the edit changes the residual at ``layer`` (rows), or
        ``None`` if it does not say; a later intervention removing them is a conflict."""
        return None

    def removes(self, layer: int) -> Float[Tensor, "k d_model"] | None:  # noqa: ARG002
        """Orthonormal rows whose component of the incoming residual the edit discards at
        ``layer`` (``None``: nothing), undoing earlier interventions along them."""
        return None

    def basis_invariant(self) -> bool:
        """Whether the edit is the same in the plain and the centred residual basis
        (``core.basis``), so it applies to a model of the other basis."""
        return False

    def describe(self) -> str:
        """What the edit does, in a few words (the ``repr`` adds where)."""
        return f"{type(self).__name__}()"

    def where(self) -> str:
        """Where it applies: hook points and positions."""
        layers = ",".join(map(str, self.layers))
        return f"blocks.{{{layers}}}.hook_{self.site}, {self.positions}"

    def __repr__(self) -> str:
        return f"{self.describe()} at {self.where()}"

    def on_device(self, key: Any, tensor: Tensor, device: torch.device) -> Tensor:
        """``tensor`` as float32 on ``device``, copied there once per (key, device)."""
        found = self._copies.get((key, str(device)))
        if found is None:
            found = self._copies[(key, str(device))] = tensor.to(device, torch.float32)
        return found
