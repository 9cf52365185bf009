"""Argument validation shared by every public function.

Each check returns the cleaned value or raises ``SteerlensError`` (``SteerlensTypeError``
for a wrong type) with a message that names the argument, shows the value and says what
was expected. Booleans are never accepted where a number is expected.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from .errors import SteerlensError, SteerlensTypeError


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, with its type."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{text} ({type(value).__name__})"


def is_int(value: Any) -> bool:
    """An int (Python or numpy), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
    """A real number (Python or numpy), not a bool."""
    return is_int(value) or isinstance(value, (float, np.floating))


def check_int(name: str, value: Any, *, low: Any = None, high: Any = None) -> int:
    """An int in ``[low, high]`` (either bound optional)."""
    if not is_int(value):
        raise SteerlensTypeError(f"{name}: expected an int, got {shown(value)}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise SteerlensError(f"{name}: expected an int in {_range(low, high)}, got {value}")
    return value


def check_number(
    name: str,
    value: Any,
    *,
    low: Any = None,
    high: Any = None,
    open_low: bool = False,
    none: bool = False,
) -> float | None:
    """A finite real number ``>= low`` (``> low`` with ``open_low``) and ``<= high``;
    ``None`` passes through when ``none`` is set."""
    if value is None and none:
        return None
    if not is_number(value):
        allowed = "a number" + (" or None" if none else "")
        raise SteerlensTypeError(f"{name}: expected {allowed}, got {shown(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise SteerlensError(f"{name}: expected a finite number, got {value}")
    below = low is not None and (value <= low if open_low else value < low)
    if below or (high is not None and value > high):
        bounds = _range(low, high, open_low)
        raise SteerlensError(f"{name}: expected a number in {bounds}, got {value:g}")
    return value


def _range(low: Any, high: Any, open_low: bool = False) -> str:
    left = "(-inf" if low is None else ("(" if open_low else "[") + f"{low:g}"
    right = "inf)" if high is None else f"{high:g}]"
    return f"{left}, {right}"


def check_bool(name: str, value: Any, *, none: bool = False) -> bool | None:
    """``True`` or ``False`` (numpy bools too), nothing else; ``None`` too with ``none``."""
    if value is None and none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        allowed = "True, False or None" if none else "True or False"
        raise SteerlensTypeError(f"{name}: expected {allowed}, got {shown(value)}")
    return bool(value)


def check_text(name: str, value: Any, *, empty: bool = False) -> str:
    """A string (non-empty unless ``empty``)."""
    if not isinstance(value, str):
        raise SteerlensTypeError(f"{name}: expected a string, got {shown(value)}")
    if not empty and not value:
        raise SteerlensError(f"{name}: expected a non-empty string, got ''")
    return value


def check_texts(name: str, value: Any, *, single: bool = False) -> list[str]:
    """A non-empty list of strings. A bare string is refused (never split into characters)
    unless ``single``, which wraps it in a list."""
    if isinstance(value, str):
        if single:
            return [value]
        raise SteerlensTypeError(
            f"{name}: expected a list of strings, got a single string {shown(value)}"
        )
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise SteerlensTypeError(f"{name}: expected a list of strings, got {shown(value)}")
    texts = list(value)
    if not texts:
        raise SteerlensError(f"{name}: expected at least one text, got an empty list")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise SteerlensTypeError(f"{name}[{index}]: expected a string, got {shown(text)}")
    return texts


def check_choice(name: str, value: Any, options: Sequence[str]) -> str:
    """One of ``options``; the message suggests the closest one."""
    if not isinstance(value, str) or value not in options:
        hint = difflib.get_close_matches(str(value), list(options), n=1)
        did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
        error = SteerlensError if isinstance(value, str) else SteerlensTypeError
        raise error(f"{name}: expected one of {list(options)}, got {shown(value)}.{did_you_mean}")
    return value


def check_callable(name: str, value: Any) -> Callable:
    if not callable(value):
        raise SteerlensTypeError(f"{name}: expected a callable, got {shown(value)}")
    return value


def check_instance(name: str, value: Any, kind: type | tuple[type, ...], expected: str) -> Any:
    """``value`` if it is an instance of ``kind``; ``expected`` says what in words."""
    if not isinstance(value, kind):
        raise SteerlensTypeError(f"{name}: expected {expected}, got {shown(value)}")
    return value


def check_keywords(name: str, given: Mapping[str, Any], valid: Iterable[str]) -> None:
    """Refuse keyword arguments outside ``valid`` (a misspelt option is never ignored)."""
    valid = list(valid)
    for key in given:
        if key not in valid:
            hint = difflib.get_close_matches(key, valid, n=1)
            did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
            raise SteerlensTypeError(
                f"{name}: unknown option {key!r}; valid: {sorted(valid)}.{did_you_mean}"
            )


def check_path(name: str, value: Any) -> str:
    """A file path (``str`` or ``os.PathLike``), as a string."""
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise SteerlensTypeError(f"{name}: expected a file path (str or Path), got {shown(value)}")
    path = os.fspath(value)
    if not path:
        raise SteerlensError(f"{name}: expected a file path, got ''")
    return path


def check_model(model: Any, name: str = "model") -> Any:
    """``model`` if it has the TransformerLens hook API steerlens relies on (``hook_dict``,
    ``cfg.n_layers``, ``cfg.d_model``, ``embed``; an ``nn.Module``)."""
    if isinstance(model, str):
        raise SteerlensTypeError(
            f"{name}: expected a TransformerLens model, got the string {model!r}; load it "
            "first with steerlens.load_model(...)"
        )
    missing = [attr for attr in ("hook_dict", "cfg", "embed") if not hasattr(model, attr)]
    cfg = getattr(model, "cfg", None)
    missing += [a for a in ("n_layers", "d_model") if cfg is not None and not hasattr(cfg, a)]
    if missing or not isinstance(model, nn.Module):
        raise SteerlensTypeError(
            f"{name}: expected a TransformerLens model (TransformerBridge or HookedTransformer) "
            f"with hook points; got {type(model).__name__} lacking {missing or ['nn.Module']}. "
            "Load one with steerlens.load_model()."
        )
    return model


def check_tensor(name: str, value: Any, ndim: int, *, floats: bool = True) -> Any:
    """A torch tensor with ``ndim`` dimensions (finite floats unless ``floats=False``)."""
    if not isinstance(value, torch.Tensor):
        raise SteerlensTypeError(f"{name}: expected a {ndim}-D torch tensor, got {shown(value)}")
    if value.ndim != ndim:
        raise SteerlensError(f"{name}: expected a {ndim}-D tensor, got shape {tuple(value.shape)}")
    if floats and not value.is_floating_point():
        raise SteerlensTypeError(f"{name}: expected a float tensor, got {value.dtype}")
    if floats and not bool(torch.isfinite(value).all()):
        raise SteerlensError(f"{name}: contains NaN or inf")
    return value


def check_sequence(name: str, value: Any) -> list:
    """A list or tuple (not a string, not a mapping), as a list."""
    if not isinstance(value, (list, tuple)):
        raise SteerlensTypeError(f"{name}: expected a list, got {shown(value)}")
    return list(value)


def check_frame(name: str, value: Any, columns: Sequence[str]) -> Any:
    """A pandas DataFrame holding ``columns`` and at least one row."""
    check_instance(name, value, pd.DataFrame, "a pandas DataFrame")
    missing = [column for column in columns if column not in value.columns]
    if missing:
        raise SteerlensError(
            f"{name}: missing column(s) {missing}; expected {list(columns)}, got "
            f"{list(value.columns)}"
        )
    if value.empty:
        raise SteerlensError(f"{name}: expected at least one row, got an empty frame")
    return value


def check_array(name: str, value: Any) -> np.ndarray:
    """Numbers (a tensor, a numpy array or a list; not bools or strings) as float64 numpy."""
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bool or value.is_complex():
            raise SteerlensTypeError(f"{name}: expected real numbers, got a {value.dtype} tensor")
        return value.detach().double().cpu().numpy()
    if value is None or isinstance(value, (str, bytes, Mapping)):
        raise SteerlensTypeError(f"{name}: expected numbers (a tensor or list), got {shown(value)}")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise SteerlensTypeError(f"{name}: expected numbers, got {shown(value)}") from error
    if array.dtype.kind not in "iuf":
        raise SteerlensTypeError(f"{name}: expected real numbers, got {shown(value)}")
    return array.astype(np.float64)


def check_direction(layer: Any, vector: Any) -> Tensor:
    """One layer's direction as a finite float32 CPU copy (the key checked too)."""
    if not is_int(layer) or layer < 0:
        raise SteerlensError(f"directions: layer keys must be ints >= 0, got {shown(layer)}")
    if not isinstance(vector, Tensor) or vector.ndim != 1 or vector.numel() == 0:
        shape = tuple(vector.shape) if isinstance(vector, Tensor) else type(vector).__name__
        raise SteerlensError(f"directions[{layer}]: expected a 1-D tensor [d_model], got {shape}")
    if not vector.is_floating_point():
        raise SteerlensError(f"directions[{layer}]: expected floats, got {vector.dtype}")
    cleaned = vector.detach().to("cpu", torch.float32).clone()
    if not bool(torch.isfinite(cleaned).all()):
        raise SteerlensError(
            f"directions[{layer}]: contains NaN or inf (in float32, the dtype vectors are kept in)"
        )
    return cleaned


def check_string_keys(name: str, value: Any) -> None:
    """Dict keys are strings at every depth (JSON would turn others into strings)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SteerlensTypeError(f"{name}: keys must be strings (JSON), got {shown(key)}")
            check_string_keys(f"{name}[{key!r}]", item)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_string_keys(f"{name}[{index}]", item)
