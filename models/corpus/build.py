"""Build corpus v4: merge labelling passes A and B, measure agreement, adjudicate, split by story.

Inputs are data files under ``models/corpus/v4/`` (see DATASHEET.md):

- ``authored/<genre>.jsonl``: the writers' items with their own label (pass A);
- ``labels_b.jsonl``: the independent blind pass B, ``{"id", "sentiment", "topic"}``;
- ``adjudicated.jsonl``: decisions on disagreements, ``{"id", "sentiment", "topic"}`` or
  ``{"id", "drop": true}``;
- ``test_stories.txt``: once written, the frozen test split (story ids, one a line).

Outputs: ``data/{train,validation,test}.jsonl`` and ``data/stats.json``; the generated block of
DATASHEET.md. Run it with ``finpulse model corpus``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.base import SENTIMENTS
from models.corpus import DATA_DIR, KINDS, SPLITS, TOPICS

log = logging.getLogger(__name__)

V4_DIR = Path(__file__).with_name("v4")
DATASHEET = Path(__file__).with_name("DATASHEET.md")
# Shares of each (genre, sentiment) stratum's stories: 3 of every 20 to test, 3 to validation.
TEST_SLOTS = frozenset({0, 1, 2})
VALIDATION_SLOTS = frozenset({3, 4, 5})
SLOT_CYCLE = 20
STATS_BEGIN = "<!-- corpus-v4-stats:begin (written by `finpulse model corpus`) -->"
STATS_END = "<!-- corpus-v4-stats:end -->"
_FOLD = re.compile(r"[\W_]+")


@dataclass
class BuildReport:
    """What the build kept, dropped and measured."""

    items_read: int = 0
    rejected: Counter = field(default_factory=Counter)
    resolution: Counter = field(default_factory=Counter)
    kappa: dict[str, Any] = field(default_factory=dict)
    relabelled: Counter = field(default_factory=Counter)


def read_jsonl(path: Path, report: BuildReport | None = None) -> Iterator[dict[str, Any]]:
    """JSON objects of a JSONL file; a malformed line is counted and skipped, never fatal."""
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if isinstance(row, dict):
                yield row
            else:
                log.warning("%s:%d: not a JSON object, skipped", path, n)
                if report is not None:
                    report.rejected["malformed line"] += 1


def fold(text: str) -> str:
    """Text folded for duplicate detection: case, punctuation and spacing ignored."""
    return _FOLD.sub(" ", text.casefold()).strip()


def valid_item(row: Mapping[str, Any]) -> str | None:
    """Why an authored row cannot be used (None when it can)."""
    for key in ("id", "text", "story", "genre"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            return f"missing {key}"
    if row.get("sentiment") not in SENTIMENTS:
        return "bad sentiment"
    if row.get("topic") not in TOPICS:
        return "bad topic"
    if row.get("kind") not in KINDS:
        return "bad kind"
    return None


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's kappa of two label sequences (1 = perfect agreement, 0 = chance)."""
    n = len(a)
    if n == 0:
        raise ValueError("kappa of no items")
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def _agreement(pairs: Sequence[tuple[str, str]], labels: Sequence[str]) -> dict[str, Any]:
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    matrix = [[sum(1 for x, y in pairs if x == ra and y == rb) for rb in labels] for ra in labels]
    return {
        "n": len(pairs),
        "kappa": round(cohen_kappa(a, b), 4) if pairs else None,
        "raw_agreement": round(sum(x == y for x, y in pairs) / len(pairs), 4) if pairs else None,
        "confusion": {"labels": list(labels), "rows_pass_a_columns_pass_b": matrix},
    }


def measure_agreement(items: Iterable[Mapping[str, Any]], labels_b: Mapping[str, Mapping]) -> dict:
    """Kappa of pass A (authors) vs pass B on every item both passes labelled, overall and per genre."""
    both = [(item, labels_b[item["id"]]) for item in items if item["id"] in labels_b]
    out: dict[str, Any] = {}
    for head, labels in (("sentiment", SENTIMENTS), ("topic", TOPICS)):
        pairs = [(a[head], b.get(head)) for a, b in both if b.get(head) in labels]
        out[head] = _agreement(pairs, labels)
        out[head]["per_genre"] = {
            genre: round(cohen_kappa(*zip(*group, strict=True)), 4) if group else None
            for genre, group in _group_pairs(both, head, labels).items()
        }
    return out


