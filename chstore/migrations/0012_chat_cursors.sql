-- How far the chat sender has handled the incident timeline (by
-- incident_events.inserted_at_ms). The latest row by write time wins; the
-- position may move back when a late event is found.
CREATE TABLE IF NOT EXISTS ${database}.chat_cursors ${on_cluster}
(
    name        String,
    position_ms Int64,
    at_ms       Int64,
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY name
