"""The adaptive micro-batching policy (pure: the clock is passed in)."""

from __future__ import annotations

import pytest

from stream_app.batch_policy import AdaptiveBatchPolicy, BatchPlan, FixedBatchPolicy, LinearCost


def _policy(**kw) -> AdaptiveBatchPolicy:
    policy = AdaptiveBatchPolicy(
        kw.pop("min_batch", 1), kw.pop("max_batch", 64), kw.pop("max_wait_s", 0.5), **kw
    )
    # inference: 5 ms + 3 ms/doc; insert: 30 ms + 0.1 ms/doc
    for n in (1, 8, 32, 64):
        policy.observe_stage("infer", n, 0.005 + 0.003 * n)
        policy.observe_stage("insert", n, 0.030 + 0.0001 * n)
    return policy


def _arrivals(policy: AdaptiveBatchPolicy, rate: float, seconds: float, start: float = 0.0) -> float:
    now, step = start, 0.01
    while now < start + seconds:
        now += step
        policy.observe_arrivals(round(rate * step), now)
    return now


def test_linear_cost_recovers_fixed_and_per_document_parts() -> None:
    cost = LinearCost()
    for n in (1, 4, 16, 64):
        cost.observe(n, 0.02 + 0.001 * n)
    fixed, per_doc = cost.coefficients()
    assert fixed == pytest.approx(0.02) and per_doc == pytest.approx(0.001)
    assert cost.seconds(10) == pytest.approx(0.03)


def test_one_batch_size_only_counts_as_fixed_cost() -> None:
    cost = LinearCost()
    cost.observe(64, 0.2)
    cost.observe(64, 0.2)
    assert cost.coefficients() == pytest.approx((0.2, 0.0))


def test_no_traffic_means_small_batches_and_bounded_wait() -> None:
    plan = _policy().plan(queued=1, now=0.0)
    assert plan.size == 1 and plan.wait_s == 0.0


def test_batch_grows_with_the_arrival_rate_and_stays_within_bounds() -> None:
    sizes = []
    for rate in (20, 100, 200, 400):
        policy = _policy()
        now = _arrivals(policy, rate, 5.0)
        sizes.append(policy.plan(queued=0, now=now).size)
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert all(1 <= s <= 64 for s in sizes)
    # 400 docs/s with 3 ms/doc of inference cannot be kept up with: take the maximum.
    assert sizes[-1] == 64


def test_target_keeps_every_stage_under_the_arrival_time_of_its_batch() -> None:
    policy = _policy(headroom=1.0)
    size = policy.target_size(100.0)
    # insert needs n >= 0.030 / (0.01 - 0.0001) = 3.03 -> 4; inference n >= 0.005 / 0.007 -> 1
    assert size == 4


def test_wait_is_bounded_by_fill_time_service_time_and_the_setting() -> None:
    policy = _policy(max_wait_s=0.05)
    now = _arrivals(policy, 100, 5.0)
    plan = policy.plan(queued=1, now=now)
    assert 0 < plan.wait_s <= 0.05
    slow = _policy(max_wait_s=10.0)
    now = _arrivals(slow, 2, 20.0)
    plan = slow.plan(queued=0, now=now)
    assert plan.wait_s <= slow.stages["insert"].seconds(plan.size) + 1e-9


def test_a_backlog_is_taken_at_once_up_to_max_batch() -> None:
    policy = _policy()
    now = _arrivals(policy, 50, 2.0)
    assert policy.plan(queued=500, now=now) == BatchPlan(64, 0.0)


def test_bounds_are_validated() -> None:
    with pytest.raises(ValueError):
        AdaptiveBatchPolicy(min_batch=8, max_batch=4, max_wait_s=0.1)


def test_fixed_policy_is_max_batch_or_max_wait() -> None:
    policy = FixedBatchPolicy(32, 0.5)
    assert policy.plan(queued=3, now=0.0) == BatchPlan(32, 0.5)
    assert policy.plan(queued=40, now=0.0) == BatchPlan(32, 0.0)