def _group_pairs(both: Sequence[tuple[Mapping, Mapping]], head: str, labels: Sequence[str]) -> dict:
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for a, b in both:
        if b.get(head) in labels:
            groups[a["genre"]].append((a[head], b[head]))
    return dict(sorted(groups.items()))


def resolve_labels(
    items: Sequence[dict[str, Any]],
    labels_b: Mapping[str, Mapping],
    adjudicated: Mapping[str, Mapping],
    report: BuildReport,
) -> list[dict[str, Any]]:
    """Final labels: adjudication first, then agreement of A and B; unresolved disagreements dropped.

    Items pass B has not labelled keep the author's label (counted as ``single pass``).
    """
    kept = []
    for item in items:
        decision, b = adjudicated.get(item["id"]), labels_b.get(item["id"])
        if decision is not None:
            if decision.get("drop"):
                report.resolution["dropped by adjudication"] += 1
                continue
            labels = {h: decision.get(h) or item[h] for h in ("sentiment", "topic")}
            if labels["sentiment"] not in SENTIMENTS or labels["topic"] not in TOPICS:
                report.resolution["unusable adjudication, dropped"] += 1
                continue
            status = "adjudicated"
        elif b is None:
            labels, status = {h: item[h] for h in ("sentiment", "topic")}, "single pass"
        elif b.get("sentiment") == item["sentiment"] and b.get("topic") == item["topic"]:
            labels, status = {h: item[h] for h in ("sentiment", "topic")}, "agreed"
        else:
            report.resolution["unresolved disagreement, dropped"] += 1
            continue
        report.resolution[status] += 1
        kept.append({**item, **labels, "labels": status})
    return kept


def apply_label_rules(items: Sequence[dict[str, Any]], report: BuildReport) -> list[dict[str, Any]]:
    """Guideline rules that follow from other labels: off-topic text is neutral (v4 rule 11)."""
    out = []
    for item in items:
        if item["topic"] == "other" and item["sentiment"] != "neutral":
            report.relabelled["off-topic set neutral (guideline rule 11)"] += 1
            item = {**item, "sentiment": "neutral"}
        out.append(item)
    return out


def _stable_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def merge_duplicate_stories(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Exact duplicates (after folding) join one story, so a repeated text never crosses splits.

    The first occurrence is kept; later copies are dropped.
    """
    story_of_text: dict[str, str] = {}
    alias: dict[str, str] = {}

    def root(story: str) -> str:
        while story in alias:
            story = alias[story]
        return story

    out = []
    for item in items:
        key = fold(item["text"])
        story = root(item["story"])
        if key in story_of_text:
            first = root(story_of_text[key])
            if first != story:
                alias[story] = first
            continue
        story_of_text[key] = story
        out.append(item)
    return [{**item, "story": root(item["story"])} for item in out]


def assign_splits(
    items: Sequence[dict[str, Any]], frozen_test: set[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Split by story, stratified by (genre, the story's first sentiment).

    Within each stratum stories are ordered by a hash of their id and dealt in a cycle of 20:
    3 to test, 3 to validation, 14 to train. Once a test split is frozen (``frozen_test``), exactly
    those stories are the test split and every other story is dealt to validation or train (a test
    slot goes to train), so the test split never changes and no training row can enter it.
    """
    frozen_test = frozen_test or set()
    by_story: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_story[item["story"]].append(item)
    strata: dict[tuple[str, str], list[str]] = defaultdict(list)
    split_of: dict[str, str] = {}
    for story, group in by_story.items():
        strata[(group[0]["genre"], group[0]["sentiment"])].append(story)
    for key in sorted(strata):
        for rank, story in enumerate(sorted(strata[key], key=_stable_hash)):
            slot = rank % SLOT_CYCLE
            if story in frozen_test or (slot in TEST_SLOTS and not frozen_test):
                split_of[story] = "test"
            else:
                split_of[story] = "validation" if slot in VALIDATION_SLOTS else "train"
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLITS}
    for item in sorted(items, key=lambda r: r["id"]):
        out[split_of[item["story"]]].append({**item, "split": split_of[item["story"]]})
    return out


