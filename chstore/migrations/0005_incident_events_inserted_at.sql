-- 0003_incident_events.sql gained inserted_at_ms after it had shipped:
-- databases created before that have the table without the column, and
-- every event insert failed there. This adds it where it is missing
-- (ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS: Migrate counts a
-- column that exists already as added). Rows stored before read 0.
ALTER TABLE ${database}.incident_events ${on_cluster} ADD COLUMN inserted_at_ms Int64
