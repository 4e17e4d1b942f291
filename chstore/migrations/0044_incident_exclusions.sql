-- Periods people marked as not downtime (incidents.Exclusion), as columns
-- of the incident version, so that readers take them with the version they
-- belong to and a version written without them (none marked) has none.
-- Parallel arrays: the period [excluded_from, excluded_to) (a zero end:
-- until the incident ends), who marked it, why, and when (Unix
-- milliseconds). Availability leaves the periods out of the incident's
-- downtime (chstore/availability.go); nothing reads the reasons but
-- people. One statement per column: ClickHouse 18.16 has no ADD COLUMN IF
-- NOT EXISTS, and Migrate counts a column that exists already as added.
ALTER TABLE ${database}.incidents ${on_cluster} ADD COLUMN excluded_from Array(DateTime('UTC'));
ALTER TABLE ${database}.incidents ${on_cluster} ADD COLUMN excluded_to Array(DateTime('UTC'));
ALTER TABLE ${database}.incidents ${on_cluster} ADD COLUMN excluded_by Array(String);
ALTER TABLE ${database}.incidents ${on_cluster} ADD COLUMN excluded_reasons Array(String);
ALTER TABLE ${database}.incidents ${on_cluster} ADD COLUMN excluded_at_ms Array(Int64)
