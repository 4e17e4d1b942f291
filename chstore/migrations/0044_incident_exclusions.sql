-- Periods people marked as not downtime (incidents.Exclusion), as columns
-- of the incident version, so that readers take them with the version they
-- belong to and a version written without them (none marked) has none.
-- Parallel arrays: the period [excluded_from, excluded_to) (a zero end:
-- until the incident ends), who marked it, why, and when (Unix
-- milliseconds). Availability leaves the periods out of the incident's
-- downtime (chstore/availability.go); nothing reads the reasons but
-- people.
-- One ALTER for all the columns: it is atomic, so a migration stopped
-- half-way leaves none of them, and on a replicated cluster two nines
-- migrating at once send the same ALTER (ClickHouse 18.16 can lose one of
-- two different ALTERs of one replicated table made at the same moment:
-- with a statement per column, a column went missing in TestClusterShort).
ALTER TABLE ${database}.incidents ${on_cluster}
    ADD COLUMN excluded_from Array(DateTime('UTC')),
    ADD COLUMN excluded_to Array(DateTime('UTC')),
    ADD COLUMN excluded_by Array(String),
    ADD COLUMN excluded_reasons Array(String),
    ADD COLUMN excluded_at_ms Array(Int64)
