-- Timeline entries. IDs are deterministic for events derived from
-- notifications, so a replayed event is an identical row with the same sort
-- key; readers still deduplicate by id (LIMIT 1 BY id) because merges come
-- at an unknown time.
CREATE TABLE IF NOT EXISTS ${database}.incident_events ${on_cluster}
(
    id          String,
    incident_id String,
    at          DateTime('UTC'),
    at_ms       Int64,
    kind        String,
    actor       String,
    text        String,
    fingerprint String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (incident_id, at_ms, id)
