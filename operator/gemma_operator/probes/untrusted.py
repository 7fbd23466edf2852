"""Text a pod wrote, made safe for status messages and logs: bounded, one line, nothing that steers a terminal."""

from __future__ import annotations

from typing import Final

MAX_EXCERPT_CHARS: Final = 200


def _escaped(char: str) -> str:
    return char.encode("unicode_escape").decode("ascii")


def excerpt(text: str, limit: int = MAX_EXCERPT_CHARS) -> str:
    """At most `limit` characters of `text`, then "..." if it went on, e.g. excerpt("a\\nb") == "a\\\\nb".

    Unprintable characters (line breaks, ANSI escapes, bidi overrides, lone surrogates) are
    written as their Python escapes, so a pod can neither forge log lines nor break the JSON
    the API server takes; emoji and other printable characters stay as they are.
    """
    head = "".join(char if char.isprintable() else _escaped(char) for char in text[:limit])
    return head if len(text) <= limit else head + "..."
