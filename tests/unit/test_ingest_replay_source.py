"""Replay logic without a broker: run ids, ranges, event-time order, pacing and the run-id header."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.replay_source import (
    Pacer,
    ReplayError,
    TimeRange,
    in_event_time_order,
    parse_time,
    publish_replay,
    replay_topic_for,
    validate_run_id,
)
from ingest.schema import RUN_ID_HEADER, Document

T0 = datetime(2026, 11, 2, 13, 0, tzinfo=UTC)


def _doc(doc_id: str, seconds: float) -> Document:
    return Document(doc_id=doc_id, source="t", published_at=T0 + timedelta(seconds=seconds), title=doc_id)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class RecordingPublisher:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, str, list]] = []
        self.flushed = False

    def publish(self, docs, headers=None) -> int:
        self.sent.extend((self.clock.now, d.doc_id, headers) for d in docs)
        return len(docs)

    def flush(self) -> None:
        self.flushed = True


def test_run_ids_and_topics() -> None:
    assert validate_run_id("model-v2.2026_11") == "model-v2.2026_11"
    assert replay_topic_for("bt1") == "finpulse.replay.bt1"
    for bad in ("live", "", "has space", "x" * 65, "-lead"):
        with pytest.raises(ReplayError):
            validate_run_id(bad)


def test_time_range_and_parse_time() -> None:
    span = TimeRange(parse_time("2026-11-02T13:00:00Z"), parse_time("2026-11-02 14:00"))
    assert span.start == T0 and span.end == T0 + timedelta(hours=1)
    assert T0 in span and span.end not in span
    assert parse_time("2026-11-02T15:00:00+02:00") == T0
    with pytest.raises(ReplayError, match="empty range"):
        TimeRange(span.end, span.start)
    with pytest.raises(ReplayError, match="ISO-8601"):
        parse_time("yesterday")


def test_event_time_order_drops_repeated_doc_ids() -> None:
    docs = [_doc("b", 10), _doc("a", 10), _doc("c", 5), _doc("a", 10)]
    assert [d.doc_id for d in in_event_time_order(docs)] == ["c", "a", "b"]


def test_pacer_spaces_event_time_by_speed() -> None:
    clock = FakeClock()
    pacer = Pacer(60, clock=lambda: clock.now, sleep=clock.sleep)
    assert pacer.delay(T0) == 0.0  # the first document sets the origin
    assert pacer.delay(T0 + timedelta(minutes=2)) == pytest.approx(2.0)
    clock.now += 5
    assert pacer.delay(T0 + timedelta(minutes=3)) == 0.0  # behind schedule: no wait
    assert Pacer(None).delay(T0 + timedelta(days=1)) == 0.0 and Pacer(0).delay(T0) == 0.0
    with pytest.raises(ReplayError):
        Pacer(-1)


def test_publish_replay_paced_sends_what_is_due_before_each_pause_with_the_header() -> None:
    clock = FakeClock()
    publisher = RecordingPublisher(clock)
    docs = [_doc("a", 0), _doc("b", 0), _doc("c", 60), _doc("d", 180)]
    pacer = Pacer(60, clock=lambda: clock.now, sleep=clock.sleep)
    seen: list[int] = []
    assert publish_replay(docs, publisher, "bt1", pacer, seen.append) == 4
    assert clock.slept == [pytest.approx(1.0), pytest.approx(2.0)]
    assert [(t - 1000.0, d) for t, d, _ in publisher.sent] == [(0, "a"), (0, "b"), (1, "c"), (3, "d")]
    assert {tuple(h) for _, _, h in publisher.sent} == {((RUN_ID_HEADER, b"bt1"),)}
    assert publisher.flushed and sum(seen) == 4


def test_publish_replay_as_fast_as_possible_batches_in_chunks() -> None:
    clock = FakeClock()
    publisher = RecordingPublisher(clock)
    docs = [_doc(f"d{i}", i) for i in range(450)]
    chunks: list[int] = []
    assert publish_replay(docs, publisher, "bt1", Pacer(None), chunks.append, chunk=200) == 450
    assert chunks == [200, 200, 50] and clock.slept == []
    with pytest.raises(ReplayError):
        publish_replay(docs, publisher, "live", Pacer(None))
