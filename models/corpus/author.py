"""Deterministic author of the finpulse labelled corpus and the demo/backtest sample feed.

Everything here is synthetic: sentences are rendered from the hand-written templates in
`models.corpus.templates`, filled from `models.corpus.lexicon`. The same seed always gives the
same files. Usage::

    python -m models.corpus.author --out models/corpus/data --demo-feed ingest/samples
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

from models.corpus.lexicon import SECTORS, VOCAB, Company, load_companies
from models.corpus.templates import KINDS, SENTIMENTS, TEMPLATES, TOPICS

SEED = 20261102
TOTAL = 15800
SPLITS = ("train", "validation", "test")
HELD_OUT_SHARE = 0.15  # of each (topic, sentiment, kind) cell's templates, for validation and for test

TOPIC_SHARE = {
    "earnings": 0.14,
    "mergers_acquisitions": 0.12,
    "macro_central_banks": 0.13,
    "regulation_legal": 0.14,
    "analyst_ratings": 0.12,
    "markets": 0.14,
    "company_news": 0.14,
    "other": 0.07,
}
SENTIMENT_SHARE = {"negative": 0.35, "neutral": 0.35, "positive": 0.30}
SOCIAL_SHARE = {"other": 0.6}  # share of social posts per topic; default below
DEFAULT_SOCIAL_SHARE = 0.4

_SLOT = re.compile(r"\{([a-z0-9_+\-~]+)\}")
_SECTOR_TAG = re.compile(r"^\[(\w+)\]\s*")
_EMOJI_SLOTS = {"e+": "pos_emo", "e-": "neg_emo", "e0": "neu_emo", "e~": "sarc_emo"}
_QWORDS = ("first-quarter", "second-quarter", "third-quarter", "fourth-quarter")
_TIMES = ("8:00 a.m. ET", "8:30 a.m. ET", "9:00 a.m. ET", "4:30 p.m. ET", "5:00 p.m. ET", "10:00 GMT")


@dataclass(frozen=True, slots=True)
class Template:
    """One phrase template with its labels; `sector` restricts the company slots."""

    template_id: str
    topic: str
    sentiment: str
    kind: str
    pattern: str
    sector: str | None

    @property
    def cell(self) -> tuple[str, str, str]:
        """The (topic, sentiment, kind) cell the template belongs to."""
        return (self.topic, self.sentiment, self.kind)

    @property
    def mentions_company(self) -> bool:
        """Whether the template names a company (so it can be aimed at a given ticker)."""
        return bool({"co", "ct", "tk"} & set(_SLOT.findall(self.pattern)))


@dataclass(frozen=True, slots=True)
class Rendered:
    """A filled template: the text and the company tickers it names."""

    text: str
    tickers: tuple[str, ...]


def all_templates() -> list[Template]:
    """Every template, with ids of the form `topic.sentiment.kind.NN`."""
    out = []
    for (topic, sentiment, kind), patterns in TEMPLATES.items():
        for i, raw in enumerate(patterns):
            tag = _SECTOR_TAG.match(raw)
            pattern = raw[tag.end() :] if tag else raw
            out.append(
                Template(
                    f"{topic}.{sentiment}.{kind}.{i:02d}",
                    topic,
                    sentiment,
                    kind,
                    pattern,
                    tag.group(1) if tag else None,
                )
            )
    return out


def _hash(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()


def assign_splits(templates: Sequence[Template], seed: int = SEED) -> dict[str, str]:
    """Group split: each cell's templates go to test / validation / train (15/15/70 by count).

    The order inside a cell is a seeded hash of the template text, so editing one template does
    not reshuffle the others.
    """
    by_cell: dict[tuple[str, str, str], list[Template]] = {}
    for t in templates:
        by_cell.setdefault(t.cell, []).append(t)
    split: dict[str, str] = {}
    for cell_templates in by_cell.values():
        ordered = sorted(cell_templates, key=lambda t: _hash(seed, t.pattern))
        k = max(1, round(HELD_OUT_SHARE * len(ordered)))
        for i, t in enumerate(ordered):
            split[t.template_id] = "test" if i < k else "validation" if i < 2 * k else "train"
    return split


class Renderer:
    """Fills template slots from the lexicon with a caller-supplied random generator."""

    def __init__(self, companies: Sequence[Company]) -> None:
        self.companies = tuple(companies)
        self._by_sector: dict[str, list[Company]] = {}
        for c in self.companies:
            self._by_sector.setdefault(c.sector, []).append(c)

    def pick_company(self, rng: random.Random, sector: str | None = None) -> Company:
        """A random company, from `sector` when given."""
        return rng.choice(self._by_sector[sector] if sector else self.companies)

    def render(self, t: Template, rng: random.Random, company: Company | None = None) -> Rendered:
        """Fill `t`; `company` fixes the main company (else one is drawn, honouring t.sector)."""
        co = company or self.pick_company(rng, t.sector)
        others = self._by_sector[co.sector] if rng.random() < 0.6 else self.companies
        co2 = rng.choice([c for c in others if c.ticker != co.ticker] or list(self.companies))
        values: dict[str, str] = {}
        used: list[str] = []

        def fill(match: re.Match[str]) -> str:
            slot = match.group(1)
            if slot not in values:
                first = not values and "{tk}" not in t.pattern
                values.update(self._slot(slot, t.kind, co, co2, rng, first))
            if slot in ("co", "ct", "tk") and co.ticker not in used:
                used.append(co.ticker)
            if slot in ("co2", "ct2") and co2.ticker not in used:
                used.append(co2.ticker)
            return values[slot]

        text = _SLOT.sub(fill, t.pattern)
        text = re.sub(r"\s+", " ", text).strip()
        text = re.sub(r"\s+([,.!?;:])", r"\1", text)
        if t.kind == "news":
            text = text[0].upper() + text[1:]
        return Rendered(text, tuple(used))

    @staticmethod
    def _slot(
        slot: str, kind: str, co: Company, co2: Company, rng: random.Random, first: bool
    ) -> dict[str, str]:
        """Values for one slot (paired slots such as eps_a/eps_b are filled together)."""
        money = rng.choice(("$", "$", "$", "€", "£"))
        if slot == "co":
            with_ticker = kind == "news" and first and rng.random() < 0.15
            return {"co": f"{co.name} ({co.ticker})" if with_ticker else co.name}
        if slot == "co2":
            return {"co2": co2.name}
        if slot in ("ct", "ct2"):
            c = co if slot == "ct" else co2
            return {slot: c.ticker.lower() if rng.random() < 0.12 else f"${c.ticker}"}
        if slot == "tk":
            return {"tk": co.ticker}
        if slot in ("product", "unit", "defect", "reg"):
            key = "regulator" if slot == "reg" else slot
            return {slot: rng.choice(SECTORS[co.sector][key])}
        if slot in _EMOJI_SLOTS:
            return {slot: rng.choice(VOCAB[_EMOJI_SLOTS[slot]]) if rng.random() < 0.55 else ""}
        if slot == "pct":
            v = rng.uniform(1.0, 12.0)
            return {"pct": f"{v:.1f} percent" if kind == "news" and rng.random() < 0.2 else f"{v:.1f}%"}
        if slot == "bigpct":
            return {"bigpct": f"{rng.randint(12, 45)}%"}
        if slot == "smallpct":
            return {"smallpct": f"{rng.uniform(0.1, 4.9):.1f}%"}
        if slot == "bps":
            return {"bps": rng.choice(("25", "50", "75"))}
        if slot == "rate":
            return {"rate": f"{rng.randint(2, 23) * 0.25:.2f}%"}
        if slot in ("eps_a", "eps_b"):
            lo = rng.uniform(0.1, 6.0)
            return {"eps_b": f"${lo:.2f}", "eps_a": f"${lo + rng.uniform(0.03, 0.6):.2f}"}
        if slot in ("rev", "rev_hi", "rev_lo"):
            lo = rng.uniform(0.8, 95.0)
            hi = lo * rng.uniform(1.02, 1.12)
            return {
                "rev": f"${lo:.1f} billion",
                "rev_lo": f"${lo:.1f} billion",
                "rev_hi": f"${hi:.1f} billion",
            }
        if slot == "amt":
            v = rng.uniform(0.3, 60.0)
            return {"amt": f"{money}{v:.1f}bn" if rng.random() < 0.4 else f"{money}{v:.1f} billion"}
        if slot == "fine":
            return {"fine": f"{money}{rng.randint(2, 95) * 10} million"}
        if slot == "div":
            return {"div": f"${rng.uniform(0.05, 2.5):.2f}"}
        if slot in ("pt", "pt_hi", "pt_lo"):
            lo = rng.randint(12, 700)
            hi = round(lo * rng.uniform(1.08, 1.4))
            return {"pt": f"${lo}", "pt_lo": f"${lo}", "pt_hi": f"${hi}"}
        if slot == "fxrate":
            return {"fxrate": f"{rng.uniform(0.6, 1.6):.4f}"}
        if slot == "n":
            return {"n": f"{rng.choice((1, 2, 5, 12, 30, 75)) * rng.randint(100, 999):,}"}
        if slot == "few":
            return {"few": str(rng.randint(2, 14))}
        if slot == "q":
            return {"q": f"Q{rng.randint(1, 4)}"}
        if slot == "qword":
            return {"qword": rng.choice(_QWORDS)}
        if slot == "fy":
            return {"fy": rng.choice(("2026", "2027", "fiscal 2027"))}
        if slot == "year":
            return {"year": str(rng.randint(2008, 2023))}
        if slot in ("date", "date2"):
            month = rng.randrange(11)
            day = rng.randint(1, 28)
            later = f"{VOCAB['mon'][month + 1]} {rng.randint(1, 28)}"
            return {"date": f"{VOCAB['mon'][month]} {day}", "date2": later}
        if slot == "broker":
            return {"broker": rng.choice([b for b in VOCAB["broker"] if b not in co.name])}
        if slot == "time":
            return {"time": rng.choice(_TIMES)}
        return {slot: rng.choice(VOCAB[slot])}


def cell_targets(total: int = TOTAL) -> dict[tuple[str, str, str], int]:
    """Number of items wanted per (topic, sentiment, kind) cell."""
    out = {}
    for topic in TOPICS:
        social = SOCIAL_SHARE.get(topic, DEFAULT_SOCIAL_SHARE)
        for sentiment in SENTIMENTS:
            for kind in KINDS:
                share = (
                    TOPIC_SHARE[topic]
                    * SENTIMENT_SHARE[sentiment]
                    * (social if kind == "social" else 1 - social)
                )
                out[(topic, sentiment, kind)] = round(total * share)
    return out


def _dedupe_key(text: str) -> str:
    return re.sub(r"[^\w$%]+", " ", text.lower()).strip()


def generate_corpus(
    seed: int = SEED, total: int = TOTAL, companies: Sequence[Company] | None = None
) -> list[dict]:
    """The labelled corpus: one dict per item, globally de-duplicated, in a stable order."""
    renderer = Renderer(companies or load_companies())
    templates = all_templates()
    split = assign_splits(templates, seed)
    by_cell: dict[tuple[str, str, str], list[Template]] = {}
    for t in templates:
        by_cell.setdefault(t.cell, []).append(t)
    seen: set[str] = set()
    records = []
    for cell, target in cell_targets(total).items():
        rng = random.Random(f"{seed}:{'/'.join(cell)}")
        cell_templates = by_cell[cell]
        made, attempts = 0, 0
        while made < target and attempts < target * 40:
            t = cell_templates[attempts % len(cell_templates)]
            attempts += 1
            text = renderer.render(t, rng).text
            key = _dedupe_key(text)
            if key in seen:
                continue
            seen.add(key)
            made += 1
            records.append(
                {
                    "id": "fpc-" + _hash(seed, text)[:12],
                    "text": text,
                    "sentiment": t.sentiment,
                    "topic": t.topic,
                    "kind": t.kind,
                    "template_id": t.template_id,
                    "split": split[t.template_id],
                }
            )
    return records


def corpus_stats(records: Iterable[dict]) -> dict:
    """Counts per split x sentiment / topic / kind, plus templates per split."""
    stats: dict = {"total": 0, "splits": {}}
    for r in records:
        s = stats["splits"].setdefault(
            r["split"],
            {
                "items": 0,
                "sentiment": Counter(),
                "topic": Counter(),
                "kind": Counter(),
                "topic_x_sentiment": Counter(),
                "templates": set(),
            },
        )
        stats["total"] += 1
        s["items"] += 1
        s["sentiment"][r["sentiment"]] += 1
        s["topic"][r["topic"]] += 1
        s["kind"][r["kind"]] += 1
        s["topic_x_sentiment"][f"{r['topic']}/{r['sentiment']}"] += 1
        s["templates"].add(r["template_id"])
    for s in stats["splits"].values():
        s["templates"] = len(s["templates"])
        for key in ("sentiment", "topic", "kind", "topic_x_sentiment"):
            s[key] = dict(sorted(s[key].items()))
    stats["splits"] = {name: stats["splits"][name] for name in SPLITS if name in stats["splits"]}
    return stats


def write_corpus(out: Path, seed: int = SEED, total: int = TOTAL) -> dict:
    """Write train/validation/test JSONL and stats.json under `out`; returns the stats."""
    out.mkdir(parents=True, exist_ok=True)
    records = generate_corpus(seed, total)
    for name in SPLITS:
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            for r in records:
                if r["split"] == name:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    stats = corpus_stats(records)
    stats["seed"] = seed
    (out / "stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return stats


# ---------------------------------------------------------------------------- demo feed

DEMO_START = datetime(2026, 11, 2, 13, 0, tzinfo=UTC)
DEMO_HOURS = 6
NEWS_SOURCES = (
    "demo-newswire",
    "demo-markets-desk",
    "demo-business-daily",
    "demo-finance-blog",
    "demo-regional-press",
)
SOCIAL_SOURCE = "demo-social"


@dataclass(frozen=True, slots=True)
class Burst:
    """A planted negative burst: its alert key, window, size and how items are drawn."""

    key: str
    start: datetime
    minutes: int
    size: int
    ticker: str
    topics: tuple[str, ...]
    share_on_ticker: float

    @property
    def end(self) -> datetime:
        """End of the window."""
        return self.start + timedelta(minutes=self.minutes)


BURSTS = (
    Burst(
        "topic:regulation_legal",
        datetime(2026, 11, 2, 14, 20, tzinfo=UTC),
        15,
        50,
        "WFC",
        ("regulation_legal",),
        0.8,
    ),
    Burst(
        "ticker:TSLA",
        datetime(2026, 11, 2, 16, 10, tzinfo=UTC),
        20,
        36,
        "TSLA",
        ("company_news", "regulation_legal", "analyst_ratings", "earnings"),
        1.0,
    ),
)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _document(
    native_id: str, source: str, t: Template, r: Rendered, at: datetime, extra: dict | None = None
) -> dict:
    """A Document-shaped record (doc_id/ingested_at/story_id are left to ingest)."""
    news = t.kind == "news"
    return {
        "id": native_id,
        "source": source,
        "kind": t.kind,
        "published_at": _iso(at),
        "title": r.text if news else "",
        "text": "" if news else r.text,
        "url": f"https://demo.finpulse.invalid/{source}/{native_id}",
        "lang": "en",
        "tickers": list(r.tickers),
        "meta": {
            "synthetic": True,
            "template_id": t.template_id,
            "label_topic": t.topic,
            "label_sentiment": t.sentiment,
            **(extra or {}),
        },
    }


def generate_demo_feed(seed: int = SEED, background: int = 500, reprints: int = 5) -> list[dict]:
    """About 600 documents over 6 hours on 2026-11-02 from TEST-split templates only.

    Background traffic is a balanced mix; BURSTS plants two negative bursts; a few news items
    are reprinted by several sources within minutes (same headline, different native ids).
    """
    rng = random.Random(f"{seed}:demo")
    companies = load_companies()
    renderer = Renderer(companies)
    templates = all_templates()
    split = assign_splits(templates, seed)
    test = [t for t in templates if split[t.template_id] == "test"]
    planted = {b.ticker for b in BURSTS}
    quiet = [c for c in companies if c.ticker not in planted]
    quiet_renderer = Renderer(quiet)
    targets = cell_targets(background)
    by_cell: dict[tuple[str, str, str], list[Template]] = {}
    for t in test:
        by_cell.setdefault(t.cell, []).append(t)

    items: list[tuple[datetime, str, Template, Rendered, dict]] = []

    def source_for(t: Template) -> str:
        return rng.choice(NEWS_SOURCES) if t.kind == "news" else SOCIAL_SOURCE

    cells = list(targets)
    weights = [targets[c] for c in cells]
    span = DEMO_HOURS * 3600
    seen: set[str] = set()

    def fresh(
        pool: Sequence[Template], render: Renderer, company: Company | None = None
    ) -> tuple[Template, Rendered]:
        # Prefer texts not yet in the feed; small template pools may still repeat (like copy-paste posts).
        for _ in range(20):
            t = rng.choice(pool)
            r = render.render(t, rng, company)
            if _dedupe_key(r.text) not in seen:
                break
        seen.add(_dedupe_key(r.text))
        return t, r

    for _ in range(background):
        t, r = fresh(by_cell[rng.choices(cells, weights)[0]], quiet_renderer)
        at = DEMO_START + timedelta(seconds=rng.randrange(span))
        items.append((at, source_for(t), t, r, {}))

    for burst in BURSTS:
        main = next(c for c in companies if c.ticker == burst.ticker)
        pool = [
            t
            for t in test
            if t.sentiment == "negative"
            and t.topic in burst.topics
            and t.mentions_company
            and t.sector in (None, main.sector)
        ]
        for _ in range(burst.size):
            company = (
                main if rng.random() < burst.share_on_ticker else renderer.pick_company(rng, main.sector)
            )
            t, r = fresh(pool, renderer, company)
            at = burst.start + timedelta(seconds=rng.randrange(burst.minutes * 60))
            items.append((at, source_for(t), t, r, {"planted": burst.key}))

    news_items = [i for i in items if i[2].kind == "news"]
    for at, source, t, r, extra in rng.sample(news_items, reprints):
        for other in rng.sample([s for s in NEWS_SOURCES if s != source], rng.randint(2, 4)):
            later = at + timedelta(seconds=rng.randint(40, 480))
            items.append((later, other, t, r, {**extra, "reprint": True}))

    items.sort(key=lambda i: (i[0], i[1], i[3].text))
    return [
        _document(f"demo-{n:04d}", source, t, r, at, extra)
        for n, (at, source, t, r, extra) in enumerate(items, start=1)
    ]


def generate_headlines_csv_rows(seed: int = SEED, rows: int = 30) -> list[dict]:
    """Rows for `headlines.csv` (id, published_at, source, title, text, url), test templates only."""
    rng = random.Random(f"{seed}:csv")
    templates = all_templates()
    split = assign_splits(templates, seed)
    news = [t for t in templates if split[t.template_id] == "test" and t.kind == "news"]
    renderer = Renderer(load_companies())
    out = []
    for n in range(1, rows + 1):
        t = rng.choice(news)
        at = DEMO_START + timedelta(minutes=2 * n)
        native_id = f"csv-{n:03d}"
        source = rng.choice(NEWS_SOURCES)
        out.append(
            {
                "id": native_id,
                "published_at": _iso(at),
                "source": source,
                "title": renderer.render(t, rng).text,
                "text": "Synthetic item authored by the finpulse project for testing; not real news.",
                "url": f"https://demo.finpulse.invalid/{source}/{native_id}",
            }
        )
    return out


def write_samples(out: Path, seed: int = SEED) -> dict[str, int]:
    """Write demo_feed.jsonl, demo_events.csv and headlines.csv under `out`; returns row counts."""
    out.mkdir(parents=True, exist_ok=True)
    feed = generate_demo_feed(seed)
    with (out / "demo_feed.jsonl").open("w", encoding="utf-8") as fh:
        for doc in feed:
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
    with (out / "demo_events.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["key", "start", "end"])
        for b in BURSTS:
            writer.writerow([b.key, _iso(b.start), _iso(b.end)])
    rows = generate_headlines_csv_rows(seed)
    with (out / "headlines.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return {"demo_feed": len(feed), "demo_events": len(BURSTS), "headlines": len(rows)}


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    out: Path = typer.Option(Path(__file__).with_name("v3"), help="Corpus output directory."),
    demo_feed: Path | None = typer.Option(None, help="Also write the demo feed samples to this directory."),
    corpus: bool = typer.Option(True, help="Write the corpus (use --no-corpus for samples only)."),
    seed: int = typer.Option(SEED),
    total: int = typer.Option(TOTAL, help="Target number of corpus items."),
    refresh_companies: bool = typer.Option(False, help="Rebuild companies.csv from pytickersymbols first."),
) -> None:
    """Author the labelled corpus (and optionally the demo feed) deterministically."""
    if refresh_companies:
        from models.corpus.lexicon import refresh_companies as refresh

        typer.echo(f"companies.csv: {refresh()} companies")
    if corpus:
        stats = write_corpus(out, seed, total)
        sizes = {name: s["items"] for name, s in stats["splits"].items()}
        typer.echo(f"corpus: {stats['total']} items {sizes} -> {out}")
    if demo_feed is not None:
        typer.echo(f"samples: {write_samples(demo_feed, seed)} -> {demo_feed}")


if __name__ == "__main__":
    app()
