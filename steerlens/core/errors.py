"""The errors steerlens raises for bad input."""


class SteerlensError(ValueError):
    """Bad input to a steerlens function: the message names the argument, the value and
    what was expected. A ``ValueError``, so ``except ValueError`` catches it."""


class SteerlensTypeError(SteerlensError, TypeError):
    """An argument of the wrong type; also a ``TypeError``."""
