-- Changes to services (deploys, rollbacks, config, feature flags, scaling),
-- one row per recorded version; the client's id is the idempotency key and
-- the latest recorded version wins. service and at are immutable per id.
CREATE TABLE IF NOT EXISTS ${database}.changes ${on_cluster}
(
    id           String,
    service      String,
    kind         String,
    version_name String,
    commit_sha   String,
    environment  String,
    status       String,
    rollout      Float64,
    actor        String,
    at           DateTime('UTC'),
    at_ms        Int64,
    url          String,
    description  String,
    recorded_ms  Int64
)
ENGINE = ReplacingMergeTree(recorded_ms)
PARTITION BY toYYYYMM(at)
ORDER BY (service, at_ms, id)
