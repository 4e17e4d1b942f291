package chstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ninesops/nines/changes"
	"github.com/ninesops/nines/incidents"
)

// Changes are rare next to alerts (a few per deploy), so each is its own
// INSERT rather than joining the incident batches.

const insertChange = `INSERT INTO changes (id, service, kind, version_name, commit_sha, environment, status,
rollout, actor, at, at_ms, url, description, recorded_ms)`

// RecordChange stores a change version (changes.Store).
func (s *Store) RecordChange(ctx context.Context, c changes.Change) error {
	return s.insert(ctx, "changes", insertChange, 1, func(appendRow func(...any) error) error {
		return appendRow(c.ID, c.Service, string(c.Kind), c.Version, c.Commit, c.Environment, string(c.Status),
			c.Rollout, c.Actor, c.At.UTC(), c.At.UnixMilli(), c.URL, c.Description, c.RecordedAt.UnixMilli())
	})
}

// collapsedChanges is one row per change id, its latest recorded version.
// service and at_ms are immutable per id (part of the sort key).
const collapsedChanges = `SELECT id, service, at_ms,
    argMax(kind, recorded_ms) AS c_kind, argMax(version_name, recorded_ms) AS c_version,
    argMax(commit_sha, recorded_ms) AS c_commit, argMax(environment, recorded_ms) AS c_environment,
    argMax(status, recorded_ms) AS c_status, argMax(rollout, recorded_ms) AS c_rollout,
    argMax(actor, recorded_ms) AS c_actor, argMax(url, recorded_ms) AS c_url,
    argMax(description, recorded_ms) AS c_description, max(recorded_ms) AS c_recorded_ms
FROM changes
WHERE %s
GROUP BY id, service, at_ms`

// Changes returns changes matching q, newest first (changes.Store).
func (s *Store) Changes(ctx context.Context, q changes.Query) ([]changes.Change, error) {
	const op = "query_changes"
	s.metrics.op(op)
	where, args := []string{"1"}, []any{}
	if len(q.IDs) > 0 {
		where, args = append(where, "id IN ?"), append(args, inList(q.IDs))
	}
	if len(q.Services) > 0 {
		where, args = append(where, "service IN ?"), append(args, inList(q.Services))
	}
	if !q.From.IsZero() {
		where, args = append(where, "at_ms >= ?"), append(args, q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		where, args = append(where, "at_ms <= ?"), append(args, q.To.UnixMilli())
	}
	limit := q.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	query := fmt.Sprintf(collapsedChanges, strings.Join(where, " AND ")) +
		fmt.Sprintf("\nORDER BY at_ms DESC, id\nLIMIT %d", limit)
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, s.fail(ctx, op, err, "query changes")
	}
	defer rows.Close()
	var out []changes.Change
	for rows.Next() {
		var (
			c                changes.Change
			atMS, recordedMS int64
			kind, status     string
		)
		if err := rows.Scan(&c.ID, &c.Service, &atMS, &kind, &c.Version, &c.Commit, &c.Environment,
			&status, &c.Rollout, &c.Actor, &c.URL, &c.Description, &recordedMS); err != nil {
			return nil, s.fail(ctx, op, err, "read changes")
		}
		c.Kind, c.Status = changes.Kind(kind), changes.Status(status)
		c.At, c.RecordedAt = fromMS(atMS), fromMS(recordedMS)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err, "read changes")
	}
	return out, nil
}

// SetCause records a person's mark on a change as an incident's cause
// (changes.Store).
func (s *Store) SetCause(ctx context.Context, incidentID, changeID, actor string, at time.Time, cause bool) error {
	const q = `INSERT INTO change_causes (incident_id, change_id, cause, actor, at_ms)`
	var c uint8
	if cause {
		c = 1
	}
	return s.insert(ctx, "change_causes", q, 1, func(appendRow func(...any) error) error {
		return appendRow(incidentID, changeID, c, actor, at.UnixMilli())
	})
}

// Causes returns the changes currently marked as the incident's cause
// (changes.Store).
func (s *Store) Causes(ctx context.Context, incidentID string) (map[string]bool, error) {
	const op = "query_causes"
	s.metrics.op(op)
	const q = `SELECT change_id FROM change_causes WHERE incident_id = ?
GROUP BY change_id HAVING argMax(cause, at_ms) = 1`
	rows, err := s.conn.Query(ctx, q, incidentID)
	if err != nil {
		return nil, s.fail(ctx, op, err, "causes of %s", incidentID)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.fail(ctx, op, err, "causes of %s", incidentID)
		}
		out[id] = true
	}
	return out, s.wrapRowsErr(ctx, op, rows.Err())
}

