"""Intervention lists as request payloads, and the prefix-cache salt that keeps them apart.

A request carries its interventions in ``SamplingParams.extra_args["steerlens"]``: the list,
pickled by value with ``cloudpickle`` (so a class defined in a notebook reaches the engine
process) and base64-encoded, because vLLM's OpenAI server accepts only strings there. The
engine decodes each distinct payload once.

vLLM's prefix cache hashes token ids (and a per-request ``cache_salt``), not interventions:
without a salt, a steered request would reuse an unsteered request's KV blocks and the
reverse. Every steered request is salted with a hash of its payload, so only requests with
the same interventions share blocks; when a rule depends on where the prompt ends (anything
but ``"all"`` and non-negative indices), the prompt's tokens join the hash, because the same
prefix is then steered differently under different prompts.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

KEY = "steerlens"  #: the ``extra_args`` key of the payload
TAG = "steerlens_tag"  #: the ``extra_args`` key naming a request whose reads are kept


def encode(entries: Sequence[Any]) -> str:
    """The payload of an intervention list (base64 of its cloudpickle)."""
    import cloudpickle

    return base64.b64encode(cloudpickle.dumps(list(entries))).decode("ascii")


def decode(payload: str) -> list[Any]:
    """The intervention list of a payload (engine side)."""
    import cloudpickle

    return cloudpickle.loads(base64.b64decode(payload))


def prompt_free(entries: Sequence[Any]) -> bool:
    """Whether every entry steers a token the same wherever the prompt ends."""
    for entry in entries:
        rule = entry.positions
        if rule.kind == "indices" and min(rule.indices) >= 0:
            continue
        if rule.kind != "all":
            return False
    return True


def salt(payload: str, entries: Sequence[Any], prompt: Sequence[int] | str) -> str:
    """The ``cache_salt`` of a steered request (``prompt``: its token ids, or its text
    when only the server's raw request is known)."""
    digest = hashlib.sha256(payload.encode("ascii"))
    if not prompt_free(entries):
        digest.update(repr(list(prompt) if not isinstance(prompt, str) else prompt).encode())
    return "steerlens-" + digest.hexdigest()[:32]
