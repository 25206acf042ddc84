"""Replay: re-publish the documents of an event-time range, in event-time order, under a run id.

Sources: the ClickHouse archive (`documents`, every live document ever stored) or Kafka topics.
The replayed messages go to a replay topic with the header `finpulse-run-id: <run id>`, which the
stream app honours, so the results land under that run id and live counts are untouched.

Kafka ranges are located by the messages' own timestamps (CreateTime = published_at), never by
`offsets_for_times` or `end_offsets` (some Kafka-protocol brokers, Tansu among them, answer those
wrongly). Per partition:

- the end is the high-water mark of a fetch response, taken once at the start;
- the start is found by binary search over offsets (seek, read one message): any offset whose
  timestamp is before `range.start - max_disorder` is a safe start, provided no message is older
  than one written before it by more than `max_disorder` (the disorder bound);
- the scan stops at the high-water mark, or earlier at the first message newer than
  `range.end + max_disorder` (by the same bound nothing after it can be in range).

The documents in range are then sorted by (published_at, doc_id), duplicates of a doc_id dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ingest.schema import RUN_ID_HEADER, RUN_ID_PATTERN, Document, DocumentError, decode_document, utc
from ingest.topics import KafkaSettings

if TYPE_CHECKING:
    from kafka import KafkaConsumer, TopicPartition

REPLAY_TOPIC_PREFIX = "finpulse.replay."


class ReplayError(ValueError):
    """The replay cannot run as asked (bad range, run id or source); the message says why."""


def validate_run_id(run_id: str) -> str:
    """A replay's run id: 1–64 of letters, digits, `.`, `_`, `-`, and never `live`."""
    if run_id == "live":
        raise ReplayError("run id 'live' is the live stream's; a replay needs its own run id")
    if not RUN_ID_PATTERN.match(run_id):
        raise ReplayError(f"run id {run_id!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return run_id


def replay_topic_for(run_id: str) -> str:
    """The default replay topic of a run: one topic per run, so runs never read each other's messages."""
    return REPLAY_TOPIC_PREFIX + validate_run_id(run_id)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Event-time range [start, end), both timezone-aware UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ReplayError("range bounds must be timezone-aware")
        if self.end <= self.start:
            raise ReplayError(f"empty range: --to ({self.end.isoformat()}) must be after --from")

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def in_event_time_order(docs: Iterable[Document]) -> list[Document]:
    """Documents sorted by (published_at, doc_id), each doc_id once (the first seen wins)."""
    unique: dict[str, Document] = {}
    for doc in docs:
        unique.setdefault(doc.doc_id, doc)
    return sorted(unique.values(), key=lambda d: (d.published_at, d.doc_id))


# ---------------------------------------------------------------------------------------------
# Kafka


@dataclass
class KafkaReadStats:
    """What a Kafka range read looked at."""

    partitions: int = 0
    probes: int = 0
    scanned: int = 0
    in_range: int = 0
    invalid: int = 0
    problems: list[str] = field(default_factory=list)


class KafkaRangeReader:
    """Reads the documents of a time range from Kafka topics by message timestamps (module docstring).

    Lifecycle: `KafkaRangeReader(kafka, topics, span)` -> `read()` (opens and closes its consumer).
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: Sequence[str],
        span: TimeRange,
        max_disorder: timedelta = timedelta(hours=1),
        poll_timeout_ms: int = 1_000,
    ) -> None:
        if not topics:
            raise ReplayError("no Kafka topics to read")
        self._kafka = kafka
        self._topics = list(topics)
        self._span = span
        self._disorder_ms = int(max_disorder.total_seconds() * 1000)
        self._poll_timeout_ms = poll_timeout_ms
        self.stats = KafkaReadStats()

    def read(self, progress: Callable[[int], None] | None = None) -> list[Document]:
        """All valid documents in range, in event-time order; `progress(n)` after each fetched chunk."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self._kafka.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            client_id="finpulse-replay-reader",
        )
        docs: list[Document] = []
        try:
            available = consumer.topics()
            for topic in self._topics:
                if topic not in available:
                    raise ReplayError(f"Kafka topic {topic!r} does not exist")
                for partition in sorted(consumer.partitions_for_topic(topic) or ()):
                    tp = TopicPartition(topic, partition)
                    consumer.assign([tp])
                    docs.extend(self._read_partition(consumer, tp, progress))
        finally:
            consumer.close()
        return in_event_time_order(docs)

    def _read_partition(
        self, consumer: KafkaConsumer, tp: TopicPartition, progress: Callable[[int], None] | None
    ) -> Iterator[Document]:
        self.stats.partitions += 1
        low, high = self._bounds(consumer, tp)
        if high <= low:
            return
        start_ms = int(self._span.start.timestamp() * 1000)
        end_ms = int(self._span.end.timestamp() * 1000)
        consumer.seek(tp, self._start_offset(consumer, tp, low, high, start_ms - self._disorder_ms))
        idle = 0
        while consumer.position(tp) < high:
            records = consumer.poll(timeout_ms=self._poll_timeout_ms).get(tp, [])
            idle = 0 if records else idle + 1
            if idle >= 10:
                raise ReplayError(f"{tp.topic}[{tp.partition}]: no data below the high-water mark {high}")
            for record in records:
                if record.offset >= high or record.timestamp >= end_ms + self._disorder_ms:
                    return
                self.stats.scanned += 1
                # the timestamp only locates; the document's own published_at decides
                doc = self._decode(tp, record, start_ms <= record.timestamp < end_ms)
                if doc is not None and doc.published_at in self._span:
                    self.stats.in_range += 1
                    yield doc
            if progress is not None and records:
                progress(len(records))

    def _bounds(self, consumer: KafkaConsumer, tp: TopicPartition) -> tuple[int, int]:
        """(first offset, high-water mark) of the partition; the mark comes from a fetch response."""
        consumer.seek_to_beginning(tp)
        low = consumer.position(tp)
        deadline = time.monotonic() + 10 * self._poll_timeout_ms / 1000
        while consumer.highwater(tp) is None:
            consumer.poll(timeout_ms=100, max_records=1)
            if time.monotonic() > deadline:
                raise ReplayError(f"no fetch response for {tp.topic}[{tp.partition}]")
        return low, consumer.highwater(tp)

    def _timestamp_at(self, consumer: KafkaConsumer, tp: TopicPartition, offset: int) -> int:
        self.stats.probes += 1
        consumer.seek(tp, offset)
        for _ in range(10):
            records = consumer.poll(timeout_ms=self._poll_timeout_ms, max_records=1).get(tp, [])
            if records:
                return records[0].timestamp
        raise ReplayError(f"cannot read {tp.topic}[{tp.partition}] at offset {offset}")

    def _start_offset(
        self, consumer: KafkaConsumer, tp: TopicPartition, low: int, high: int, before_ms: int
    ) -> int:
        """The largest probed offset whose timestamp is before `before_ms` (else `low`): a safe start."""
        safe, lo, hi = low, low, high - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            if self._timestamp_at(consumer, tp, mid) < before_ms:
                safe, lo = mid, mid + 1
            else:
                hi = mid - 1
        return safe

    def _decode(self, tp: TopicPartition, record: Any, count_invalid: bool) -> Document | None:
        try:
            if record.value is None:
                raise DocumentError("empty message value")
            return decode_document(record.value)
        except DocumentError as exc:
            if not count_invalid:
                return None
            self.stats.invalid += 1
            if len(self.stats.problems) < 20:
                self.stats.problems.append(f"{tp.topic}[{tp.partition}]@{record.offset}: {exc}")
            return None


