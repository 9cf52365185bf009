"""Argument validation shared by every public function.

Each check returns the cleaned value or raises ``SteerlensError`` (``SteerlensTypeError``
for a wrong type) with a message that names the argument, shows the value and says what
was expected. Booleans are never accepted where a number is expected.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

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


def check_bool(name: str, value: Any) -> bool:
    """``True`` or ``False`` (numpy bools too), nothing else."""
    if not isinstance(value, (bool, np.bool_)):
        raise SteerlensTypeError(f"{name}: expected True or False, got {shown(value)}")
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
