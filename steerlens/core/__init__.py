"""The core every other layer builds on: models, hook points, tokens, positions, vectors.

Errors and argument validation, the ``HookedModel`` protocol and shape aliases, model
loading, hook names, tokens and the chat template, position rules and their tracker, the
batching helper, padded forward passes, suffix replay, ``SteeringVector`` and its files,
the ``Study`` contract of the research lines' results, and the shipped datasets. Nothing
here steers a model.
"""

from . import datasets as datasets
from .chat import answer_pairs as answer_pairs
from .chat import format_chat as format_chat
from .errors import SteerlensError as SteerlensError
from .errors import SteerlensTypeError as SteerlensTypeError
from .loading import load_model as load_model
from .model_cache import gemma_gguf_path as gemma_gguf_path
from .roles import token_roles as token_roles
from .study import Study as Study
from .types import HookedModel as HookedModel
from .vector import SteeringVector as SteeringVector

__all__ = [
    "HookedModel",
    "SteeringVector",
    "SteerlensError",
    "SteerlensTypeError",
    "Study",
    "answer_pairs",
    "datasets",
    "format_chat",
    "gemma_gguf_path",
    "load_model",
    "token_roles",
]
