-- Lease heartbeats: every replica writes (name, holder, now) every few
-- seconds. The leader is the holder with the smallest ID among those whose
-- latest heartbeat is within the lease's TTL (chat/lease.go). Rows collapse
-- to one per holder on merges.
CREATE TABLE IF NOT EXISTS ${database}.chat_leases ${on_cluster}
(
    name         String,
    holder       String,
    heartbeat_ms Int64,
    version      UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (name, holder)