def high_water_marks(kafka: KafkaSettings, topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """Per-partition high-water marks of a topic, read from fetch responses (not ListOffsets)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id=None, enable_auto_commit=False,
        client_id="finpulse-replay-marks",
    )  # fmt: skip
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout_s
        while any(consumer.highwater(tp) is None for tp in partitions):
            consumer.poll(timeout_ms=100, max_records=1)
            if time.monotonic() > deadline:
                raise ReplayError(f"no fetch response for every partition of {topic}")
        return {tp.partition: consumer.highwater(tp) for tp in partitions}
    finally:
        consumer.close()


def committed_offsets(
    kafka: KafkaSettings, group: str, topic: str, partitions: Iterable[int]
) -> dict[int, int]:
    """Offsets committed by a consumer group (0 where none yet)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id=group, enable_auto_commit=False,
        client_id="finpulse-replay-progress",
    )  # fmt: skip
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) or 0 for p in partitions}
    finally:
        consumer.close()


# ---------------------------------------------------------------------------------------------
# Publishing


class Pacer:
    """Spaces documents so event time advances `speed` times faster than wall time.

    `speed=None` (or 0) publishes as fast as possible; `speed=60` replays one hour per minute.
    """

    def __init__(
        self,
        speed: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if speed is not None and speed < 0:
            raise ReplayError("--speed must be positive (0 = as fast as possible)")
        self._speed = speed or None
        self._clock = clock
        self.sleep = sleep
        self._origin: tuple[datetime, float] | None = None

    def delay(self, event_time: datetime) -> float:
        """Seconds to wait before `event_time` is due (the first document sets the origin)."""
        if self._speed is None:
            return 0.0
        if self._origin is None:
            self._origin = (event_time, self._clock())
            return 0.0
        first_event, first_wall = self._origin
        due = first_wall + (event_time - first_event).total_seconds() / self._speed
        return max(0.0, due - self._clock())


def publish_replay(
    docs: Iterable[Document],
    publisher: Any,
    run_id: str,
    pacer: Pacer,
    progress: Callable[[int], None] | None = None,
    chunk: int = 200,
) -> int:
    """Publish documents in order with the run-id header, paced; returns how many were published.

    `publisher` is an `ingest.publisher.DocumentPublisher` (anything with `publish` and `flush`).
    """
    headers = [(RUN_ID_HEADER, validate_run_id(run_id).encode())]
    sent = 0
    pending: list[Document] = []

    def send() -> None:
        nonlocal sent
        sent += publisher.publish(pending, headers=headers)
        if progress is not None:
            progress(len(pending))
        pending.clear()

    for doc in docs:
        pause = pacer.delay(doc.published_at)
        if pause > 0:
            if pending:
                send()  # what is due goes out before the pause
            pacer.sleep(pause)
        pending.append(doc)
        if len(pending) >= chunk:
            send()
    if pending:
        send()
    publisher.flush()
    return sent


def parse_time(value: str) -> datetime:
    """ISO-8601 (a naive value is UTC) to an aware UTC datetime; raises ReplayError."""
    try:
        return utc(value)
    except ValueError as exc:
        raise ReplayError(f"not an ISO-8601 time: {value!r}") from exc
