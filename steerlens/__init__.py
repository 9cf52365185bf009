"""steerlens: steer and read language models through TransformerLens hook points.

The top level holds the calls a session starts with; everything else lives in the
subpackages, one per layer (imports run one way, checked in CI):

``core`` (models, hook points, tokens, positions, ``SteeringVector``) -> ``steering``
(interventions, ``steer``, reading activations, ``generate``) -> ``vectors`` (contrastive,
probes, layer scan) -> ``measures`` (refusal, helpfulness, completions, KL) -> ``oneshot`` |
``tradeoff`` | ``values`` (the three research lines) | ``vllm`` (the same interventions inside
vLLM, imported only when used) -> ``report`` (the main job's page).

Importing defines names and does nothing else.
"""

from . import measures as measures
from . import oneshot as oneshot
from . import steering as steering
from . import tradeoff as tradeoff
from . import values as values
from . import vectors as vectors
from . import vllm as vllm
from .core import datasets as datasets
from .core.chat import answer_pairs as answer_pairs
from .core.chat import format_chat as format_chat
from .core.errors import SteerlensError as SteerlensError
from .core.loading import load_model as load_model
from .core.vector import SteeringVector as SteeringVector
from .measures.calibration import calibrate as calibrate
from .oneshot.optimize import optimize_one_shot as optimize_one_shot
from .steering.activations import collect_activations as collect_activations
from .steering.activations import project as project
from .steering.conditional import when as when
from .steering.context import steer as steer
from .steering.generation import generate as generate
from .steering.interventions import ablate as ablate
from .steering.interventions import add as add
from .steering.interventions import clamp as clamp
from .steering.weights import orthogonalize_weights as orthogonalize_weights
from .tradeoff.pipeline import tradeoff_report as tradeoff_report
from .values.pipeline import value_entanglement as value_entanglement
from .vectors.conditions import find_condition as find_condition
from .vectors.contrastive import contrastive_pca as contrastive_pca
from .vectors.contrastive import mean_difference as mean_difference
from .vectors.scan import layer_scan as layer_scan

__version__ = "0.1.0"

__all__ = [
    "SteerlensError",
    "SteeringVector",
    "ablate",
    "add",
    "answer_pairs",
    "calibrate",
    "clamp",
    "collect_activations",
    "contrastive_pca",
    "datasets",
    "find_condition",
    "format_chat",
    "generate",
    "layer_scan",
    "load_model",
    "mean_difference",
    "measures",
    "oneshot",
    "optimize_one_shot",
    "orthogonalize_weights",
    "project",
    "steer",
    "steering",
    "tradeoff",
    "tradeoff_report",
    "value_entanglement",
    "values",
    "vectors",
    "vllm",
    "when",
]
