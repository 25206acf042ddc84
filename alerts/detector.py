"""Spike detection: a pure, deterministic function of the bucket series, the rules and a state.

    result = detect(series, rules, state, watermark)

- `series`: per-key buckets (`BucketStats`, any order, any keys; `alerts.buckets` reads them).
- `state`: what earlier calls learnt (`DetectorState`, JSON-serialisable; `None` = start fresh).
- `watermark`: event time up to which data is complete (the caller subtracts its grace period);
  a bucket is judged once its end is at or before the watermark, and never again.

Buckets that start before `state.cutoff` were judged already and are ignored (late data). Because
every key is advanced bucket by bucket on a fixed grid, calling `detect` poll by poll (live worker)
or once over the whole history (backtest) gives the same events and the same final state.

Method (see alerts/README.md): per rule and key, a volume-weighted EWMA of the negative share is
the baseline p0; the variance of a share over n stories is the binomial p0(1-p0)/n (p0 floored)
times an EWMA over-dispersion factor floored at 1. A bucket is hot when volume, negative count,
z-score and absolute lift, pooled over the last `window_buckets`, all pass; an episode opens after
`enter_buckets` hot buckets, stays open while z >= z_exit, closes after `exit_buckets` colder
buckets (resolved event), then the key rests `cooldown_buckets`. A bucket teaches the baseline only
after it has left the pooled window, at a tenth of the normal rate while the window is elevated
(z >= z_exit), and all updates are winsorised at clip_z, so a spike barely raises its own baseline
while a lasting shift is still absorbed.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

import orjson

from alerts.rules import Rule, RuleSet

State = Literal["firing", "resolved"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BucketStats:
    """Aggregates for one key over one event-time bucket."""

    key_kind: str
    key: str
    start: datetime
    volume: int
    negative: int
    documents: int
    mean_score: float
    # Negative stories called with confidence >= 0.6; None where the source has no confidence
    # (rules with `negatives: confident` then count every negative story).
    confident_negative: int | None = None

    @property
    def negative_share(self) -> float:
        return self.negative / self.volume if self.volume else 0.0

    def negatives_for(self, rule: Rule) -> int:
        """The negative count `rule` judges: every negative story, or only the confident ones."""
        if rule.negatives == "confident" and self.confident_negative is not None:
            return self.confident_negative
        return self.negative


# Bump when the meaning or layout of DetectorState changes: saved states of other versions are ignored.
# 3: keys are JSON arrays [rule, key_kind, key] (2 joined them with a separator that data may hold).
STATE_VERSION = 3
# Learning rate of elevated buckets (z >= z_exit) relative to normal ones.
ELEVATED_RATE = 0.1


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One alert event: an episode opened (`firing`) or ended (`resolved`).

    Metrics cover the episode so far: summed volume and negative count over its hot buckets, their
    share, the baseline share when it opened, and the peak z-score. `decided_at` is the event time
    (end of the bucket) at which the detector decided, for lead-time measurements.
    """

    alert_id: str
    rule: str
    key_kind: str
    key: str
    state: State
    severity: str
    window_start: datetime
    window_end: datetime
    decided_at: datetime
    volume: int
    negative: int
    negative_share: float
    baseline: float
    z_score: float

    @property
    def idempotency_key(self) -> str:
        """What receivers dedupe on: one delivery per alert and state."""
        return f"{self.alert_id}:{self.state}"


def alert_id(rule: str, key_kind: str, key: str, episode_start: datetime) -> str:
    """Stable id of an episode: hash of rule, key and the episode's first bucket.

    Unambiguous whatever the key holds: rule and key kind come from the rules, the last field is an
    integer, so only one split of the joined text is possible."""
    basis = f"{rule}\x1f{key_kind}\x1f{key}\x1f{_epoch(episode_start)}"
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


@dataclass(slots=True)
class KeyState:
    """Baseline and episode state of one (rule, key); times are epoch seconds of bucket starts."""

    next_bucket: int
    last_data: int
    seen: int = 0
    neg_ewma: float = 0.0
    vol_ewma: float = 0.0
    dispersion: float = 1.0
    active: bool = False
    hot_run: int = 0
    cold_run: int = 0
    cooldown_left: int = 0
    start: int = 0
    last_hot_end: int = 0
    volume: int = 0
    negative: int = 0
    baseline: float = 0.0
    peak_z: float = 0.0
    recent: list[list[int]] = field(default_factory=list)

    @property
    def settled(self) -> bool:
        """Nothing pending: empty buckets would leave this state unchanged."""
        return not (self.active or self.hot_run or self.cooldown_left or any(v for v, _ in self.recent))


