"""Steering: interventions on the residual stream, and reading it, on any TransformerLens model.

``Intervention`` objects describe an edit (``add``, ``ablate``, ``clamp``, ``rotate``, or a
subclass of your own); ``steer`` hooks them into a model for a ``with`` block (forward
passes, cached runs, generation; ``trace=True`` records where they edited);
``collect_activations`` and ``project`` read the residual stream; ``next_token_logits``
and ``generate`` read outputs.
"""

from .activations import collect_activations as collect_activations
from .activations import project as project
from .conditional import Conditional as Conditional
from .conditional import when as when
from .conflicts import Conflict as Conflict
from .conflicts import SteeringConflictWarning as SteeringConflictWarning
from .conflicts import find_conflicts as find_conflicts
from .context import steer as steer
from .generation import generate as generate
from .interventions import Intervention as Intervention
from .interventions import ablate as ablate
from .interventions import add as add
from .interventions import clamp as clamp
from .interventions import rotate as rotate
from .nonfinite import SteeringNonFiniteWarning as SteeringNonFiniteWarning
from .readout import next_token_logits as next_token_logits
from .trace import SteeringTrace as SteeringTrace
from .weights import orthogonalize_weights as orthogonalize_weights
from .weights import save_model as save_model

__all__ = [
    "Conditional",
    "Conflict",
    "Intervention",
    "SteeringConflictWarning",
    "SteeringNonFiniteWarning",
    "SteeringTrace",
    "ablate",
    "add",
    "clamp",
    "collect_activations",
    "find_conflicts",
    "generate",
    "next_token_logits",
    "orthogonalize_weights",
    "project",
    "rotate",
    "save_model",
    "steer",
    "when",
]
