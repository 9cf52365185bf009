"""The one exception steerlens raises for bad input."""


class SteerlensError(ValueError):
    """Bad input to a steerlens function: the message names the argument, the value and
    what was expected."""
