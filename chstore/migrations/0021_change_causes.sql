-- Changes people marked (cause = 1) or unmarked (cause = 0) as the cause
-- of an incident; the latest mark wins.
CREATE TABLE IF NOT EXISTS ${database}.change_causes ${on_cluster}
(
    incident_id String,
    change_id   String,
    cause       UInt8,
    actor       String,
    at_ms       Int64
)
ENGINE = ReplacingMergeTree(at_ms)
ORDER BY (incident_id, change_id)
