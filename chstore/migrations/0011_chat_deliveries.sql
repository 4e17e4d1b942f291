-- The chat sender's deliveries: every message nines owes a channel (an
-- incident's main message, a thread reply per timeline event, a flap
-- summary, a digest). An intent row is written before each Slack call that
-- posts, and a final row (sent, failed, covered) after it. version ranks
-- final rows above intents, then later rows first (rank << 44 | at_ms), so
-- readers take the state with argMax. holder is in the sort key so that a
-- merge never folds one replica's intent into another's: the sender checks
-- for intents of other replicas before it posts.
CREATE TABLE IF NOT EXISTS ${database}.chat_deliveries ${on_cluster}
(
    incident_id  String,
    channel      String,
    delivery_key String,
    kind         String,
    state        String,
    ts           String,
    hash         String,
    covers       Array(String),
    error        String,
    holder       String,
    at_ms        Int64,
    version      UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (incident_id, channel, delivery_key, holder)
