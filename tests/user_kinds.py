"""A user's own intervention kind, written as in a notebook (DESIGN §12's ``Scale``): the
tests run it through every backend next to the shipped kinds, with no change to steerlens."""

from __future__ import annotations

import steerlens as sl


class Scale(sl.steering.Intervention):
    """``x <- x + (f - 1) (x . d) d``: the component along unit ``d`` scaled by ``f``."""

    def __init__(self, d, f, **where):
        super().__init__(**where)
        self.d, self.f = d, f

    def edit(self, x, layer):
        return x + (self.f - 1) * (x @ self.d)[..., None] * self.d
