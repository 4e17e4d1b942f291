ATTACH TABLE persist
(
    x UInt8
)
ENGINE = MergeTree
ORDER BY x
SETTINGS index_granularity = 8192
