"""Residual-stream interventions: objects that say where they apply and how they edit.

With ``x`` the residual at one position and ``u = d / |d|``:

- ``add``:    ``x <- x + c d``; ``preserve_norm``: ``x <- (x + c d) |x| / |x + c d|``
- ``ablate``: ``x <- x - (x . u) u``; rank-k: ``x <- x - Q Q^T x``
- ``clamp``:  ``x <- x - (x . u) u + a u``
- ``rotate``: ``x <- |x| (cos θ u + sin θ x⊥ / |x⊥|)`` (or within a fixed plane)

Each kind is a subclass of ``Intervention``; a user's own subclass works the same way.
``sl.steer`` (``steering.context``) hooks them into a model.
"""

from .ablate import Ablate as Ablate
from .ablate import ablate as ablate
from .add import Add as Add
from .add import add as add
from .base import EXPECTED as EXPECTED
from .base import Intervention as Intervention
from .clamp import Clamp as Clamp
from .clamp import clamp as clamp
from .rotate import Rotate as Rotate
from .rotate import rotate as rotate

__all__ = [
    "EXPECTED",
    "Ablate",
    "Add",
    "Clamp",
    "Intervention",
    "Rotate",
    "ablate",
    "add",
    "clamp",
    "rotate",
]
