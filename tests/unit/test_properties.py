"""Property-based tests (Hypothesis): document parsing never fails other than with a DocumentError,
and what it accepts survives the wire; detector keys are injective whatever text they hold; a higher
confidence floor never adds negative calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.detector import BucketStats, DetectorState, detect, parse_state_key, state_key
from alerts.rules import Rule, RuleSet
from ingest.records import to_document
from ingest.schema import DATETIME_MIN, TICKER_PATTERN, DocumentError, decode_document
from models.evaluation import negative_by_confidence

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
TIMES = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.text(max_size=30),
    JSON_VALUES,
)
FIELDS = ("id", "doc_id", "source", "kind", "text", "url", "lang", "tickers", "meta", "published_at")
RECORDS = st.fixed_dictionaries(
    {"title": st.text(max_size=60)},
    optional={
        **{name: JSON_VALUES for name in FIELDS},
        "published_at": TIMES,
        "tickers": st.lists(st.text(max_size=8), max_size=5) | st.text(max_size=20) | JSON_VALUES,
    },
)
CHECKS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@CHECKS
@given(RECORDS)
def test_any_record_is_a_valid_document_or_a_document_error(record: dict) -> None:
    try:
        doc = to_document(record, default_source="prop")
    except DocumentError:
        return
    assert decode_document(doc.to_json()) == doc
    assert DATETIME_MIN <= doc.published_at <= datetime.now(UTC) + timedelta(days=1)
    assert all(TICKER_PATTERN.match(t) for t in doc.tickers)


@CHECKS
@given(st.binary(max_size=200) | JSON_VALUES.map(orjson.dumps))
def test_any_bytes_decode_or_raise_a_document_error(raw: bytes) -> None:
    try:
        doc = decode_document(raw)
    except DocumentError:
        return
    assert decode_document(doc.to_json()) == doc


@given(st.tuples(st.text(), st.text(), st.text()), st.tuples(st.text(), st.text(), st.text()))
def test_detector_state_keys_are_injective(a: tuple, b: tuple) -> None:
    assert parse_state_key(state_key(*a)) == a
    assert (state_key(*a) == state_key(*b)) == (a == b)


RULES = RuleSet(
    rules=(
        Rule(name="t", key_kind="ticker", min_volume=1, min_negative=1, min_lift=0.0, z_enter=1.0,
             z_exit=0.5, exit_buckets=1, cooldown_buckets=1, warmup_buckets=1, halflife_buckets=5),
    ),
)  # fmt: skip
T0 = datetime(2026, 11, 2, tzinfo=UTC)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.text(max_size=6), st.integers(0, 9), st.integers(1, 5)), min_size=1, max_size=12)
)
def test_detector_resumes_from_its_saved_state_for_any_keys(buckets: list) -> None:
    series = [
        BucketStats("ticker", key, T0 + timedelta(minutes=m), n, n // 2, n, 0.0) for key, m, n in buckets
    ]
    whole = detect(series, RULES, None, T0 + timedelta(minutes=12))
    half = detect(series, RULES, None, T0 + timedelta(minutes=5))
    resumed = DetectorState.from_json(orjson.loads(orjson.dumps(half.state.to_json())))
    rest = detect(series, RULES, resumed, T0 + timedelta(minutes=12))
    assert half.events + rest.events == whole.events
    assert rest.state.to_json() == whole.state.to_json()


SENTIMENT_LABELS = st.sampled_from(("negative", "neutral", "positive"))


@given(st.lists(st.tuples(SENTIMENT_LABELS, SENTIMENT_LABELS, st.floats(0, 1)), max_size=60))
def test_raising_the_confidence_floor_never_adds_negative_calls(rows: list) -> None:
    y_true, y_pred, confidence = zip(*rows, strict=True) if rows else ((), (), ())
    table = negative_by_confidence(y_true, y_pred, confidence)
    calls, recalls = [row["calls"] for row in table], [row["recall"] for row in table]
    assert calls == sorted(calls, reverse=True) and recalls == sorted(recalls, reverse=True)
    assert all(0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1 for row in table)
