"""The alignment-helpfulness tradeoff of steering (Wolf et al.): coefficient sweeps, the
behaviour and helpfulness curves, the geometric estimates λ, Δ, σ, β, the fitted bounds of
Theorems 1 and 2, and a recommended coefficient."""

from .behaviour import BehaviourSpec as BehaviourSpec
from .behaviour import refusal_behaviour as refusal_behaviour
from .curves import BehaviourCurve as BehaviourCurve
from .curves import HelpfulnessCurve as HelpfulnessCurve
from .curves import behaviour_curve as behaviour_curve
from .curves import helpfulness_curve as helpfulness_curve
from .fit import CurveFit as CurveFit
from .fit import fit_behaviour as fit_behaviour
from .fit import fit_helpfulness as fit_helpfulness
from .geometry import estimate_lambda as estimate_lambda
from .geometry import estimate_margin as estimate_margin
from .geometry import estimate_noise as estimate_noise
from .pipeline import tradeoff_report as tradeoff_report
from .recommend import Recommendation as Recommendation
from .recommend import recommend_coefficient as recommend_coefficient
from .replies import CompletionBehaviour as CompletionBehaviour
from .replies import completion_behaviour as completion_behaviour
from .result import TradeoffReport as TradeoffReport
from .settings import TradeoffSettings as TradeoffSettings
from .sweep_result import SweepResult as SweepResult
from .sweeps import sweep as sweep

__all__ = [
    "BehaviourCurve",
    "BehaviourSpec",
    "CompletionBehaviour",
    "CurveFit",
    "HelpfulnessCurve",
    "Recommendation",
    "SweepResult",
    "TradeoffReport",
    "TradeoffSettings",
    "behaviour_curve",
    "completion_behaviour",
    "estimate_lambda",
    "estimate_margin",
    "estimate_noise",
    "fit_behaviour",
    "fit_helpfulness",
    "helpfulness_curve",
    "recommend_coefficient",
    "refusal_behaviour",
    "sweep",
    "tradeoff_report",
]
