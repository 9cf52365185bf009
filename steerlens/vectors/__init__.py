"""Steering vectors from data: contrastive mean difference and PCA, linear probes, the layer
scan, and plots of projections on a vector."""

from .conditions import ConditionSearch as ConditionSearch
from .conditions import find_condition as find_condition
from .contrastive import contrastive_pca as contrastive_pca
from .contrastive import mean_difference as mean_difference
from .plots import plot_projections as plot_projections
from .plots import plot_token_heatmap as plot_token_heatmap
from .plots import token_projections as token_projections
from .probes import linear_probe as linear_probe
from .scan import LayerScan as LayerScan
from .scan import layer_scan as layer_scan
from .strategies import STRATEGIES as STRATEGIES

__all__ = [
    "STRATEGIES",
    "ConditionSearch",
    "LayerScan",
    "contrastive_pca",
    "find_condition",
    "layer_scan",
    "linear_probe",
    "mean_difference",
    "plot_projections",
    "plot_token_heatmap",
    "token_projections",
]
