-- The chat sender's messages: one incident's message in one channel (its
-- Slack channel ID and ts, so that any replica can update it), one row per
-- write (post, update). version is the write time in Unix ms: readers take
-- the latest per (incident_id, channel) with argMax (chstore/chat.go).
CREATE TABLE IF NOT EXISTS ${database}.chat_messages ${on_cluster}
(
    incident_id String,
    channel     String,
    channel_id  String,
    ts          String,
    hash        String,
    at_ms       Int64,
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (incident_id, channel)
