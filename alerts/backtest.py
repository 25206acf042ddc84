"""Backtest alert rules over history with the live worker's detector, scored against labelled events.

    series = run_series(client, run_id, rules)                 # a stored run (live or a replay)
    series = input_series(docs, classifier, rules, workdir)    # or documents, classified first
    result = backtest(series, rules, load_events(csv), grid)   # detect() once per rule setting
    write_report(out_dir, result, series, info)                # alerts.backtest_report: the --report files

Buckets always come from `alerts.buckets.bucket_series` over the `sentiment_1m` rollup (an input
file is classified into a throwaway embedded ClickHouse first), and alerts from
`alerts.detector.detect`, so the backtest sees exactly what the live worker sees.

Scoring: an alert episode (its `firing` event, window extended by its `resolved` event) is right
when its window overlaps a labelled event of the same key (`topic:regulation_legal`, `ticker:TSLA`,
`market:all`). Precision = right episodes / episodes; recall = events overlapped by at least one
episode / events. A wrong episode that overlaps a labelled event of another key in time (the market
or a company during a topic burst) is also counted as `coincident`: wrong by the labels, but
not noise. `labelled_keys` scores only episodes of keys that have labelled events. For a detected
event, delay = first firing decision (event time) − event start, and lead time = event end − first
firing decision (positive: warned while the event was still running).
"""

from __future__ import annotations

import csv
import itertools
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alerts.buckets import bucket_series
from alerts.detector import AlertEvent, BucketStats, detect
from alerts.rules import RulesError, RuleSet, parse_rules
from ingest.schema import Document, utc
from models.base import SENTIMENTS, Classifier, Prediction
from storage.client import ClickHouseClient
from storage.queries import KEY_KINDS

if TYPE_CHECKING:
    from storage.writer import BatchWriter

BACKTEST_RUN_ID = "backtest"
# Short grid names for the rule fields users tune most.
GRID_ALIASES = {"z": "z_enter", "window": "window_buckets"}


class BacktestError(ValueError):
    """Bad events file, grid or input; the message says where and why."""


def key_label(key_kind: str, key: str) -> str:
    """`kind:key`, the spelling of keys in events files and reports."""
    return f"{key_kind}:{key}"


@dataclass(frozen=True, slots=True)
class LabelledEvent:
    """A known negative event of one key over [start, end)."""

    key_kind: str
    key: str
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        return key_label(self.key_kind, self.key)


