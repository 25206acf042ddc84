"""Adaptive micro-batching policy: batch size and wait from the arrival rate and the stage costs.

Pure logic (the clock is passed in), used by the stream agent: `observe_arrivals` as messages come,
`observe_stage` after each inference and insert, `plan(queued, now)` before taking a batch.

The pipeline has two stages working in parallel (inference of batch k+1 while batch k is inserted),
each with a cost of roughly `fixed + per_doc * n` per batch. It keeps up with an arrival rate `r`
when every stage finishes a batch of `n` documents in less than the `n / r` seconds those take to
arrive, i.e. `n >= fixed / (1/r - per_doc)`. The policy aims for that size (with headroom), waits
only as long as filling it should take and never longer than one batch's service time or the
configured bound; with a backlog it takes everything up to `max_batch` at once.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """How many documents the next batch should hold and how long to wait for them."""

    size: int
    wait_s: float


class LinearCost:
    """Least-squares `fixed + per_doc * n` over the last observations of one stage."""

    def __init__(self, window: int = 64) -> None:
        self._samples: deque[tuple[int, float]] = deque(maxlen=window)
        self._fit: tuple[float, float] | None = None

    def observe(self, n: int, seconds: float) -> None:
        if n > 0 and seconds >= 0:
            self._samples.append((n, seconds))
            self._fit = None

    @property
    def known(self) -> bool:
        return bool(self._samples)

    def coefficients(self) -> tuple[float, float]:
        """(fixed seconds per batch, seconds per document), both >= 0."""
        if self._fit is None:
            self._fit = self._least_squares()
        return self._fit

    def _least_squares(self) -> tuple[float, float]:
        if not self._samples:
            return 0.0, 0.0
        count = len(self._samples)
        mean_n = sum(n for n, _ in self._samples) / count
        mean_t = sum(t for _, t in self._samples) / count
        var_n = sum((n - mean_n) ** 2 for n, _ in self._samples)
        if var_n == 0:
            # One batch size only: fixed and per-document parts cannot be told apart; charging it all
            # as fixed cost errs towards larger batches, which is the safe side for throughput.
            return mean_t, 0.0
        slope = sum((n - mean_n) * (t - mean_t) for n, t in self._samples) / var_n
        slope = max(0.0, slope)
        return max(0.0, mean_t - slope * mean_n), slope

    def seconds(self, n: int) -> float:
        fixed, per_doc = self.coefficients()
        return fixed + per_doc * n


class AdaptiveBatchPolicy:
    """Chooses (size, wait) per batch within [min_batch, max_batch] and [0, max_wait_s]."""

    def __init__(
        self,
        min_batch: int,
        max_batch: int,
        max_wait_s: float,
        headroom: float = 1.5,
        rate_half_life_s: float = 1.0,
    ) -> None:
        if not 1 <= min_batch <= max_batch:
            raise ValueError("need 1 <= min_batch <= max_batch")
        self.min_batch = min_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.headroom = headroom
        self._half_life_s = rate_half_life_s
        self.stages: dict[str, LinearCost] = {}
        self._rate = 0.0
        self._pending = 0
        self._since: float | None = None

    def observe_arrivals(self, count: int, now: float) -> None:
        """`count` messages arrived at `now` (monotonic seconds)."""
        if self._since is None:
            self._since = now
        self._pending += count

    def observe_stage(self, stage: str, size: int, seconds: float) -> None:
        """A stage (e.g. infer, insert) took `seconds` for a batch of `size`."""
        self.stages.setdefault(stage, LinearCost()).observe(size, seconds)

    def rate(self, now: float) -> float:
        """Arrival rate (messages/s), exponentially weighted with the configured half-life."""
        if self._since is not None:
            elapsed = now - self._since
            if elapsed >= 0.05:
                weight = 1.0 - 0.5 ** (elapsed / self._half_life_s)
                self._rate += weight * (self._pending / elapsed - self._rate)
                self._pending = 0
                self._since = now
        return self._rate

    def target_size(self, rate: float) -> int:
        """Smallest batch with which every stage keeps up with `rate`, times the headroom, bounded."""
        if rate <= 0:
            return self.min_batch
        needed = 1.0
        for cost in self.stages.values():
            fixed, per_doc = cost.coefficients()
            spare = 1.0 / rate - per_doc  # seconds per document left for the fixed part
            if spare <= 0:
                return self.max_batch
            needed = max(needed, fixed / spare)
        return max(self.min_batch, min(self.max_batch, math.ceil(needed * self.headroom)))

    def plan(self, queued: int, now: float) -> BatchPlan:
        """Size and wait for the next batch, given `queued` messages ready now."""
        rate = self.rate(now)
        size = self.target_size(rate)
        if queued >= size:
            return BatchPlan(min(queued, self.max_batch), 0.0)
        fill_s = (size - queued) / rate if rate > 0 else self.max_wait_s
        # Waiting longer than one batch's own service time costs more latency than it saves.
        service_s = max((cost.seconds(size) for cost in self.stages.values()), default=self.max_wait_s)
        return BatchPlan(size, max(0.0, min(self.max_wait_s, fill_s, service_s)))


class FixedBatchPolicy:
    """The classic rule: `max_batch` documents or `max_wait_s` after the first, whichever comes first."""

    def __init__(self, max_batch: int, max_wait_s: float) -> None:
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s

    def observe_arrivals(self, count: int, now: float) -> None:
        """Not used by this policy."""

    def observe_stage(self, stage: str, size: int, seconds: float) -> None:
        """Not used by this policy."""

    def plan(self, queued: int, now: float) -> BatchPlan:
        return BatchPlan(self.max_batch, 0.0 if queued >= self.max_batch else self.max_wait_s)
