-- Impact over time (incidents.Segment), one row per stored version of an
-- incident, written in the same flush as the version and before it: per
-- impact, the stretches during which the incident's alerts of that impact
-- fired, as three parallel arrays (a zero end: still open). Readers take
-- the row whose version is the incident's collapsed version; an incident
-- without one (opened by hand, or stored before this table) weighs its
-- impact over all its periods. A table rather than columns on incidents:
-- ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS, and migrations must be
-- idempotent.
CREATE TABLE IF NOT EXISTS ${database}.incident_segments ${on_cluster}
(
    incident_id     String,
    service         String,
    version         UInt64,
    segment_starts  Array(DateTime('UTC')),
    segment_ends    Array(DateTime('UTC')),
    segment_impacts Array(Int8)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (service, incident_id)