// doraQuery counts, per service, the deploys completed in [from, to), how
// many failed (failed or rolled back, marked as an incident's cause, or
// followed by a rollback of the service within a day), the rollbacks, and
// the incidents started in the window and resolved with their time to
// restore. Arrays stand in for a join on time ranges.
func doraQuery() string {
	return `SELECT service,
    sum(deploys) AS deployments, sum(failures) AS failed, sum(rollbacks) AS rolled,
    sum(restored) AS restored_count, sum(restore_seconds) AS restore_sum
FROM (
    SELECT service, count() AS deploys,
        countIf(tupleElement(d, 2) IN ('failed', 'rolled_back')
            OR tupleElement(d, 1) IN (SELECT change_id FROM change_causes GROUP BY incident_id, change_id HAVING argMax(cause, at_ms) = 1)
            OR arrayExists(r -> r > tupleElement(d, 3) AND r <= tupleElement(d, 3) + 86400000, rollback_times)) AS failures,
        toUInt64(0) AS rollbacks, toUInt64(0) AS restored, toFloat64(0) AS restore_seconds
    FROM (
        -- Per service: the deploys completed in the window, and the
        -- rollbacks up to a day after it. (18.16 cannot capture a joined
        -- column in a lambda, so no JOIN here.)
        SELECT service,
            groupArrayIf((id, c_status, at_ms), c_kind = 'deploy' AND c_status != 'started' AND at_ms < ?) AS deploy_list,
            groupArrayIf(at_ms, c_kind = 'rollback') AS rollback_times
        FROM (
            SELECT id, service, at_ms, argMax(status, recorded_ms) AS c_status, argMax(kind, recorded_ms) AS c_kind
            FROM changes WHERE at_ms >= ? AND at_ms < ?
            GROUP BY id, service, at_ms)
        GROUP BY service
    )
    ARRAY JOIN deploy_list AS d
    GROUP BY service

    UNION ALL

    SELECT service, toUInt64(0), toUInt64(0), count(), toUInt64(0), toFloat64(0)
    FROM (
        SELECT id, service, argMax(kind, recorded_ms) AS c_kind
        FROM changes WHERE at_ms >= ? AND at_ms < ?
        GROUP BY id, service)
    WHERE c_kind = 'rollback'
    GROUP BY service

    UNION ALL

    SELECT service, toUInt64(0), toUInt64(0), toUInt64(0), count(),
        sum(toFloat64(last_resolved_at) - toFloat64(last_started_at))
    FROM (` + latestVersions("id, service, started_at AS last_started_at, resolved_at AS last_resolved_at", "1") + `)
    WHERE last_resolved_at != toDateTime(0, 'UTC') AND last_started_at >= toDateTime(?, 'UTC') AND last_started_at < toDateTime(?, 'UTC')
    GROUP BY service
)
GROUP BY service
ORDER BY service`
}

// DORA counts delivery figures per service over [from, to) (changes.Store).
func (s *Store) DORA(ctx context.Context, from, to time.Time) ([]changes.DORARaw, error) {
	const op = "query_dora"
	s.metrics.op(op)
	f, t := from.UnixMilli(), to.UnixMilli()
	rows, err := s.conn.Query(ctx, doraQuery(), t, f, t+86400000, f, t, from.Unix(), to.Unix())
	if err != nil {
		return nil, s.fail(ctx, op, err, "dora figures")
	}
	defer rows.Close()
	var out []changes.DORARaw
	for rows.Next() {
		var (
			r                                     changes.DORARaw
			deploys, failures, rollbacks, restore uint64
		)
		if err := rows.Scan(&r.Service, &deploys, &failures, &rollbacks, &restore, &r.RestoreSecondsSum); err != nil {
			return nil, s.fail(ctx, op, err, "dora figures")
		}
		r.Deployments, r.Failures, r.Rollbacks, r.Restored = int(deploys), int(failures), int(rollbacks), int(restore)
		out = append(out, r)
	}
	return out, s.wrapRowsErr(ctx, op, rows.Err())
}

// OpenIncidentsOfServices returns the open incidents of services (changes.Incidents).
func (s *Store) OpenIncidentsOfServices(ctx context.Context, services []string) ([]*incidents.Incident, error) {
	if len(services) == 0 {
		return nil, nil
	}
	q := selectIncidents("service IN ?", []string{"last_state != 'resolved'"}, "ORDER BY started_at, id")
	incs, err := s.queryIncidents(ctx, "query_open_incidents_of_services", q, inList(services))
	if err != nil {
		return nil, fmt.Errorf("open incidents: %w", err)
	}
	return incs, nil
}

func (s *Store) wrapRowsErr(ctx context.Context, op string, err error) error {
	if err != nil {
		return s.fail(ctx, op, err, "read rows")
	}
	return nil
}