@dataclass(slots=True)
class DetectorState:
    """Everything `detect` carries between calls; `to_json`/`from_json` round-trip it exactly.

    `keys` are named by `state_key` (an injective encoding of rule, key kind and key)."""

    rules_fingerprint: str = ""
    cutoff: int | None = None
    keys: dict[str, KeyState] = field(default_factory=dict)

    def to_json(self) -> dict:
        """A JSON-ready dict (floats survive a JSON round trip exactly)."""
        return {
            "rules_fingerprint": self.rules_fingerprint,
            "cutoff": self.cutoff,
            "keys": {name: asdict(ks) for name, ks in sorted(self.keys.items())},
        }

    @classmethod
    def from_json(cls, data: dict) -> DetectorState:
        """Inverse of `to_json`."""
        keys = {name: KeyState(**values) for name, values in data["keys"].items()}
        return cls(data["rules_fingerprint"], data["cutoff"], keys)


@dataclass(frozen=True, slots=True)
class BucketView:
    """What the detector saw at one judged bucket of one (rule, key), for pictures.

    `volume` and `negative` are pooled over the rule's window ending with this bucket; `baseline` is
    the share it was compared with and `threshold` the pooled share at which the bucket would have
    been hot (z_enter, min_lift and min_negative all passed). Both are None where the bucket could
    not be judged (warm-up, an empty bucket, or fewer than min_volume pooled stories).
    """

    start: datetime
    volume: int
    negative: int
    baseline: float | None
    threshold: float | None


@dataclass(frozen=True, slots=True)
class DetectionResult:
    """What one `detect` call decided, and the state to pass to the next call.

    `views` holds every judged bucket per (rule, key_kind, key) when `detect(..., trace=True)`.
    """

    events: list[AlertEvent]
    state: DetectorState
    failed: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (rule, kind, key) -> error
    views: dict[tuple[str, str, str], list[BucketView]] = field(default_factory=dict)


def state_key(rule: str, key_kind: str, key: str) -> str:
    """The name of a (rule, key) in `DetectorState.keys`: a JSON array, so it decodes back exactly."""
    return orjson.dumps([rule, key_kind, key]).decode()


def parse_state_key(name: str) -> tuple[str, str, str]:
    """Inverse of `state_key`."""
    rule, key_kind, key = orjson.loads(name)
    return rule, key_kind, key


def _ts(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _epoch(value: datetime) -> int:
    """Epoch seconds; a naive datetime is taken to be UTC (as ClickHouse DateTime('UTC') values are)."""
    return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())


def _binomial_variance(rule: Rule, p0: float, volume: int) -> float:
    """Variance of a share of `volume` stories under the baseline (p0 floored away from 0 and 1)."""
    p = min(max(p0, rule.baseline_floor), 1.0 - rule.baseline_floor)
    return p * (1.0 - p) / volume


def _variance(ks: KeyState, rule: Rule, p0: float, volume: int) -> float:
    """Binomial variance scaled by the learnt over-dispersion, never below the binomial itself."""
    return max(ks.dispersion, 1.0) * _binomial_variance(rule, p0, volume)


