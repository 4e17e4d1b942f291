-- The impact an event records, as a column: an incident's impact when it
-- was opened (kind 'opened') or changed (kind 'impact_changed'); -1 for
-- events that record none. nines_incidents_opened_total{impact} counts by
-- it, so rewording a timeline text changes no figure. (No IF NOT EXISTS:
-- ClickHouse 18.16 lacks it; Migrate takes "column already exists" as done.)
ALTER TABLE ${database}.incident_events ${on_cluster}
    ADD COLUMN impact Int8 DEFAULT -1;

-- Opened events stored before this column recorded their impact only in
-- their text ("… with impact outage"): read it from there once. The WHERE
-- makes the mutation a no-op when it runs again.
ALTER TABLE ${database}.incident_events ${on_cluster}
    UPDATE impact = multiIf(
        extract(text, 'with impact ([a-z]+)$') = 'outage', toInt8(2),
        extract(text, 'with impact ([a-z]+)$') = 'degraded', toInt8(1),
        extract(text, 'with impact ([a-z]+)$') = 'none', toInt8(0), toInt8(-1))
    WHERE kind = 'opened' AND impact = -1