def load_events(path: Path) -> list[LabelledEvent]:
    """Read a `key,start,end` CSV (key `kind:name`, ISO-8601 times); errors name the line."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise BacktestError(f"{path}: cannot read events file: {exc.strerror or exc}") from exc
    with handle:
        try:
            return _read_events(path, csv.DictReader(handle))
        except UnicodeDecodeError as exc:
            raise BacktestError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def _read_events(path: Path, reader: csv.DictReader) -> list[LabelledEvent]:
    events = []
    if not reader.fieldnames or not {"key", "start", "end"} <= set(reader.fieldnames):
        raise BacktestError(f"{path}: the header must have key,start,end")
    for line, row in enumerate(reader, start=2):
        if None in (row["key"], row["start"], row["end"]):
            raise BacktestError(f"{path}:{line}: a column is missing (expected key,start,end)")
        kind, _, name = (row["key"] or "").partition(":")
        if kind not in KEY_KINDS or not name:
            raise BacktestError(f"{path}:{line}: key {row['key']!r} is not kind:name ({'|'.join(KEY_KINDS)})")
        try:
            start, end = utc(row["start"]), utc(row["end"])
        except (TypeError, ValueError) as exc:
            raise BacktestError(f"{path}:{line}: bad time: {exc}") from exc
        if end <= start:
            raise BacktestError(f"{path}:{line}: end must be after start")
        events.append(LabelledEvent(kind, name, start, end))
    return events


# ---------------------------------------------------------------------------------------------
# Bucket series


def run_series(
    client: ClickHouseClient,
    run_id: str,
    rules: RuleSet,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[BucketStats]:
    """The run's buckets for the rules' key kinds over [start, end) (default: the run's whole range)."""
    ((first, last, count),) = client.query(
        f"SELECT min(published_at), max(published_at), count() FROM {client.database}.classifications "
        "WHERE run_id = %(r)s",
        {"r": run_id},
    )
    if not count:
        raise BacktestError(f"run {run_id!r} has no classified documents")
    start = start or first.replace(tzinfo=UTC)
    end = end or last.replace(tzinfo=UTC) + timedelta(seconds=rules.bucket_s)
    first_bucket = int(start.timestamp()) // rules.bucket_s * rules.bucket_s
    return bucket_series(
        client, run_id, datetime.fromtimestamp(first_bucket, UTC), end, rules.bucket_s, rules.key_kinds
    )


def classify_documents(
    writer: BatchWriter,
    docs: Sequence[Document],
    classifier: Classifier,
    run_id: str = BACKTEST_RUN_ID,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Classify documents in batches and store them under `run_id` with a `storage.writer.BatchWriter`."""
    from storage.writer import ClassifiedBatch

    for offset in range(0, len(docs), batch_size):
        batch = docs[offset : offset + batch_size]
        predictions = classifier.predict_batch([doc.content for doc in batch])
        writer.write(
            ClassifiedBatch(
                run_id=run_id, documents=batch, predictions=predictions,
                model_version=classifier.model_version, backend=classifier.backend, archive=False,
            )
        )  # fmt: skip
        if progress is not None:
            progress(len(batch))
    return len(docs)


def read_input(path: Path, default_source: str = "input") -> tuple[list[Document], list[str]]:
    """Documents of a JSONL/CSV file (`id`, `published_at`, `title` and/or `text`, optional `source`)."""
    from ingest.records import read_records, to_document
    from ingest.schema import DocumentError

    docs, problems = [], []
    try:
        for number, record in enumerate(read_records(path), start=1):
            try:
                docs.append(to_document(record, default_source=default_source))
            except DocumentError as exc:
                problems.append(f"{path}:{number}: {exc}")
    except UnicodeDecodeError as exc:
        raise BacktestError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except (OSError, DocumentError) as exc:
        raise BacktestError(f"{path}: {exc}") from exc
    return docs, problems


class MetaLabels:
    """A stand-in classifier that answers with each document's own labels (`meta.label_topic`,
    `meta.label_sentiment`, as in the shipped sample): backtests the rules alone, as if the model
    were perfect. Texts it was not built with are an error."""

    model_version = "meta-labels"
    backend = "labels"

    def __init__(self, docs: Iterable[Document]) -> None:
        self._labels: dict[str, tuple[str, str]] = {}
        for doc in docs:
            topic, sentiment = doc.meta.get("label_topic"), doc.meta.get("label_sentiment")
            if not topic or sentiment not in SENTIMENTS:
                raise BacktestError(f"document {doc.doc_id} has no meta.label_topic / meta.label_sentiment")
            self._labels[doc.content] = (str(topic), str(sentiment))

    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        out = []
        for text in texts:
            topic, sentiment = self._labels[text]
            p = {"negative": 0.0, "neutral": 0.0, "positive": 0.0, sentiment: 1.0}
            out.append(Prediction(topic, 1.0, sentiment, p["negative"], p["neutral"], p["positive"]))
        return out

    def close(self) -> None:
        """Nothing to release."""


def input_series(
    docs: Sequence[Document],
    classifier: Classifier,
    rules: RuleSet,
    workdir: Path,
    progress: Callable[[int], None] | None = None,
) -> list[BucketStats]:
    """Classify `docs` into an embedded ClickHouse under `workdir` and read its buckets back.

    The same migrations, materialized view and query as production, so the buckets have the
    rollup's exact semantics (distinct stories, novelty key, minute grain).
    """
    from storage.client import connect
    from storage.migrate import migrate
    from storage.settings import ClickHouseSettings
    from storage.writer import BatchWriter

    if not docs:
        raise BacktestError("the input has no valid documents")
    settings = ClickHouseSettings(mode="embedded", embedded_path=workdir / "chdb", database="backtest")
    client = connect(settings)
    try:
        migrate(client)
        classify_documents(BatchWriter(client, settings), docs, classifier, progress=progress)
        return run_series(client, BACKTEST_RUN_ID, rules)
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# Scoring


@dataclass(frozen=True, slots=True)
class Episode:
    """A firing alert with its whole window (extended by its resolved event, when there is one)."""

    firing: AlertEvent
    window_end: datetime
    resolved: bool

    @property
    def label(self) -> str:
        return key_label(self.firing.key_kind, self.firing.key)

    def overlaps(self, event: LabelledEvent, any_key: bool = False) -> bool:
        """Whether the window overlaps the event's (of the same key, unless `any_key`)."""
        in_time = self.firing.window_start < event.end and event.start <= self.window_end
        return in_time and (any_key or self.label == event.label)


def episodes(events: Iterable[AlertEvent]) -> list[Episode]:
    """Pair each firing event with its resolved event (same alert_id)."""
    events = list(events)
    resolved = {e.alert_id: e for e in events if e.state == "resolved"}
    out = []
    for e in events:
        if e.state == "firing":
            end = resolved[e.alert_id].window_end if e.alert_id in resolved else e.window_end
            out.append(Episode(e, max(end, e.window_end), e.alert_id in resolved))
    return out


@dataclass
class Score:
    """Precision, recall and timing for one key (or overall)."""

    alerts: int = 0
    true_alerts: int = 0
    coincident: int = 0
    events: int = 0
    detected: int = 0
    delays_s: list[float] = field(default_factory=list)
    leads_s: list[float] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.events if self.events else None

    def to_json(self) -> dict[str, Any]:
        def stat(values: list[float], fn: Callable) -> float | None:
            return round(fn(values), 1) if values else None

        return {
            "alerts": self.alerts,
            "true_alerts": self.true_alerts,
            "false_alerts": self.alerts - self.true_alerts,
            "coincident_alerts": self.coincident,
            "events": self.events,
            "detected": self.detected,
            "missed": self.events - self.detected,
            "precision": None if self.precision is None else round(self.precision, 4),
            "recall": None if self.recall is None else round(self.recall, 4),
            "delay_s_mean": stat(self.delays_s, statistics.fmean),
            "delay_s_median": stat(self.delays_s, statistics.median),
            "lead_time_s_mean": stat(self.leads_s, statistics.fmean),
            "lead_time_s_median": stat(self.leads_s, statistics.median),
        }


@dataclass
class Scores:
    """Overall (every alert), labelled keys only, and per key."""

    overall: Score
    labelled_keys: Score
    per_key: dict[str, Score]

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_json(),
            "labelled_keys": self.labelled_keys.to_json(),
            "per_key": {k: s.to_json() for k, s in sorted(self.per_key.items())},
        }


