"""steerlens: steer and read language models through TransformerLens hook points.

Importing defines names and does nothing else.
"""

from . import datasets as datasets
from ._activations import collect_activations as collect_activations
from ._activations import project as project
from ._behaviour import BehaviourSpec as BehaviourSpec
from ._behaviour import CompletionBehaviour as CompletionBehaviour
from ._behaviour import completion_behaviour as completion_behaviour
from ._behaviour import refusal_behaviour as refusal_behaviour
from ._choices import ChoiceTask as ChoiceTask
from ._choices import qa_task as qa_task
from ._completions import TransferReport as TransferReport
from ._completions import completion_logprob as completion_logprob
from ._completions import transfer_report as transfer_report
from ._conflicts import Conflict as Conflict
from ._conflicts import SteeringConflictWarning as SteeringConflictWarning
from ._conflicts import find_conflicts as find_conflicts
from ._contrastive import contrastive_pca as contrastive_pca
from ._contrastive import mean_difference as mean_difference
from ._errors import SteerlensError as SteerlensError
from ._generate import generate as generate
from ._helpfulness import Helpfulness as Helpfulness
from ._helpfulness import helpfulness as helpfulness
from ._interventions import Intervention as Intervention
from ._interventions import ablate as ablate
from ._interventions import add as add
from ._interventions import clamp as clamp
from ._interventions import steer as steer
from ._model import load_model as load_model
from ._oneshot import optimize_one_shot as optimize_one_shot
from ._oneshot_study import OneShotStudy as OneShotStudy
from ._oneshot_study import one_shot_refusal_study as one_shot_refusal_study
from ._optimizer import OneShotResult as OneShotResult
from ._plots import plot_projections as plot_projections
from ._plots import plot_token_heatmap as plot_token_heatmap
from ._probes import LayerScan as LayerScan
from ._probes import layer_scan as layer_scan
from ._probes import linear_probe as linear_probe
from ._reentrant import reentrant as reentrant
from ._sweep import sweep as sweep
from ._sweep_result import SweepResult as SweepResult
from ._tokens import answer_pairs as answer_pairs
from ._tokens import format_chat as format_chat
from ._tradeoff import tradeoff_report as tradeoff_report
from ._tradeoff_curves import BehaviourCurve as BehaviourCurve
from ._tradeoff_curves import HelpfulnessCurve as HelpfulnessCurve
from ._tradeoff_curves import behaviour_curve as behaviour_curve
from ._tradeoff_curves import helpfulness_curve as helpfulness_curve
from ._tradeoff_fit import CurveFit as CurveFit
from ._tradeoff_fit import fit_behaviour as fit_behaviour
from ._tradeoff_fit import fit_helpfulness as fit_helpfulness
from ._tradeoff_geometry import estimate_lambda as estimate_lambda
from ._tradeoff_geometry import estimate_margin as estimate_margin
from ._tradeoff_geometry import estimate_noise as estimate_noise
from ._tradeoff_recommend import Recommendation as Recommendation
from ._tradeoff_recommend import recommend_coefficient as recommend_coefficient
from ._tradeoff_result import TradeoffReport as TradeoffReport
from ._values import value_entanglement as value_entanglement
from ._values_ratings import RatingPrompt as RatingPrompt
from ._values_ratings import value_ratings as value_ratings
from ._values_report import ValueEntanglement as ValueEntanglement
from ._values_stats import value_leakage as value_leakage
from ._vectors import SteeringVector as SteeringVector

__version__ = "0.1.0"
