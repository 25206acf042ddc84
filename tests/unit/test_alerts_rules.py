"""Rules file validation: the shipped file loads; mistakes name the file, the field and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.rules import RulesError, load_rules


def test_shipped_rules_cover_market_topics_and_tickers() -> None:
    rules = load_rules()
    assert rules.key_kinds == ("market", "topic", "ticker")
    assert len(rules.fingerprint()) == 16


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rules:\n  - {name: a, key_kind: topic, z_enter: 2, z_exit: 3}\n",
            "rules[0]: Value error, z_exit (3.0)",
        ),
        ("rules:\n  - {name: a, key_kind: sector}\n", "rules[0].key_kind: Input should be 'market'"),
        ("rules:\n  - {name: a, key_kind: topic, min_volum: 3}\n", "rules[0].min_volum: Extra inputs"),
        (
            "bucket_s: 90\nrules:\n  - {name: a, key_kind: topic}\n",
            "bucket_s: Value error, must be a multiple",
        ),
        ("rules:\n  - {name: a, key_kind: topic}\n  - {name: a, key_kind: market}\n", "repeated: a"),
        ("rules: []\n", "rules: Tuple should have at least 1 item"),
        ("rules: [\n", "not valid YAML"),
        (
            "rules:\n  - {name: a, key_kind: topic, negatives: sure}\n",
            "rules[0].negatives: Input should be 'all'",
        ),
    ],
)
def test_errors_name_file_field_and_reason(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(RulesError) as info:
        load_rules(path)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read rules file"):
        load_rules(tmp_path / "absent.yaml")