def score(events: Iterable[AlertEvent], labelled: Sequence[LabelledEvent]) -> Scores:
    """Score alert events against labelled events (module docstring for the definitions)."""
    eps = episodes(events)
    labelled_keys = {e.label for e in labelled}
    per_key: dict[str, Score] = {}
    overall, on_labelled = Score(), Score()
    for ep in eps:
        right = any(ep.overlaps(event) for event in labelled)
        coincident = not right and any(ep.overlaps(event, any_key=True) for event in labelled)
        targets = [overall, per_key.setdefault(ep.label, Score())]
        if ep.label in labelled_keys:
            targets.append(on_labelled)
        for s in targets:
            s.alerts += 1
            s.true_alerts += right
            s.coincident += coincident
    for event in labelled:
        matching = [ep for ep in eps if ep.overlaps(event)]
        first = min((ep.firing.decided_at for ep in matching), default=None)
        for s in (overall, on_labelled, per_key.setdefault(event.label, Score())):
            s.events += 1
            if first is not None:
                s.detected += 1
                s.delays_s.append((first - event.start).total_seconds())
                s.leads_s.append((event.end - first).total_seconds())
    return Scores(overall, on_labelled, per_key)


# ---------------------------------------------------------------------------------------------
# Parameter grid


def parse_grid(specs: Iterable[str]) -> dict[str, list[Any]]:
    """`name=v1,v2` items -> {field: values}; `name` is a rule field (or an alias such as `z`),
    optionally prefixed by a rule name (`topic-negative-spike.z_enter=3,4`) to change one rule only."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        for item in spec.split():
            name, sep, values = item.partition("=")
            if not sep or not name or not values:
                raise BacktestError(f"grid item {item!r}: expected name=v1,v2,...")
            rule, dot, field_name = name.rpartition(".")
            field_name = GRID_ALIASES.get(field_name, field_name)
            grid[f"{rule}{dot}{field_name}"] = [_number(v) for v in values.split(",") if v]
    return grid


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def apply_params(rules: RuleSet, params: dict[str, Any]) -> RuleSet:
    """A copy of the rules with `params` set (on every rule, or one `rule.field`), re-validated."""
    data = rules.model_dump(mode="json")
    names = {rule["name"] for rule in data["rules"]}
    for name, value in params.items():
        rule_name, _, field_name = name.rpartition(".")
        if field_name in RuleSet.model_fields and not rule_name:
            data[field_name] = value
            continue
        if rule_name and rule_name not in names:
            raise BacktestError(f"grid: no rule named {rule_name!r} (rules: {', '.join(sorted(names))})")
        for rule in data["rules"]:
            if not rule_name or rule["name"] == rule_name:
                if field_name not in rule:
                    raise BacktestError(f"grid: {field_name!r} is not a rule field")
                rule[field_name] = value
    try:
        return parse_rules(data, "grid")
    except RulesError as exc:
        raise BacktestError(str(exc)) from exc


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values (one empty point for an empty grid)."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


# ---------------------------------------------------------------------------------------------
# Backtest


@dataclass
class GridRow:
    params: dict[str, Any]
    scores: Scores | None
    alerts: int
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"params": self.params, "alert_events": self.alerts}
        if self.error:
            row["error"] = self.error
        if self.scores is not None:
            row.update(
                overall=self.scores.overall.to_json(), labelled_keys=self.scores.labelled_keys.to_json()
            )
        return row


@dataclass
class BacktestResult:
    rules: RuleSet
    events: list[AlertEvent]
    labelled: list[LabelledEvent]
    scores: Scores | None
    grid: list[GridRow]


def backtest(
    series: Sequence[BucketStats],
    rules: RuleSet,
    labelled: Sequence[LabelledEvent] = (),
    grid: dict[str, list[Any]] | None = None,
) -> BacktestResult:
    """Run the detector over the whole series with the rules (and each grid point) and score it."""
    events = detect(series, rules).events
    rows = []
    for params in grid_points(grid) if grid else []:
        try:
            variant = apply_params(rules, params)
        except BacktestError as exc:
            rows.append(GridRow(params, None, 0, " ".join(str(exc).split())))
            continue
        found = detect(series, variant).events
        rows.append(GridRow(params, score(found, labelled) if labelled else None, len(found)))
    return BacktestResult(rules, events, list(labelled), score(events, labelled) if labelled else None, rows)
