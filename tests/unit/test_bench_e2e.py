"""Pure parts of the end-to-end benchmark: inputs, percentiles, settings hand-over, chart."""

from __future__ import annotations

import json

from bench.chart import write_chart
from bench.harness import bench_documents, percentiles
from devstack.services import settings_env
from stream_app.settings import StreamSettings


def test_documents_are_distinct_and_mix_headlines_posts_and_articles() -> None:
    docs = bench_documents(600, seed=3)
    assert len({d.doc_id for d in docs}) == 600
    assert {d.kind for d in docs} == {"news", "social"}
    words = sorted(len(d.content.split()) for d in docs)
    assert words[len(words) // 2] < 25 and words[-1] > 30  # mostly short, some article-length
    assert [d.doc_id for d in bench_documents(50, seed=3)] == [d.doc_id for d in docs[:50]]


def test_percentiles_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentiles(values) == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert percentiles([])["p99"] == 0.0


def test_settings_round_trip_through_environment_variables(monkeypatch) -> None:
    stream = StreamSettings(max_batch=17, max_wait_s=0.05, input_topics=["a", "b"], adaptive_batching=False)
    env = settings_env("FINPULSE_STREAM_", stream)
    assert "FINPULSE_STREAM_WEB_PORT" not in env  # None values are left to the defaults
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert StreamSettings() == stream


def _point(label: str, batch: int, docs_per_s: float, offered: float | None, p99: float) -> dict:
    return {
        "label": label, "workers": 1, "batch_size": batch, "offered_docs_per_s": offered,
        "docs_per_s": docs_per_s, "latency_ms": {"p50": p99 / 2, "p95": p99, "p99": p99, "max": p99},
    }  # fmt: skip


def test_chart_is_written_from_a_result(tmp_path) -> None:
    result = {
        "backend": "onnx-int8", "batch_size": 64, "e2e_workers": 1, "e2e_docs_per_s": 100.0,
        "ceiling_docs_per_s": 105.0, "latency_bound_ms": 900.0,
        "ratios": {"e2e_over_ceiling": 0.95, "e2e_over_batch1": 5.0},
        "points": [
            _point("floor", 1, 20.0, None, 5000), _point("e2e", 64, 100.0, None, 9000),
            _point("b16", 16, 80.0, None, 9500), _point("l25", 64, 25.0, 25.0, 200),
            _point("l50", 64, 50.0, 50.0, 400), _point("l100", 64, 90.0, 100.0, 3000),
        ],
    }  # fmt: skip
    path = write_chart(json.loads(json.dumps(result)), tmp_path / "chart.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
