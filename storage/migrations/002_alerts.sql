-- Alert outbox (insert-only): one row per alert event (firing or resolved), never updated.
CREATE TABLE IF NOT EXISTS {db}.alerts (
    alert_id String,
    run_id String,
    rule String,
    key_kind String,
    key String,
    state Enum8('firing' = 1, 'resolved' = 2),
    severity String,
    window_start DateTime('UTC'),
    window_end DateTime('UTC'),
    detected_at DateTime('UTC'),
    volume UInt32,
    negative UInt32,
    negative_share Float32,
    baseline Float32,
    z_score Float32,
    payload String
) ENGINE = ReplacingMergeTree(detected_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (run_id, alert_id, state);

-- Every delivery attempt per alert event and endpoint (webhook URL, or "grafana" for annotations):
-- outcome delivered = acknowledged, retry = transient failure (tried again), failed = permanent (4xx).
CREATE TABLE IF NOT EXISTS {db}.alert_deliveries (
    alert_id String,
    state String,
    endpoint String,
    attempt UInt16,
    attempted_at DateTime('UTC'),
    status_code UInt16,
    outcome Enum8('delivered' = 1, 'retry' = 2, 'failed' = 3),
    error String
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(attempted_at)
ORDER BY (alert_id, endpoint, attempted_at);

-- Detector state (JSON) after each poll that judged new buckets, so a restarted worker continues where
-- it stopped; merges keep the latest row per run and rules.
CREATE TABLE IF NOT EXISTS {db}.alert_state (
    run_id String,
    rules_fingerprint String,
    cutoff DateTime('UTC'),
    saved_at DateTime('UTC'),
    state String
) ENGINE = ReplacingMergeTree(saved_at)
PARTITION BY tuple()
ORDER BY (run_id, rules_fingerprint)
