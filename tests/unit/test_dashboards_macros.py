"""Panel SQL expansion matches grafana-clickhouse-datasource's macros and Grafana's variable formats."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboards.macros import ALL, MacroError, QueryContext, expand

CONTEXT = QueryContext(
    time_from=datetime(2026, 11, 2, 13, 0, tzinfo=UTC),
    time_to=datetime(2026, 11, 2, 14, 0, tzinfo=UTC),
    interval_s=30,
    variables={"run": "live", "topic": ["earnings", "it's"], "source": ALL, "ticker": "ACME"},
)


def test_backend_macros_match_the_plugin() -> None:
    sql = "SELECT intDiv(toUInt32(t), $__interval_s) WHERE $__timeFilter(published_at) AND x > $__fromTime"
    assert expand(sql, CONTEXT) == (
        "SELECT intDiv(toUInt32(t), 30) WHERE published_at >= toDateTime(1793624400) AND "
        "published_at <= toDateTime(1793628000) AND x > toDateTime(1793624400)"
    )


def test_interval_is_at_least_one_second() -> None:
    context = QueryContext(CONTEXT.time_from, CONTEXT.time_to, 0, {})
    assert expand("$__interval_s", context) == "1"


def test_variables_and_conditional_all() -> None:
    sql = (
        "run_id = ${run:singlequote} AND $__conditionalAll(topic IN (${topic:singlequote}), $topic) "
        "AND $__conditionalAll(source IN (${source:singlequote}), $source) AND has(tickers, '$ticker')"
    )
    assert expand(sql, CONTEXT) == (
        "run_id = 'live' AND topic IN ('earnings','it\\'s') AND 1=1 AND has(tickers, 'ACME')"
    )


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("$__timeInterval(published_at)", "unsupported macro"),
        ("x = ${missing}", "unknown variable"),
        ("x IN (${source:singlequote})", "only supported inside"),
        ("x = ${run:csv}", "unsupported variable format"),
        ("$__conditionalAll(a = 1, $topic", "unbalanced"),
    ],
)
def test_unknown_or_unsupported_input_is_refused(sql: str, message: str) -> None:
    with pytest.raises(MacroError, match=message):
        expand(sql, CONTEXT)
