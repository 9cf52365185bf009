"""Steering inside vLLM: the same intervention objects, per request, at serving speed.

``load`` starts a vLLM engine whose workers carry steerlens's hooks; ``generate`` steers each
prompt by its own list in one continuous batch; ``collect_activations`` and ``project`` read
the residual stream as the TransformerLens versions do; ``steerlens serve`` is vLLM's
OpenAI-compatible server with named vectors. Importing this package does not import vLLM.
"""

from .activations import collect_activations as collect_activations
from .activations import project as project
from .engine import load as load
from .generation import generate as generate

__all__ = ["collect_activations", "generate", "load", "project"]
