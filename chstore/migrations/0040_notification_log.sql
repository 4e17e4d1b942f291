-- Log first (package journal): every notification the webhook takes and
-- every action people take, stored as it came (the notification's stored
-- form, incidents.MarshalNotification; a command as JSON) before anything
-- is derived from it. The deriver reads it in (inserted_ms, hash) order;
-- `nines replay` derives a period again from it. Partitioned by day so
-- that retention drops whole partitions (18.16 has no TTL). The deriver's
-- lease and cursor use the chat_leases and chat_cursors tables under the
-- name "deriver": they hold any singleton's lease and cursor.
CREATE TABLE IF NOT EXISTS ${database}.notification_log ${on_cluster}
(
    day         Date,
    inserted_ms Int64,
    hash        String,
    kind        String,
    body        String
)
ENGINE = MergeTree()
PARTITION BY day
ORDER BY (inserted_ms, hash)
