-- One row per stored version of an incident. Versions collapse on merges,
-- at an unknown time: readers collapse them themselves with
-- argMax(col, version) ... GROUP BY id (see read.go).
--
-- opened_at is immutable per id (the StartedAt of the first version written)
-- so every version of an incident shares one sort key and one partition.
-- Zero DateTime values mean "not set" (acknowledged_at, resolved_at,
-- period_ends).
CREATE TABLE IF NOT EXISTS ${database}.incidents ${on_cluster}
(
    id               String,
    service          String,
    group_key        String,
    title            String,
    impact           Int8,
    state            String,
    source           String,
    opened_at        DateTime('UTC'),
    started_at       DateTime('UTC'),
    acknowledged_at  DateTime('UTC'),
    acknowledged_by  String,
    resolved_at      DateTime('UTC'),
    resolved_by      String,
    flaps            UInt32,
    truncated_alerts UInt32,
    labels           String,
    annotations      String,
    runbook_url      String,
    generator_url    String,
    external_url     String,
    caused_by        String,
    period_starts    Array(DateTime('UTC')),
    period_ends      Array(DateTime('UTC')),
    alert_count      UInt32,
    alerts_firing    UInt32,
    facts            UInt32,
    updated_at       DateTime('UTC'),
    version          UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(opened_at)
ORDER BY (service, opened_at, id)