class _KeyRun:
    """Advances one (rule, key) through its buckets, collecting events."""

    def __init__(
        self, rule: Rule, key_kind: str, key: str, bucket_s: int, forget_after: int, trace: bool = False
    ) -> None:
        self.rule, self.key_kind, self.key = rule, key_kind, key
        self.bucket_s, self.forget_after = bucket_s, forget_after
        self.events: list[AlertEvent] = []
        self.views: list[BucketView] | None = [] if trace else None

    def advance(
        self, ks: KeyState | None, buckets: list[tuple[int, int, int]], cutoff: int
    ) -> KeyState | None:
        """Judge `buckets` (start, volume, negative; sorted, all < cutoff) and empty ones up to `cutoff`."""
        for start, volume, negative in buckets:
            if ks is not None:
                self._empty_until(ks, start)
                if ks.settled and start - ks.last_data >= self.forget_after * self.bucket_s:
                    ks = None
            if ks is None:
                ks = self._fresh(start)
            self._judge(ks, start, volume, negative)
        if ks is not None:
            self._empty_until(ks, cutoff)
        return ks

    def _fresh(self, start: int) -> KeyState:
        prior = self.rule.prior_share
        if prior is None:
            return KeyState(next_bucket=start, last_data=start)
        # judged from its first bucket against the prior, which weighs like `warmup_buckets` stories
        return KeyState(
            next_bucket=start, last_data=start, seen=self.rule.warmup_buckets, neg_ewma=prior, vol_ewma=1.0
        )

    def _empty_until(self, ks: KeyState, until: int) -> None:
        while ks.next_bucket < until and not ks.settled:
            self._judge(ks, ks.next_bucket, 0, 0)
        ks.next_bucket = max(ks.next_bucket, until)

    def _judge(self, ks: KeyState, start: int, volume: int, negative: int) -> None:
        rule = self.rule
        end = start + self.bucket_s
        z = lift = p0 = None
        pooled_volume = volume + sum(v for v, _ in ks.recent)
        pooled_negative = negative + sum(k for _, k in ks.recent)
        if volume and ks.seen >= rule.warmup_buckets:
            p0 = ks.neg_ewma / ks.vol_ewma
            lift = pooled_negative / pooled_volume - p0
            # continuity correction: half a story, so tiny buckets do not look significant
            z = (lift - 0.5 / pooled_volume) / math.sqrt(_variance(ks, rule, p0, pooled_volume))
        if self.views is not None:
            self.views.append(self._view(ks, start, pooled_volume, pooled_negative, p0))
        hot = (
            z is not None
            and pooled_volume >= rule.min_volume
            and pooled_negative >= rule.min_negative
            and z >= rule.z_enter
            and lift >= rule.min_lift
        )
        if ks.active:
            if z is not None and z >= rule.z_exit:
                ks.cold_run = 0
                self._accumulate(ks, end, volume, negative, z)
            else:
                ks.cold_run += 1
                if ks.cold_run >= rule.exit_buckets:
                    self._emit(ks, "resolved", end)
                    ks.active, ks.cold_run, ks.cooldown_left = False, 0, rule.cooldown_buckets
        elif ks.cooldown_left:
            ks.cooldown_left -= 1
        elif hot:
            if ks.hot_run == 0:
                # the episode starts with the pooled window that made this bucket hot
                lead = next((i for i, (v, _) in enumerate(ks.recent) if v), len(ks.recent))
                ks.start = start - (len(ks.recent) - lead) * self.bucket_s
                ks.volume, ks.negative = pooled_volume - volume, pooled_negative - negative
                ks.peak_z, ks.baseline = 0.0, ks.neg_ewma / ks.vol_ewma
            ks.hot_run += 1
            self._accumulate(ks, end, volume, negative, z)
            if ks.hot_run >= rule.enter_buckets:
                ks.active, ks.hot_run, ks.cold_run = True, 0, 0
                self._emit(ks, "firing", end)
        else:
            ks.hot_run = 0
        if volume:
            ks.last_data = start
        # The baseline learns a bucket only once it has left the pooled window, so the window being
        # judged (a burst's ramp-up included) never feeds its own baseline. A bucket that leaves
        # while the window is elevated (or an episode is open) teaches at a tenth of the rate: a
        # spike barely moves the baseline, a lasting shift still does.
        window = [*ks.recent, [volume, negative]]
        if len(window) >= rule.window_buckets:
            left_volume, left_negative = window.pop(0)
            if left_volume:
                elevated = ks.active or (z is not None and z >= rule.z_exit)
                self._learn(ks, left_volume, left_negative, ELEVATED_RATE if elevated else 1.0)
        ks.recent = window
        ks.next_bucket = end

    def _view(self, ks: KeyState, start: int, volume: int, negative: int, p0: float | None) -> BucketView:
        """The bucket as judged, with the lowest pooled share that would have made it hot."""
        rule, threshold = self.rule, None
        if p0 is not None and volume >= rule.min_volume:
            z_share = p0 + 0.5 / volume + rule.z_enter * math.sqrt(_variance(ks, rule, p0, volume))
            threshold = max(z_share, p0 + rule.min_lift, rule.min_negative / volume)
        return BucketView(_ts(start), volume, negative, p0, threshold)

    @staticmethod
    def _accumulate(ks: KeyState, end: int, volume: int, negative: int, z: float) -> None:
        ks.volume += volume
        ks.negative += negative
        ks.peak_z = max(ks.peak_z, z)
        ks.last_hot_end = end

    def _learn(self, ks: KeyState, volume: int, negative: int, rate: float) -> None:
        share = negative / volume
        if ks.seen == 0:
            ks.neg_ewma, ks.vol_ewma = float(negative), float(volume)
        else:
            rule = self.rule
            a = rate * max(rule.alpha, 1.0 / (ks.seen + 1))  # running mean until the EWMA has history
            p0 = ks.neg_ewma / ks.vol_ewma
            if ks.seen >= rule.warmup_buckets:
                spread = rule.clip_z * math.sqrt(_variance(ks, rule, p0, volume))
                share = min(max(share, p0 - spread), p0 + spread)
                # residuals against a warm baseline only: early ones would inflate the dispersion
                residual = (share - p0) ** 2 / _binomial_variance(rule, p0, volume)
                ks.dispersion = (1 - a) * ks.dispersion + a * residual
            ks.neg_ewma = (1 - a) * ks.neg_ewma + a * share * volume
            ks.vol_ewma = (1 - a) * ks.vol_ewma + a * volume
        ks.seen += 1

    def _emit(self, ks: KeyState, state: State, decided_end: int) -> None:
        window_start = _ts(ks.start)
        self.events.append(
            AlertEvent(
                alert_id=alert_id(self.rule.name, self.key_kind, self.key, window_start),
                rule=self.rule.name,
                key_kind=self.key_kind,
                key=self.key,
                state=state,
                severity=self.rule.severity(ks.peak_z),
                window_start=window_start,
                window_end=_ts(ks.last_hot_end),
                decided_at=_ts(decided_end),
                volume=ks.volume,
                negative=ks.negative,
                negative_share=ks.negative / ks.volume if ks.volume else 0.0,
                baseline=ks.baseline,
                z_score=ks.peak_z,
            )
        )


