"""One retry policy for every client: capped exponential backoff with jitter, permanent vs transient.

    result = call_with_retries(call, policy, is_transient=...)

`call(attempt)` is tried up to `policy.max_attempts` times. An exception that `is_transient`
accepts is retried after `policy.backoff(attempt)` (or after its own `retry_after_s`, capped at
`policy.retry_after_max_s`); any other exception is permanent and propagates at once; the last
transient failure is raised as `RetriesExhausted`. Dependency-free, so every stage may import it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

__all__ = ["RetriesExhausted", "RetryPolicy", "TransientError", "call_with_retries"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a client retries a transient failure."""

    max_attempts: int = 5
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 300.0

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Pause after failed attempt number `attempt` (1-based): capped exponential, jittered 50–100 %."""
        return min(self.backoff_s * 2 ** (attempt - 1), self.backoff_max_s) * (0.5 + 0.5 * rng())


class TransientError(Exception):
    """A failure worth retrying; `retry_after_s` (e.g. from a Retry-After header) replaces the backoff."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RetriesExhausted(Exception):
    """Every attempt failed transiently; `__cause__` is the last failure."""

    def __init__(self, attempts: int, last: BaseException) -> None:
        super().__init__(f"failed {attempts} times: {last}")
        self.attempts = attempts
        self.last = last


def call_with_retries(
    call: Callable[[int], T],
    policy: RetryPolicy,
    *,
    is_transient: Callable[[Exception], bool] = lambda exc: isinstance(exc, TransientError),
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    on_retry: Callable[[int, Exception, float], None] = lambda attempt, exc, pause: None,
) -> T:
    """Return `call(attempt)`'s first success; see the module docstring for the rules."""
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return call(attempt)
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt == policy.max_attempts:
                raise RetriesExhausted(attempt, exc) from exc
            hint = getattr(exc, "retry_after_s", None)
            pause = min(policy.backoff(attempt, rng) if hint is None else hint, policy.retry_after_max_s)
            on_retry(attempt, exc, pause)
            sleep(pause)
    raise ValueError("policy.max_attempts must be at least 1")
