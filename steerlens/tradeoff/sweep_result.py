"""``SweepResult``: final residuals under many coefficients, with readouts computed lazily."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from jaxtyping import Float, Int
from torch import Tensor

from ..core.errors import SteerlensError


@dataclass(frozen=True, eq=False)
class SweepResult:
    """Final normalized residuals of many queries under many steering coefficients.

    Attributes:
        coeffs: ``[n_coeffs]``, in the order given to ``sweep``.
        final: ``[n_coeffs, n_queries, d_model]``, ``h_L`` (the ``ln_final`` output, the
            unembedding's input) at each query's last token under each coefficient.
        base: ``[n_queries, d_model]``, ``h_L`` unsteered (coefficient 0).
        prompts: the queries, in order.
        layers: the steered layers; ``site`` the residual site.
        normalized: whether each layer's direction was scaled to unit norm, so that a
            coefficient is the paper's ``r_e`` (the length added to the residual).
        W_U: ``[d_model, d_vocab]`` unembedding (the model's, not copied); ``b_U`` its bias.

    Example:
        >>> res = sl.tradeoff.sweep(model, vec, [-40.0, 0.0, 40.0], prompts)
        >>> res.delta.shape   # h_L(q, r) - h_L(q, 0): [3, n_prompts, d_model]
    """

    coeffs: Float[Tensor, " n_coeffs"]
    final: Float[Tensor, "n_coeffs n_queries d_model"]
    base: Float[Tensor, "n_queries d_model"]
    prompts: tuple[str, ...]
    layers: tuple[int, ...]
    site: str
    normalized: bool
    W_U: Float[Tensor, "d_model d_vocab"]
    b_U: Float[Tensor, " d_vocab"] | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        values = ", ".join(f"{c:g}" for c in self.coeffs.tolist())
        return (
            f"SweepResult(n_coeffs={self.n_coeffs}, n_queries={self.n_queries}, "
            f"layers={list(self.layers)}, site={self.site!r}, normalized={self.normalized}, "
            f"coeffs=[{values}])"
        )

    @property
    def n_coeffs(self) -> int:
        return self.coeffs.numel()

    @property
    def n_queries(self) -> int:
        return len(self.prompts)

    @property
    def delta(self) -> Float[Tensor, "n_coeffs n_queries d_model"]:
        """``δr(q, r) = h_L(q, r) - h_L(q, 0)``."""
        return self.final - self.base[None]

    def index(self, coeff: float) -> int:
        """Position of ``coeff`` in ``coeffs`` (exact match)."""
        hits = (self.coeffs == float(coeff)).nonzero().flatten()
        if hits.numel() == 0:
            raise SteerlensError(f"coeff: {coeff!r} is not among {self.coeffs.tolist()}")
        return int(hits[0])

    def logits(self, index: int) -> Float[Tensor, "n_queries d_vocab"]:
        """Next-token logits of every query under coefficient ``coeffs[index]``."""
        if not -self.n_coeffs <= index < self.n_coeffs:
            raise SteerlensError(f"index: {index} is out of range for {self.n_coeffs} coefficients")
        return self._unembed(self.final[index])

    def base_logits(self) -> Float[Tensor, "n_queries d_vocab"]:
        """Unsteered next-token logits of every query."""
        return self._unembed(self.base)

    def _unembed(self, h: Tensor) -> Tensor:
        out = h @ self.W_U.to(h.dtype)
        return out if self.b_U is None else out + self.b_U.to(h.dtype)

    def map_logits(self, fn: Callable[[Tensor], Tensor]) -> Tensor:
        """``fn`` applied to the ``[n_queries, d_vocab]`` logits of each coefficient, stacked
        along a new first axis (one coefficient's logits in memory at a time)."""
        return torch.stack([fn(self.logits(i)) for i in range(self.n_coeffs)])

    def log_normalizer(self) -> Float[Tensor, "n_coeffs n_queries"]:
        """``logsumexp`` of each coefficient's logits (for probabilities of token sets)."""
        if "lse" not in self._cache:
            self._cache["lse"] = self.map_logits(lambda z: z.logsumexp(-1))
        return self._cache["lse"]

    def token_logits(
        self, ids: Int[Tensor, " k"] | Int[Tensor, "n_queries k"]
    ) -> Float[Tensor, "n_coeffs n_queries k"]:
        """Logits of chosen tokens: the same ``[k]`` ids for every query, or ``[n_queries, k]``."""
        columns = self._columns(ids)  # [n_queries, k, d_model]
        out = torch.einsum("cqd,qkd->cqk", self.final, columns)
        return out + self._bias(ids)

    def token_delta_logits(
        self, ids: Int[Tensor, " k"] | Int[Tensor, "n_queries k"]
    ) -> Float[Tensor, "n_coeffs n_queries k"]:
        """``<δr, u_i>``: the change of each chosen token's logit from coefficient 0."""
        return torch.einsum("cqd,qkd->cqk", self.delta, self._columns(ids))

    def unembedding_rows(
        self, ids: Int[Tensor, " k"] | Int[Tensor, "n_queries k"]
    ) -> Float[Tensor, "n_queries k d_model"]:
        """``u_i`` (column ``i`` of ``W_U``) for the chosen tokens, per query."""
        return self._columns(ids)

    def _ids(self, ids: Tensor) -> Tensor:
        ids = torch.as_tensor(ids)
        if ids.dtype in (torch.float16, torch.float32, torch.float64, torch.bool):
            raise SteerlensError(f"ids: expected integer token ids, got dtype {ids.dtype}")
        if ids.ndim == 1:
            ids = ids[None].expand(self.n_queries, -1)
        if ids.ndim != 2 or ids.shape[0] != self.n_queries:
            raise SteerlensError(
                f"ids: expected shape [k] or [n_queries={self.n_queries}, k], got "
                f"{tuple(ids.shape)}"
            )
        vocab = self.W_U.shape[1]
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
            raise SteerlensError(f"ids: token ids must lie in 0..{vocab - 1}")
        return ids.long()

    def _columns(self, ids: Tensor) -> Tensor:
        ids = self._ids(ids)
        return self.W_U.T[ids].to(self.final.dtype)

    def _bias(self, ids: Tensor) -> Tensor:
        if self.b_U is None:
            return torch.zeros(())
        return self.b_U[self._ids(ids)].to(self.final.dtype)