def split_stats(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts of one split: items, stories, sentiment, topic, kind, genre and genre x sentiment."""

    def count(key: str) -> dict[str, int]:
        return dict(sorted(Counter(r[key] for r in rows).items()))

    return {
        "items": len(rows),
        "stories": len({r["story"] for r in rows}),
        "sentiment": count("sentiment"),
        "topic": count("topic"),
        "kind": count("kind"),
        "genre": count("genre"),
        "genre_x_sentiment": dict(sorted(Counter(f"{r['genre']}/{r['sentiment']}" for r in rows).items())),
        "labels": count("labels"),
    }


def load_sources(source: Path, report: BuildReport) -> tuple[list[dict], dict[str, dict], dict[str, dict]]:
    """Authored items (valid ones, ids unique), pass-B labels and adjudications from ``source``."""
    items, seen = [], set()
    for path in sorted((source / "authored").glob("*.jsonl")):
        for row in read_jsonl(path, report):
            report.items_read += 1
            reason = valid_item(row) or ("duplicate id" if row.get("id") in seen else None)
            if reason:
                report.rejected[reason] += 1
                continue
            seen.add(row["id"])
            items.append(
                {k: row[k].strip() for k in ("id", "text", "sentiment", "topic", "kind", "genre", "story")}
            )

    def by_id(name: str) -> dict[str, dict]:
        path = source / name
        rows = read_jsonl(path, report) if path.exists() else ()
        return {r["id"]: r for r in rows if isinstance(r.get("id"), str)}

    return items, by_id("labels_b.jsonl"), by_id("adjudicated.jsonl")


def build_corpus(source: Path = V4_DIR, out: Path = DATA_DIR, datasheet: Path | None = DATASHEET) -> dict:
    """Build the splits and stats.json from ``source``; update the datasheet's generated block."""
    report = BuildReport()
    items, labels_b, adjudicated = load_sources(source, report)
    report.kappa = measure_agreement(items, labels_b)
    resolved = apply_label_rules(resolve_labels(items, labels_b, adjudicated, report), report)
    unique = merge_duplicate_stories(resolved)
    report.rejected["duplicate text"] += len(resolved) - len(unique)
    frozen_file = source / "test_stories.txt"
    frozen = set(frozen_file.read_text().split()) if frozen_file.exists() else None
    splits = assign_splits(unique, frozen)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    stats = {
        "version": "v4",
        "total": sum(len(rows) for rows in splits.values()),
        "items_read": report.items_read,
        "rejected": {k: v for k, v in sorted(report.rejected.items()) if v},
        "resolution": dict(sorted(report.resolution.items())),
        "relabelled_by_rule": dict(sorted(report.relabelled.items())),
        "pass_b_labelled": len(set(labels_b) & {i["id"] for i in items}),
        "adjudications": len(adjudicated),
        "agreement_pass_a_vs_b": report.kappa,
        "test_frozen": frozen is not None,
        "splits": {name: split_stats(rows) for name, rows in splits.items()},
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    if datasheet is not None and datasheet.exists():
        update_datasheet(datasheet, stats)
    return stats


def freeze_test(source: Path = V4_DIR, out: Path = DATA_DIR) -> Path:
    """Write the current test split's story ids to ``test_stories.txt`` (later builds keep them)."""
    stories = sorted({r["story"] for r in read_jsonl(out / "test.jsonl")})
    path = source / "test_stories.txt"
    path.write_text("\n".join(stories) + "\n")
    return path


def import_items(origin: Path, source: Path = V4_DIR) -> dict[str, int]:
    """Copy the writers' parts (one file per genre), pass B and adjudications from ``origin``."""
    counts: dict[str, int] = {}
    (source / "authored").mkdir(parents=True, exist_ok=True)
    parts: dict[str, list[Path]] = defaultdict(list)
    for path in sorted((origin / "authored").glob("*.part*.jsonl")):
        parts[path.name.split(".part")[0]].append(path)
    for genre, paths in sorted(parts.items()):
        lines = [line for p in paths for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        (source / "authored" / f"{genre}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        counts[genre] = len(lines)
    labels_b = sorted((origin / "labels_b").glob("*.jsonl")) if (origin / "labels_b").is_dir() else []
    if labels_b:
        lines = [
            line for p in labels_b for line in p.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
        (source / "labels_b.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        counts["labels_b"] = len(lines)
    if (origin / "adjudicated.jsonl").exists():
        shutil.copyfile(origin / "adjudicated.jsonl", source / "adjudicated.jsonl")
        text = (source / "adjudicated.jsonl").read_text(encoding="utf-8")
        counts["adjudicated"] = sum(1 for line in text.splitlines() if line.strip())
    return counts


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def stats_markdown(stats: Mapping[str, Any]) -> str:
    """The datasheet's generated block: counts per split and genre, label mix, kappa."""
    splits = stats["splits"]
    lines = [
        "| | train | validation | test | total |",
        "|---|---|---|---|---|",
        "| items | " + " | ".join(f"{splits[s]['items']:,}" for s in SPLITS) + f" | **{stats['total']:,}** |",
        "| stories | " + " | ".join(f"{splits[s]['stories']:,}" for s in SPLITS) + " | |",
    ]
    for label in SENTIMENTS:
        cells = [splits[s]["sentiment"].get(label, 0) for s in SPLITS]
        lines.append(
            f"| {label} | " + " | ".join(f"{c:,}" for c in cells) + f" | {_pct(sum(cells), stats['total'])} |"
        )
    genres = sorted({g for s in SPLITS for g in splits[s]["genre"]})
    lines += ["", "Label mix per genre (all splits):", ""]
    lines += [
        "| genre | items | negative | neutral | positive | kappa (sentiment) |",
        "|---|---|---|---|---|---|",
    ]
    kappa_genre = stats["agreement_pass_a_vs_b"]["sentiment"].get("per_genre", {})
    for genre in genres:
        counts = {
            lab: sum(splits[s]["genre_x_sentiment"].get(f"{genre}/{lab}", 0) for s in SPLITS)
            for lab in SENTIMENTS
        }
        total = sum(counts.values())
        k = kappa_genre.get(genre)
        lines.append(
            f"| {genre} | {total:,} | "
            + " | ".join(_pct(counts[lab], total) for lab in SENTIMENTS)
            + f" | {k if k is not None else '-'} |"
        )
    agreement = stats["agreement_pass_a_vs_b"]
    lines += ["", "Agreement of pass A (authors) and pass B (blind), before adjudication:", ""]
    lines += ["| head | items in both passes | raw agreement | Cohen's kappa |", "|---|---|---|---|"]
    for head in ("sentiment", "topic"):
        a = agreement[head]
        lines.append(f"| {head} | {a['n']:,} | {a['raw_agreement']} | {a['kappa']} |")
    resolution = ", ".join(f"{k}: {v:,}" for k, v in stats["resolution"].items())
    rejected = ", ".join(f"{k}: {v:,}" for k, v in stats["rejected"].items()) or "none"
    relabelled = ", ".join(f"{k}: {v:,}" for k, v in stats.get("relabelled_by_rule", {}).items()) or "none"
    lines += [
        "",
        f"Resolution: {resolution}. Relabelled by rule: {relabelled}. Rejected on reading: {rejected}.",
        "",
    ]
    return "\n".join(lines)


def update_datasheet(path: Path, stats: Mapping[str, Any]) -> None:
    """Replace the generated block between the markers of DATASHEET.md (appended when absent)."""
    text = path.read_text(encoding="utf-8")
    block = f"{STATS_BEGIN}\n{stats_markdown(stats)}\n{STATS_END}"
    if STATS_BEGIN in text and STATS_END in text:
        head, rest = text.split(STATS_BEGIN, 1)
        text = head + block + rest.split(STATS_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
