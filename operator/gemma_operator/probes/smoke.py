"""The post-rollout smoke check: one short chat completion through the text-generation client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from text_generation import AsyncClient
from text_generation.types import ChatRequest, Message

from gemma_operator.probes import bounded
from gemma_operator.probes.untrusted import excerpt

CHAT_PATH: Final = "/v1/chat/completions"
PROMPT: Final = "Reply with one word: are you ready?"
MAX_TOKENS: Final = 8
SMOKE_TIMEOUT_SECONDS: Final = 30.0
# A chat completion of MAX_TOKENS tokens is well under 2 KiB; an error page has no need of more either.
MAX_ANSWER_BYTES: Final = 64 << 10
SMOKE_ATTEMPTS: Final = 4
BACKOFF_SECONDS: Final = 2.0
# Statuses worth another try: the runtime is busy, warming up or briefly unreachable behind a proxy.
TRANSIENT_STATUSES: Final = frozenset({408, 429})


class _Reply(BaseModel):
    model_config = ConfigDict(frozen=True)


class _Message(_Reply):
    content: str | None = None


class _Choice(_Reply):
    message: _Message
    finish_reason: str | None = None


class ChatReply(_Reply):
    """What the check needs of an OpenAI-compatible chat completion, whichever runtime wrote it."""

    model: str = ""
    choices: list[_Choice] = Field(min_length=1)


class RuntimeAnsweredError(Exception):
    """The runtime answered with an HTTP error."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


class AnswerTooLargeError(Exception):
    """The runtime's answer went on past MAX_ANSWER_BYTES; the rest was not read."""


def _error_detail(body: str) -> str:
    """The message of an error body: TGI's {"error": "..."}, vLLM's and llama.cpp's {"error": {"message": ...}}."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return excerpt(str(error) if error else body.strip() or "(empty body)")


class OpenAICompatibleClient(AsyncClient):  # type: ignore[misc]  # text_generation ships no type hints
    """text-generation's AsyncClient, made to check vLLM and llama.cpp as well as TGI.

    Its chat() builds and validates the request; this replaces the one step that assumes TGI.
    Upstream (0.7.0) that step names the model "tgi", which vLLM answers with 404 since it only
    takes the names it serves, and validates the answer against TGI's own schema, which rejects
    vLLM's null system_fingerprint and llama.cpp's choices without logprobs. Here the model is
    left out (each runtime serves one model and takes a request without one as meant for it) unless
    `model` names a LoRA adapter, which vLLM serves under that name; and the answer is read as any
    OpenAI-compatible chat completion.
    """

    def __init__(self, base_url: str, *, timeout: float, model: str | None = None) -> None:
        super().__init__(base_url, timeout=timeout)
        self.model = model

    async def _chat_single_response(self, request: ChatRequest) -> ChatReply:
        body = request.model_dump(exclude_none=True, exclude={"model"})
        if self.model is not None:
            body["model"] = self.model
        async with aiohttp.ClientSession(headers=self.headers, cookies=self.cookies) as session:
            answer = await bounded.request(
                session,
                "POST",
                f"{self.base_url}{CHAT_PATH}",
                json=body,
                max_body_bytes=MAX_ANSWER_BYTES,
                timeout_seconds=self.timeout.total,
            )
        if answer.redirect:
            raise RuntimeAnsweredError(answer.status, bounded.REDIRECT_REFUSED)
        if answer.status != 200:
            raise RuntimeAnsweredError(answer.status, _error_detail(answer.body.decode("utf-8", errors="replace")))
        if answer.cut:
            raise AnswerTooLargeError(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
        return ChatReply.model_validate_json(answer.body)


@dataclass(frozen=True)
class SmokeResult:
    """The outcome of a smoke check, for condition Verified."""

    ok: bool
    message: str
    latency_seconds: float
    attempts: int


_FAILURES = (RuntimeAnsweredError, AnswerTooLargeError, aiohttp.ClientError, TimeoutError, ValidationError)


def _transient(error: Exception) -> bool:
    if isinstance(error, RuntimeAnsweredError):
        return error.status >= 500 or error.status in TRANSIENT_STATUSES
    # A 200 that is not a chat completion will not improve; a dropped connection or a timeout may.
    return not isinstance(error, ValidationError | AnswerTooLargeError)


def _describe(error: Exception, timeout_seconds: float) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout_seconds:g}s"
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        return f"the answer is not a chat completion ({'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']})"
    return excerpt(str(error) or type(error).__name__)


def _summary(reply: ChatReply, latency: float) -> str:
    choice = reply.choices[0]
    content = (choice.message.content or "").strip()
    said = f": '{excerpt(content, 40)}'" if content else " (no content)"
    return f"{excerpt(reply.model) or 'the model'} answered in {latency:.2f}s{said}"


async def smoke_check(
    base_url: str,
    adapters: Sequence[str] = (),
    *,
    timeout_seconds: float = SMOKE_TIMEOUT_SECONDS,
    attempts: int = SMOKE_ATTEMPTS,
    backoff_seconds: float = BACKOFF_SECONDS,
) -> SmokeResult:
    """Send one short chat completion to a pod or Service, e.g. smoke_check("http://10.1.2.3:8000"), and one
    more naming each of `adapters` as its model.

    Each attempt is bounded by timeout_seconds; transient failures (connection errors, timeouts,
    5xx, 408, 429) are retried after backoff_seconds, doubling, up to `attempts` in all. Never
    raises for what the runtime does: the result says ok or carries the error (the first that
    failed); latency and attempts add up over the requests.
    """
    results: list[SmokeResult] = []
    for model in (None, *adapters):
        client = OpenAICompatibleClient(base_url.rstrip("/"), timeout=timeout_seconds, model=model)
        result = await _ask(client, timeout_seconds, attempts, backoff_seconds)
        if not result.ok and model is not None:
            result = replace(result, message=f"adapter {excerpt(model)}: {result.message}")
        results.append(result)
        if not result.ok:
            break
    last = results[-1]
    if last.ok and adapters:
        message = f"{results[0].message}; adapters {', '.join(excerpt(name) for name in adapters)} answered"
    else:
        message = last.message
    latency = sum(result.latency_seconds for result in results)
    return SmokeResult(last.ok, message, latency, sum(result.attempts for result in results))


async def _ask(
    client: OpenAICompatibleClient, timeout_seconds: float, attempts: int, backoff_seconds: float
) -> SmokeResult:
    """One chat completion to the client's model, retried while the failure is transient."""
    question = [Message(role="user", content=PROMPT)]
    for attempt in range(1, attempts + 1):
        started = time.monotonic()
        try:
            reply = await client.chat(messages=question, max_tokens=MAX_TOKENS)
        except _FAILURES as error:
            latency = time.monotonic() - started
            if attempt == attempts or not _transient(error):
                why = _describe(error, timeout_seconds)
                message = f"POST {CHAT_PATH} failed (attempt {attempt} of {attempts}): {why}"
                return SmokeResult(ok=False, message=message, latency_seconds=latency, attempts=attempt)
            await asyncio.sleep(backoff_seconds * 2 ** (attempt - 1))
        else:
            latency = time.monotonic() - started
            return SmokeResult(ok=True, message=_summary(reply, latency), latency_seconds=latency, attempts=attempt)
    raise ValueError(f"attempts must be at least 1, not {attempts}")
