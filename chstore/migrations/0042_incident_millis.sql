-- The milliseconds of an incident's times (issue 15): ClickHouse 18.16 has
-- no DateTime64, and a DateTime holds whole seconds, so each time keeps its
-- seconds where it was (the availability SQL, the sort key and the filters
-- read those) and its milliseconds within that second (0–999) beside it.
-- An incident's time is the DateTime plus these milliseconds; the period
-- arrays are parallel to period_starts and period_ends. Rows stored before
-- this migration (or by an older nines during an upgrade) read the
-- DEFAULT, 0 and [], that is the whole second, as before.
-- One ALTER for all the columns: it is atomic, so a migration stopped
-- half-way leaves none of them, and on a replicated cluster two nines
-- migrating at once send the same ALTER (ClickHouse 18.16 can lose one of
-- two different ALTERs of one replicated table made at the same moment:
-- with a statement per column, a column went missing in TestClusterShort).
ALTER TABLE ${database}.incidents ${on_cluster}
    ADD COLUMN started_at_millis UInt16 DEFAULT 0,
    ADD COLUMN acknowledged_at_millis UInt16 DEFAULT 0,
    ADD COLUMN resolved_at_millis UInt16 DEFAULT 0,
    ADD COLUMN period_starts_millis Array(UInt16),
    ADD COLUMN period_ends_millis Array(UInt16)
