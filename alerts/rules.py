"""Alert rules: a YAML file validated into a `RuleSet`, with errors naming file, field and reason.

A rule watches one key kind (market, topic or ticker) and says what a negative-sentiment spike is
for it: minimum volume and negative counts, how far above the trailing baseline (z and absolute
lift), how the baseline learns (half-life, warm-up, clipping), hysteresis, cooldown and severities.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_RULES_PATH = Path(__file__).with_name("rules.yaml")


class RulesError(ValueError):
    """The rules file is missing, not YAML, or fails validation; the message says where and why."""


class Severity(BaseModel):
    """A severity level reached when an episode's peak z-score is at least `z`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=32)
    z: float = Field(gt=0)


class Rule(BaseModel):
    """One spike rule for one key kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    key_kind: Literal["market", "topic", "ticker"]
    # "confident": count only stories called negative with calibrated confidence >= 0.6
    # (storage rollup confidence_1m), trading a little recall for fewer false negative calls.
    negatives: Literal["all", "confident"] = "all"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    min_volume: int = Field(default=10, ge=1)
    min_negative: int = Field(default=5, ge=1)
    min_lift: float = Field(default=0.1, ge=0, le=1)
    z_enter: float = Field(default=3.0, gt=0)
    z_exit: float = Field(default=1.5, ge=0)
    window_buckets: int = Field(default=1, ge=1, le=60)
    enter_buckets: int = Field(default=1, ge=1, le=60)
    exit_buckets: int = Field(default=3, ge=1, le=1440)
    cooldown_buckets: int = Field(default=5, ge=0, le=1440)
    halflife_buckets: float = Field(default=60.0, gt=0)
    warmup_buckets: int = Field(default=10, ge=1)
    prior_share: float | None = Field(default=None, gt=0, lt=1)
    baseline_floor: float = Field(default=0.02, gt=0, lt=0.5)
    clip_z: float = Field(default=3.0, gt=0)
    severities: tuple[Severity, ...] = (Severity(name="warning", z=3.0), Severity(name="critical", z=6.0))

    @field_validator("severities")
    @classmethod
    def _ascending(cls, value: tuple[Severity, ...]) -> tuple[Severity, ...]:
        if not value:
            raise ValueError("needs at least one level")
        zs = [level.z for level in value]
        if zs != sorted(zs) or len(set(zs)) != len(zs):
            raise ValueError("levels must have strictly increasing z")
        if len({level.name for level in value}) != len(value):
            raise ValueError("level names must be unique")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.z_exit >= self.z_enter:
            raise ValueError(f"z_exit ({self.z_exit}) must be below z_enter ({self.z_enter}) for hysteresis")
        if self.min_negative > self.min_volume:
            raise ValueError(
                f"min_negative ({self.min_negative}) cannot exceed min_volume ({self.min_volume})"
            )
        if set(self.include) & set(self.exclude):
            raise ValueError("a key cannot be both included and excluded")
        return self

    def applies_to(self, key_kind: str, key: str) -> bool:
        """Whether this rule watches the key."""
        if key_kind != self.key_kind or key in self.exclude:
            return False
        return not self.include or key in self.include

    def severity(self, z: float) -> str:
        """The highest level whose z is reached (the lowest level when none is)."""
        reached = [level.name for level in self.severities if z >= level.z]
        return reached[-1] if reached else self.severities[0].name

    @property
    def alpha(self) -> float:
        """EWMA weight of one bucket, from the half-life."""
        return 1.0 - 0.5 ** (1.0 / self.halflife_buckets)


class RuleSet(BaseModel):
    """All rules evaluated over one bucket series (one bucket size)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket_s: int = Field(default=60, ge=60, le=86_400)
    forget_after_buckets: int = Field(default=1440, ge=1)
    rules: tuple[Rule, ...] = Field(min_length=1)

    @field_validator("bucket_s")
    @classmethod
    def _whole_minutes(cls, value: int) -> int:
        if value % 60:
            raise ValueError("must be a multiple of 60 (the rollups are per minute)")
        return value

    @model_validator(mode="after")
    def _unique_and_forgettable(self) -> RuleSet:
        names = [rule.name for rule in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique, repeated: {', '.join(duplicates)}")
        for rule in self.rules:
            settle = rule.enter_buckets + rule.exit_buckets + rule.cooldown_buckets
            if self.forget_after_buckets <= settle:
                raise ValueError(
                    f"forget_after_buckets ({self.forget_after_buckets}) must exceed enter + exit + cooldown "
                    f"buckets of rule {rule.name!r} ({settle})"
                )
        return self

    @property
    def key_kinds(self) -> tuple[str, ...]:
        """Key kinds some rule watches, in a stable order."""
        return tuple(k for k in ("market", "topic", "ticker") if any(r.key_kind == k for r in self.rules))

    def fingerprint(self) -> str:
        """Hash of the validated rules: detector state is only reused under identical rules."""
        return hashlib.sha256(
            orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        ).hexdigest()[:16]


def _location(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_rules(data: object, source: str = "<rules>") -> RuleSet:
    """Validate already-parsed YAML/JSON data; errors read `source: field: reason`."""
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        problems = [f"{source}: {_location(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise RulesError("invalid alert rules:\n  " + "\n  ".join(problems)) from exc


def load_rules(path: Path | None = None) -> RuleSet:
    """Read and validate a rules file (the shipped `alerts/rules.yaml` when `path` is None)."""
    path = path or DEFAULT_RULES_PATH
    try:
        text = path.read_text()
    except OSError as exc:
        raise RulesError(f"{path}: cannot read rules file: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not valid YAML: {exc}") from exc
    return parse_rules(data, str(path))
