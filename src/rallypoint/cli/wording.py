"""Option errors in Rallypoint's words.

Typer checks option values through pydantic, whose messages reach the user verbatim: ``Invalid
value for '--format': Value error, 'pdf' is not one of 'table', 'csv'.`` or ``Input should be a
valid integer, unable to parse string as an integer``. ``RallypointGroup`` (the class of our
command groups) rewrites them as ``Invalid value for '--format': must be one of: table, csv (got
'pdf')`` and ``Invalid value for '--limit': must be a whole number``. The exit status stays 2.
"""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.core import TyperGroup

_NOT_ONE_OF = re.compile(r"^(?:Value error, )?(?P<value>'.*?'|\".*?\") is not one of (?P<choices>.+?)\.?$")
_QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")
_PHRASES = (
    (re.compile(r"^Input should be a valid integer.*$"), "must be a whole number"),
    (re.compile(r"^Input should be a valid number.*$"), "must be a number"),
    (re.compile(r"^Input should be a valid boolean.*$"), "must be true or false"),
    (re.compile(r"^Input should be greater than or equal to (\S+)$"), r"must be at least \1"),
    (re.compile(r"^Input should be less than or equal to (\S+)$"), r"must be at most \1"),
    (re.compile(r"^Input should be greater than (\S+)$"), r"must be greater than \1"),
    (re.compile(r"^Input should be less than (\S+)$"), r"must be less than \1"),
    (re.compile(r"^(\S+) is not in the range (\S+)<=x<=(\S+)\.?$"), r"must be within \2..\3 (got \1)"),
)


def plain_words(message: str) -> str:
    """A library's option-check message as a predicate: ``must be one of: a, b (got 'x')``."""
    text = message.strip()
    if m := _NOT_ONE_OF.match(text):
        choices = [a or b for a, b in _QUOTED.findall(m["choices"])]
        return f"must be one of: {', '.join(choices)} (got {m['value']})"
    for pattern, replacement in _PHRASES:
        if pattern.match(text):
            return pattern.sub(replacement, text)
    return text.removeprefix("Value error, ")


class RallypointGroup(TyperGroup):
    """A command group whose option errors say what is allowed instead of the library's wording."""

    def invoke(self, ctx: Any) -> Any:
        """Run the subcommand; a rejected option value is reported in our words."""
        try:
            return super().invoke(ctx)
        except typer.BadParameter as exc:
            if exc.param is not None:  # raised by an option check, not by our own code
                exc.message = plain_words(exc.message)
            raise
