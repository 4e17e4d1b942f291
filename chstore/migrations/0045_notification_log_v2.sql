-- The notification log again, as notification_log (0040) with two
-- changes that make reading it cheap; nines writes here from this version
-- on and reads both tables (the old one empties as retention drops its
-- days).
-- * body_size: the deriver first reads records' keys and sizes to choose
--   a page; length(body) read every body of the range for it (on 18.16 a
--   String has no size of its own).
-- * index_granularity = 64: a record is tens of kilobytes, and 18.16
--   reads whole granules (8,192 rows by default, no adaptive granularity):
--   the bodies of a page of a merged part cost the whole part's. Current
--   ClickHouse also bounds a granule by bytes (10 MB) and takes the same.
CREATE TABLE IF NOT EXISTS ${database}.notification_log_v2 ${on_cluster}
(
    day         Date,
    inserted_ms Int64,
    hash        String,
    kind        String,
    body        String,
    body_size   UInt32
)
ENGINE = MergeTree()
PARTITION BY day
ORDER BY (inserted_ms, hash)
SETTINGS index_granularity = 64
