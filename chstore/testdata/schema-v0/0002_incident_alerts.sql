-- One row per state of an alert occurrence (fingerprint + start to the
-- millisecond). version ranks a resolved row above every firing row of the
-- same occurrence, whatever order they arrive in (see alertVersion in
-- write.go). ends_at_ms is 0 while the alert fires.
CREATE TABLE IF NOT EXISTS ${database}.incident_alerts ${on_cluster}
(
    incident_id   String,
    service       String,
    fingerprint   String,
    starts_at     DateTime('UTC'),
    starts_at_ms  Int64,
    ends_at       DateTime('UTC'),
    ends_at_ms    Int64,
    status        String,
    impact        Int8,
    labels        String,
    annotations   String,
    generator_url String,
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(starts_at)
ORDER BY (incident_id, fingerprint, starts_at_ms)
