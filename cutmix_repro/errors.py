"""Errors that name the config key they are about, as data.

A component raises ``ConfigError("alpha", 0, "Beta(alpha, alpha) needs alpha > 0")`` with the key
relative to itself; whoever built it from the config group adds the group (``err.within("regularizer")``),
so the user reads one line: ``regularizer.alpha=0 is invalid: Beta(alpha, alpha) needs alpha > 0``.
"""

from __future__ import annotations

from typing import Any

_NO_VALUE = object()


class ConfigError(ValueError):
    """A config value that cannot be used: ``key`` (dotted), the ``value`` given, what is valid."""

    def __init__(self, key: str, value: Any = _NO_VALUE, problem: str = "is invalid"):
        self.key, self.value, self.problem = key, value, problem
        super().__init__(key, value, problem)

    def within(self, group: str) -> ConfigError:
        """The same error with its key inside ``group`` (``alpha`` → ``regularizer.alpha``)."""
        return type(self)(f"{group}.{self.key}", self.value, self.problem)

    def __str__(self) -> str:
        if self.value is _NO_VALUE:
            return f"{self.key}: {self.problem}"
        return f"{self.key}={self.value!r} is invalid: {self.problem}"


class DataError(ConfigError):
    """Data that cannot be used: the message names the config key, the value and the fix."""

    def __str__(self) -> str:
        if self.value is _NO_VALUE:
            return f"{self.key}: {self.problem}"
        return f"{self.key}={self.value!r}: {self.problem}"
