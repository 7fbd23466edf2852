"""Deterministic fake text generation: what a simulated model "says"."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Literal

FinishReason = Literal["length", "eos_token", "stop_sequence"]

# The reply a simulated model gives when nothing limits its length.
_WORDS = ("This", "is", "a", "simulated", "reply", "from", "servingsim", ".")
DEFAULT_REPLY_TOKENS = len(_WORDS)


@dataclass(frozen=True)
class Completion:
    """A finished generation: tokens (with leading spaces, as tokenizers emit them)."""

    tokens: tuple[str, ...]
    token_ids: tuple[int, ...]
    prompt_tokens: int
    finish: FinishReason
    prompt_pieces: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return "".join(self.tokens).lstrip()

    @property
    def completion_tokens(self) -> int:
        return len(self.tokens)


def count_tokens(text: str) -> int:
    """A rough token count (whitespace pieces), at least 1 for non-empty text."""
    pieces = text.split()
    return len(pieces) if pieces else (1 if text else 0)


def token_id(piece: str) -> int:
    """A stable fake vocabulary id for a token text."""
    return zlib.crc32(piece.encode("utf-8")) % 256_000


def generate(prompt: str, prompt_tokens: int, max_new_tokens: int | None) -> Completion:
    """The simulated reply to ``prompt``: at most ``max_new_tokens`` tokens."""
    limit = DEFAULT_REPLY_TOKENS if max_new_tokens is None else max(0, max_new_tokens)
    words = _WORDS[:limit]
    tokens = tuple((" " if i else "") + w if w != "." else w for i, w in enumerate(words))
    finish: FinishReason = "eos_token" if limit >= DEFAULT_REPLY_TOKENS else "length"
    return Completion(
        tokens=tokens,
        token_ids=tuple(token_id(t) for t in tokens),
        prompt_tokens=prompt_tokens,
        finish=finish,
        prompt_pieces=tuple(prompt.split()),
    )
