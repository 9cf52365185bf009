"""Value entanglement (Cho, Li & Leshinskaya): does moral value leak into grammatical and
economic judgements, and does ablating the morality direction repair it?"""

from .pipeline import value_entanglement as value_entanglement
from .ratings import RatingPrompt as RatingPrompt
from .ratings import value_ratings as value_ratings
from .result import ValueEntanglement as ValueEntanglement
from .settings import ValuesSettings as ValuesSettings
from .stats import value_leakage as value_leakage
from .stimuli import load_stimuli as load_stimuli

__all__ = [
    "RatingPrompt",
    "ValueEntanglement",
    "ValuesSettings",
    "load_stimuli",
    "value_entanglement",
    "value_leakage",
    "value_ratings",
]
