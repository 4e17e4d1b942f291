-- What the deriver made of each command of notification_log: "ok" with the
-- incident it left, or the kind of error and its message. The replica that
-- logged the command answers its caller from here.
CREATE TABLE IF NOT EXISTS ${database}.command_results ${on_cluster}
(
    id          String,
    incident_id String,
    status      String,
    message     String,
    at_ms       Int64
)
ENGINE = ReplacingMergeTree()
ORDER BY id