def state_fingerprint(rules: RuleSet) -> str:
    """What a saved state must match to be resumed: the rules and the state layout version."""
    return f"{rules.fingerprint()}.v{STATE_VERSION}"


def watermark_cutoff(watermark: datetime, bucket_s: int) -> int:
    """Start (epoch s) of the first bucket not yet complete at `watermark`."""
    return _epoch(watermark) // bucket_s * bucket_s


def detect(
    series: Iterable[BucketStats],
    rules: RuleSet,
    state: DetectorState | None = None,
    watermark: datetime | None = None,
    trace: bool = False,
) -> DetectionResult:
    """Judge every bucket ending at or before `watermark` that `state` has not judged yet.

    Returns the events in decision order and the new state (the input state is not modified).
    With `watermark=None` all buckets in `series` are judged (backtest over a closed history);
    with `trace` the result also holds what each judged bucket looked like (`BucketView`).
    """
    bucket_s = rules.bucket_s
    fingerprint = state_fingerprint(rules)
    if state is not None and state.rules_fingerprint != fingerprint:
        raise ValueError("detector state was built under different rules; start from a fresh state")
    state = state or DetectorState(rules_fingerprint=fingerprint)
    per_key: dict[tuple[str, str], list[tuple[int, BucketStats]]] = {}
    for b in series:
        start = _epoch(b.start)
        if start % bucket_s:
            raise ValueError(f"bucket {b.start.isoformat()} is not aligned to bucket_s={bucket_s}")
        per_key.setdefault((b.key_kind, b.key), []).append((start, b))
    if watermark is not None:
        cutoff = watermark_cutoff(watermark, bucket_s)
    else:
        last = max((s for rows in per_key.values() for s, _ in rows), default=None)
        cutoff = state.cutoff if last is None else last + bucket_s
    if state.cutoff is not None:
        cutoff = max(cutoff, state.cutoff)
    judged_before = state.cutoff if state.cutoff is not None else -math.inf

    keys = {name: replace(ks) for name, ks in state.keys.items()}
    events: list[AlertEvent] = []
    failed: dict[tuple[str, str, str], str] = {}
    views: dict[tuple[str, str, str], list[BucketView]] = {}
    known = {parse_state_key(name) for name in keys}
    candidates = {(kind, key) for kind, key in per_key} | {(kind, key) for _, kind, key in known}
    for rule in rules.rules:
        for kind, key in sorted(candidates):
            if not rule.applies_to(kind, key):
                continue
            name = state_key(rule.name, kind, key)
            rows = sorted(
                (start, b.volume, b.negatives_for(rule))
                for start, b in per_key.get((kind, key), ())
                if judged_before <= start < cutoff
            )
            if name not in keys and not rows:
                continue
            run = _KeyRun(rule, kind, key, bucket_s, rules.forget_after_buckets, trace)
            try:
                ks = run.advance(keys.get(name), rows, cutoff)
            except Exception as exc:  # one key's failure must not stop the others: it keeps its state
                log.exception("detector: rule %s, %s %r failed; key skipped", rule.name, kind, key)
                failed[(rule.name, kind, key)] = f"{type(exc).__name__}: {exc}"
                continue
            if run.views:
                views[(rule.name, kind, key)] = run.views
            if (
                ks is not None
                and ks.settled
                and cutoff - ks.last_data >= rules.forget_after_buckets * bucket_s
            ):
                keys.pop(name, None)  # would restart fresh on its next data anyway
            elif ks is not None:
                keys[name] = ks
            events.extend(run.events)
    events.sort(key=lambda e: (e.decided_at, e.rule, e.key_kind, e.key, e.state != "resolved"))
    return DetectionResult(events, DetectorState(fingerprint, cutoff, keys), failed, views)
