-- Archive of every ingested document (history outlives Kafka retention) and the classified rows.
-- ReplacingMergeTree + FINAL / uniqExact keep counts exact when a batch is written twice.
CREATE TABLE IF NOT EXISTS {db}.documents (
    doc_id String,
    story_id String,
    source String,
    kind String,
    published_at DateTime('UTC'),
    ingested_at DateTime('UTC'),
    title String,
    text String,
    url String,
    lang String,
    tickers Array(String),
    meta String
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(published_at)
ORDER BY (published_at, doc_id);

CREATE TABLE IF NOT EXISTS {db}.classifications (
    run_id String,
    doc_id String,
    story_id String,
    source String,
    kind String,
    published_at DateTime('UTC'),
    ingested_at DateTime('UTC'),
    stored_at DateTime('UTC'),
    title String,
    url String,
    tickers Array(String),
    topic String,
    topic_prob Float32,
    sentiment Enum8('negative' = -1, 'neutral' = 0, 'positive' = 1),
    p_negative Float32,
    p_neutral Float32,
    p_positive Float32,
    score Float32,
    confidence Float32,
    model_version String,
    inference_ms Float32,
    pipeline_latency_ms UInt32,
    batch_size UInt16
) ENGINE = ReplacingMergeTree(stored_at)
PARTITION BY toYYYYMM(published_at)
ORDER BY (run_id, published_at, doc_id);

-- One-minute rollups per key (market / topic / ticker). Exact-distinct states count each story once,
-- so a redelivered batch or a syndicated reprint never inflates volume or negative counts.
CREATE TABLE IF NOT EXISTS {db}.sentiment_1m (
    run_id String,
    key_kind String,
    key String,
    bucket DateTime('UTC'),
    stories AggregateFunction(uniqExact, String),
    negative_stories AggregateFunction(uniqExactIf, String, UInt8),
    documents AggregateFunction(uniqExact, String),
    doc_scores AggregateFunction(groupUniqArray, Tuple(String, Float32))
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(bucket)
ORDER BY (run_id, key_kind, key, bucket);

-- One view feeds every key kind: each row joins to the market, its topic and each of its tickers.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sentiment_1m_mv TO {db}.sentiment_1m AS
SELECT run_id, tupleElement(k, 1) AS key_kind, tupleElement(k, 2) AS key,
       toStartOfMinute(published_at) AS bucket,
       uniqExactState(story_id) AS stories,
       uniqExactIfState(story_id, sentiment = 'negative') AS negative_stories,
       uniqExactState(doc_id) AS documents,
       groupUniqArrayState(tuple(doc_id, score)) AS doc_scores
FROM {db}.classifications
ARRAY JOIN arrayConcat([('market', 'all'), ('topic', topic)], arrayMap(t -> ('ticker', t), tickers)) AS k
GROUP BY run_id, key_kind, key, bucket;

-- Per-batch pipeline metrics (one row per stored batch) for the health dashboard.
CREATE TABLE IF NOT EXISTS {db}.pipeline_batches (
    worker String,
    run_id String,
    stored_at DateTime('UTC'),
    batch_size UInt32,
    invalid UInt32,
    decode_ms Float32,
    inference_ms Float32,
    insert_ms Float32,
    model_version String,
    backend String
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(stored_at)
ORDER BY (stored_at, worker);

CREATE TABLE IF NOT EXISTS {db}.dead_letters (
    received_at DateTime('UTC'),
    topic String,
    partition UInt32,
    offset UInt64,
    reason String,
    payload String
) ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(received_at)
ORDER BY (topic, partition, offset)
