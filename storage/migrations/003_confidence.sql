-- Calibrated confidence (probability of the chosen sentiment, temperature-scaled by the model;
-- classifications.confidence) rolled up per minute and key, so dashboards and the detector can
-- discount unsure calls: mean confidence, documents called with low confidence, and stories called
-- negative with confidence >= 0.6 (the calibrated model is right on about 0.6 or more of those).
CREATE TABLE IF NOT EXISTS {db}.confidence_1m (
    run_id String,
    key_kind String,
    key String,
    bucket DateTime('UTC'),
    mean_confidence AggregateFunction(avg, Float32),
    unsure_documents AggregateFunction(uniqExactIf, String, UInt8),
    confident_negative_stories AggregateFunction(uniqExactIf, String, UInt8)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(bucket)
ORDER BY (run_id, key_kind, key, bucket);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.confidence_1m_mv TO {db}.confidence_1m AS
SELECT run_id, tupleElement(k, 1) AS key_kind, tupleElement(k, 2) AS key,
       toStartOfMinute(published_at) AS bucket,
       avgState(confidence) AS mean_confidence,
       uniqExactIfState(doc_id, confidence < 0.6) AS unsure_documents,
       uniqExactIfState(story_id, sentiment = 'negative' AND confidence >= 0.6) AS confident_negative_stories
FROM {db}.classifications
ARRAY JOIN arrayConcat([('market', 'all'), ('topic', topic)], arrayMap(t -> ('ticker', t), tickers)) AS k
GROUP BY run_id, key_kind, key, bucket;
