"""The shared argument checks: what they accept, and messages naming argument and value."""

from __future__ import annotations

import numpy as np
import pytest

from steerlens.core.errors import SteerlensError, SteerlensTypeError
from steerlens.core.validate import (
    check_bool,
    check_choice,
    check_int,
    check_keywords,
    check_number,
    check_text,
    check_texts,
)


def test_errors_are_value_and_type_errors():
    assert issubclass(SteerlensError, ValueError)
    assert issubclass(SteerlensTypeError, TypeError) and issubclass(SteerlensTypeError, ValueError)


def test_check_int():
    assert check_int("n", 3, low=1) == 3 and check_int("n", np.int64(4)) == 4
    with pytest.raises(SteerlensTypeError, match=r"n: expected an int, got True \(bool\)"):
        check_int("n", True)
    with pytest.raises(SteerlensTypeError, match="got 2.0"):
        check_int("n", 2.0)
    with pytest.raises(SteerlensError, match=r"n: expected an int in \[1, 5\], got 7"):
        check_int("n", 7, low=1, high=5)


def test_check_number():
    assert check_number("x", 2) == 2.0 and check_number("x", None, none=True) is None
    with pytest.raises(SteerlensTypeError, match="x: expected a number"):
        check_number("x", "0.05")
    with pytest.raises(SteerlensTypeError):
        check_number("x", False)
    with pytest.raises(SteerlensError, match="finite"):
        check_number("x", float("nan"))
    with pytest.raises(SteerlensError, match=r"x: expected a number in \(0, inf\), got 0"):
        check_number("x", 0.0, low=0.0, open_low=True)
    assert check_number("x", 0.0, low=0.0) == 0.0


def test_check_text_and_texts():
    assert check_text("s", "a") == "a" and check_text("s", "", empty=True) == ""
    with pytest.raises(SteerlensError, match="non-empty"):
        check_text("s", "")
    with pytest.raises(SteerlensTypeError, match=r"s: expected a string, got 5 \(int\)"):
        check_text("s", 5)
    assert check_texts("t", ["a", "b"]) == ["a", "b"] and check_texts("t", "a", single=True) == [
        "a"
    ]
    with pytest.raises(SteerlensTypeError, match="single string"):
        check_texts("t", "abc")
    with pytest.raises(SteerlensTypeError, match=r"t\[1\]: expected a string, got None"):
        check_texts("t", ["a", None])
    with pytest.raises(SteerlensError, match="at least one"):
        check_texts("t", [])
    with pytest.raises(SteerlensTypeError):
        check_texts("t", {"a": 1})


def test_check_choice_bool_and_keywords():
    assert check_choice("site", "resid_pre", ["resid_pre", "resid_post"]) == "resid_pre"
    with pytest.raises(SteerlensError, match="Did you mean 'resid_pre'"):
        check_choice("site", "resid_pr", ["resid_pre", "resid_post"])
    with pytest.raises(SteerlensTypeError):
        check_choice("site", 3, ["a"])
    assert check_bool("b", np.bool_(True)) is True
    with pytest.raises(SteerlensTypeError, match="True or False"):
        check_bool("b", 1)
    check_keywords("kwargs", {"top_p": 0.9}, ["top_p", "top_k"])
    with pytest.raises(SteerlensTypeError, match="unknown option 'top_q'.*Did you mean 'top_p'"):
        check_keywords("kwargs", {"top_q": 0.9}, ["top_p", "top_k"])
