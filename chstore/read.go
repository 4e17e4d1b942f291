package chstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	chdriver "github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// Reading never trusts that merges have happened: every query collapses
// the versions of a row itself.
//
// latestVersions is the one form of "the latest version of each
// incident" that every read uses (the API's reads, the availability
// sweeps, DORA, and through DashboardQueries the dashboards): cols (column
// expressions of incidents) of the highest version of each ID among the
// rows that satisfy cond. ORDER BY … LIMIT 1 BY id keeps each ID's highest
// version, as argMax(…, version) … GROUP BY id would, at two thirds of the
// cost on 18.16, where argMax copies every array into its state.
//
// cond must test immutable columns only: id, service, group_key (the ID is
// derived from them) and opened_at (every version carries the first
// version's). A condition on a mutable column (state, impact, started_at,
// …) would select among versions before they collapse; filter them in an
// outer query instead (see selectIncidents).
func latestVersions(cols, cond string) string {
	return "SELECT " + cols + "\nFROM incidents\nWHERE " + cond + "\nORDER BY id, version DESC\nLIMIT 1 BY id"
}

// collapsedColumns are every column of an incident's latest version. The
// aliases (last_*) differ from every column name on purpose: ClickHouse
// substitutes aliases everywhere in a query, so an alias named version
// would end up in the ORDER BY of latestVersions, and one named like a
// column would replace it in the condition. The outer filters of
// selectIncidents' callers use these names; incidentColumns names them
// back.
const collapsedColumns = `id,
    service,
    group_key,
    title AS last_title,
    impact AS last_impact,
    state AS last_state,
    source AS last_source,
    opened_at AS first_opened_at,
    started_at AS last_started_at,
    acknowledged_at AS last_acknowledged_at,
    acknowledged_by AS last_acknowledged_by,
    resolved_at AS last_resolved_at,
    resolved_by AS last_resolved_by,
    flaps AS last_flaps,
    truncated_alerts AS last_truncated_alerts,
    labels AS last_labels,
    annotations AS last_annotations,
    runbook_url AS last_runbook_url,
    generator_url AS last_generator_url,
    external_url AS last_external_url,
    caused_by AS last_caused_by,
    period_starts AS last_period_starts,
    period_ends AS last_period_ends,
    facts AS last_facts,
    updated_at AS last_updated_at,
    version AS last_version,
    excluded_from AS last_excluded_from,
    excluded_to AS last_excluded_to,
    excluded_by AS last_excluded_by,
    excluded_reasons AS last_excluded_reasons,
    excluded_at_ms AS last_excluded_at_ms`

// incidentColumns names the collapsed columns back, in scanIncident's
// order, for the outer query.
const incidentColumns = `id, service, group_key, last_title AS title, last_impact AS impact, last_state AS state,
last_source AS source, first_opened_at AS opened_at, last_started_at AS started_at,
last_acknowledged_at AS acknowledged_at, last_acknowledged_by AS acknowledged_by,
last_resolved_at AS resolved_at, last_resolved_by AS resolved_by, last_flaps AS flaps,
last_truncated_alerts AS truncated_alerts, last_labels AS labels, last_annotations AS annotations,
last_runbook_url AS runbook_url, last_generator_url AS generator_url,
last_external_url AS external_url, last_caused_by AS caused_by,
last_period_starts AS period_starts, last_period_ends AS period_ends, last_facts AS facts,
last_updated_at AS updated_at, last_version AS version,
last_excluded_from AS excluded_from, last_excluded_to AS excluded_to, last_excluded_by AS excluded_by,
last_excluded_reasons AS excluded_reasons, last_excluded_at_ms AS excluded_at_ms`

// collapsedMillis and millisColumns add the milliseconds of the
// incident's times (the *_millis columns beside its DateTime columns,
// migration 0042) to collapsedColumns and incidentColumns: every read
// of incidents has them; the dashboards' tables (DashboardQueries), which
// show times to the second, do not.
const (
	collapsedMillis = `,
    started_at_millis AS last_started_at_millis,
    acknowledged_at_millis AS last_acknowledged_at_millis,
    resolved_at_millis AS last_resolved_at_millis,
    period_starts_millis AS last_period_starts_millis,
    period_ends_millis AS last_period_ends_millis`
	millisColumns = `,
last_started_at_millis AS started_at_millis, last_acknowledged_at_millis AS acknowledged_at_millis,
last_resolved_at_millis AS resolved_at_millis, last_period_starts_millis AS period_starts_millis,
last_period_ends_millis AS period_ends_millis`
)

// selectIncidents builds: collapse with inner (on immutable columns), then
// filter with outer, then tail (ORDER BY, LIMIT). It selects what
// scanIncident reads.
func selectIncidents(inner string, outer []string, tail string) string {
	return incidentsQuery(inner, outer, tail, true)
}

// incidentsQuery is selectIncidents, with the milliseconds of the
// incidents' times (millisColumns) or without.
func incidentsQuery(inner string, outer []string, tail string, millis bool) string {
	cols, agg := incidentColumns, ""
	if millis {
		cols, agg = incidentColumns+millisColumns, collapsedMillis
	}
	q := "SELECT " + cols + "\nFROM (\n" + latestVersions(collapsedColumns+agg, inner) + "\n)"
	if len(outer) > 0 {
		q += "\nWHERE " + strings.Join(outer, " AND ")
	}
	return q + "\n" + tail
}

// scanIncident reads one row of incidentColumns and millisColumns.
func scanIncident(rows chdriver.Rows) (*incidents.Incident, time.Time, error) {
	var (
		millis                                 [3]uint16 // started, acknowledged, resolved
		periodStartsMillis, periodEndsMillis   []uint16
		inc                                    incidents.Incident
		impact                                 int8
		state                                  string
		openedAt, startedAt, ackAt, resolvedAt time.Time
		updatedAt                              time.Time
		flaps, truncated, facts                uint32
		labels, annotations                    string
		periodStarts, periodEnds               []time.Time
		version                                uint64
		ex                                     exclusionCols
	)
	err := rows.Scan(&inc.ID, &inc.Service, &inc.GroupKey, &inc.Title, &impact, &state, &inc.Source,
		&openedAt, &startedAt, &ackAt, &inc.AcknowledgedBy, &resolvedAt, &inc.ResolvedBy, &flaps, &truncated,
		&labels, &annotations, &inc.RunbookURL, &inc.GeneratorURL, &inc.ExternalURL, &inc.CausedBy,
		&periodStarts, &periodEnds, &facts, &updatedAt, &version,
		&ex.from, &ex.to, &ex.by, &ex.reasons, &ex.atMS,
		&millis[0], &millis[1], &millis[2], &periodStartsMillis, &periodEndsMillis)
	if err != nil {
		return nil, time.Time{}, err
	}
	inc.Impact = incidents.Impact(impact)
	inc.State = incidents.State(state)
	inc.StartedAt = fromDateTimeMillis(startedAt, millis[0])
	inc.AcknowledgedAt = fromDateTimeMillis(ackAt, millis[1])
	inc.ResolvedAt = fromDateTimeMillis(resolvedAt, millis[2])
	inc.Flaps = int(flaps)
	inc.TruncatedAlerts = int(truncated)
	inc.Facts = facts
	inc.UpdatedAt = updatedAtFromVersion(updatedAt, version)
	if inc.Labels, err = decodeMap(labels); err != nil {
		return nil, time.Time{}, fmt.Errorf("incident %s: %w", inc.ID, err)
	}
	if inc.Annotations, err = decodeMap(annotations); err != nil {
		return nil, time.Time{}, fmt.Errorf("incident %s: %w", inc.ID, err)
	}
	// Versions stored before the millis columns have no millis arrays
	// (at) and read their periods to the second.
	at := func(ms []uint16, i int) uint16 {
		if len(ms) != len(periodStarts) {
			return 0
		}
		return ms[i]
	}
	for i, start := range periodStarts {
		p := incidents.Period{Start: fromDateTimeMillis(start, at(periodStartsMillis, i))}
		if i < len(periodEnds) {
			p.End = fromDateTimeMillis(periodEnds[i], at(periodEndsMillis, i))
		}
		inc.Periods = append(inc.Periods, p)
	}
	for i := range ex.from {
		if i >= len(ex.to) || i >= len(ex.by) || i >= len(ex.reasons) || i >= len(ex.atMS) {
			break
		}
		inc.Excluded = append(inc.Excluded, incidents.Exclusion{From: fromDateTime(ex.from[i]), To: fromDateTime(ex.to[i]),
			By: ex.by[i], Reason: ex.reasons[i], At: fromMS(ex.atMS[i])})
	}
	return &inc, openedAt.UTC(), nil
}

// updatedAtFromVersion restores UpdatedAt to the millisecond: updated_at
// holds whole seconds, and the version's low bits hold the milliseconds
// (incidents.Incident.Version). That keeps Version() of a read incident
// equal to the stored version.
func updatedAtFromVersion(updatedAt time.Time, version uint64) time.Time {
	sec := fromDateTime(updatedAt)
	if sec.IsZero() {
		return time.Time{}
	}
	base := sec.UnixMilli()
	ms := int64(version & (1<<incidents.VersionTimeBits - 1))
	if ms < base || ms >= base+1000 {
		return sec // not from Version(): keep the seconds
	}
	return time.UnixMilli(ms).UTC()
}

// scanIncidents reads and closes rows of collapsed incidents, and
// remembers their opened_at for later writes.
func (s *Store) scanIncidents(rows chdriver.Rows) ([]*incidents.Incident, error) {
	defer rows.Close()
	var incs []*incidents.Incident
	for rows.Next() {
		inc, openedAt, err := scanIncident(rows)
		if err != nil {
			return nil, err
		}
		s.opened.put(inc.ID, openedAt)
		incs = append(incs, inc)
	}
	return incs, rows.Err()
}

// queryIncidents runs q, reads incidents and their alerts, and remembers
// their opened_at for later writes.
func (s *Store) queryIncidents(ctx context.Context, op, q string, args ...any) ([]*incidents.Incident, error) {
	return s.queryIncidentsWith(ctx, op, nil, q, args...)
}

// queryIncidentsWith is queryIncidents with the key table k sent beside q.
func (s *Store) queryIncidentsWith(ctx context.Context, op string, k *keyTable, q string, args ...any) ([]*incidents.Incident, error) {
	incs, err := s.queryIncidentRows(ctx, op, k, q, args...)
	if err != nil {
		return nil, err
	}
	if err := s.loadAlerts(ctx, incs); err != nil {
		return nil, err
	}
	return incs, nil
}

// queryIncidentRows is queryIncidentsWith without the alerts.
func (s *Store) queryIncidentRows(ctx context.Context, op string, k *keyTable, q string, args ...any) ([]*incidents.Incident, error) {
	s.metrics.op(op)
	rows, err := s.conn.Query(k.context(ctx), q, args...)
	if err != nil {
		return nil, s.fail(ctx, op, err, "query incidents")
	}
	incs, err := s.scanIncidents(rows) // closes rows
	if err != nil {
		return nil, s.fail(ctx, op, err, "read incidents")
	}
	return incs, nil
}

// countAlerts returns how many alerts loadAlerts would give each of incs.
func (s *Store) countAlerts(ctx context.Context, incs []*incidents.Incident) (map[string]int, error) {
	const op = "query_alert_counts"
	const q = `SELECT incident_id, count()
FROM (
    SELECT incident_id
` + liveAlerts + `
)
GROUP BY incident_id`
	counts := make(map[string]int, len(incs))
	for chunk := range slices.Chunk(incs, maxInList) {
		ids := make([]string, len(chunk))
		for i, inc := range chunk {
			ids[i] = inc.ID
		}
		s.metrics.op(op)
		rows, err := s.conn.Query(ctx, q, inList(ids))
		if err != nil {
			return nil, s.fail(ctx, op, err, "count alerts")
		}
		for rows.Next() {
			var (
				id string
				n  uint64
			)
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return nil, s.fail(ctx, op, err, "count alerts")
			}
			counts[id] = int(n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, s.fail(ctx, op, err, "count alerts")
		}
	}
	return counts, nil
}

// liveAlerts is the alert occurrences of the incidents bound to its IN
// list, each collapsed to its highest version, without those moved to
// another incident: what loadAlerts reads and countAlerts counts.
const liveAlerts = `FROM incident_alerts
WHERE incident_id IN ?
GROUP BY incident_id, fingerprint, starts_at_ms
HAVING argMax(status, version) != 'moved'`

// maxInList bounds the values bound into one IN list.
const maxInList = 1000

// loadAlerts sets the Alerts of incs: every occurrence collapsed to its
// highest version, ordered by start then fingerprint.
func (s *Store) loadAlerts(ctx context.Context, incs []*incidents.Incident) error {
	const op = "query_alerts"
	byID := make(map[string]*incidents.Incident, len(incs))
	ids := make([]string, 0, len(incs))
	for _, inc := range incs {
		byID[inc.ID] = inc
		ids = append(ids, inc.ID)
	}
	const q = `SELECT
    incident_id,
    fingerprint,
    starts_at_ms,
    argMax(ends_at_ms, version),
    argMax(status, version),
    argMax(impact, version),
    argMax(labels, version),
    argMax(annotations, version),
    argMax(generator_url, version)
` + liveAlerts + `
ORDER BY incident_id, starts_at_ms, fingerprint`
	for chunk := range slices.Chunk(ids, maxInList) {
		s.metrics.op(op)
		rows, err := s.conn.Query(ctx, q, inList(chunk))
		if err != nil {
			return s.fail(ctx, op, err, "query alerts")
		}
		err = func() error {
			defer rows.Close()
			for rows.Next() {
				var (
					id, status, labels, annotations string
					a                               incidents.Alert
					startsMS, endsMS                int64
					impact                          int8
				)
				if err := rows.Scan(&id, &a.Fingerprint, &startsMS, &endsMS, &status, &impact,
					&labels, &annotations, &a.GeneratorURL); err != nil {
					return err
				}
				a.StartsAt, a.EndsAt = fromMS(startsMS), fromMS(endsMS)
				a.Status = incidents.AlertStatus(status)
				a.Impact = incidents.Impact(impact)
				if a.Labels, err = decodeMap(labels); err != nil {
					return fmt.Errorf("incident %s alert %s: %w", id, a.Fingerprint, err)
				}
				if a.Annotations, err = decodeMap(annotations); err != nil {
					return fmt.Errorf("incident %s alert %s: %w", id, a.Fingerprint, err)
				}
				if inc := byID[id]; inc != nil {
					inc.Alerts = append(inc.Alerts, a)
				}
			}
			return rows.Err()
		}()
		if err != nil {
			return s.fail(ctx, op, err, "read alerts")
		}
	}
	return nil
}

// Get returns one incident with its alerts, or an error wrapping
// fault.ErrNotFound (incidents.Store, incidents.Reader).
func (s *Store) Get(ctx context.Context, id string) (*incidents.Incident, error) {
	incs, err := s.queryIncidents(ctx, "query_get", selectIncidents("id = ?", nil, ""), id)
	if err != nil {
		return nil, fmt.Errorf("get incident %s: %w", id, err)
	}
	if len(incs) == 0 {
		return nil, fmt.Errorf("get incident %s: %w", id, fault.ErrNotFound)
	}
	return incs[0], nil
}

// Latest returns, for each ref, its most recently opened incident with its
// alerts; refs without incidents are absent (incidents.Store). Concurrent
// calls are answered together by one lookup (see lookups).
func (s *Store) Latest(ctx context.Context, refs []incidents.GroupRef) (map[incidents.GroupRef]*incidents.Incident, error) {
	recent, err := s.lookups.recent(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("latest incidents: %w", err)
	}
	out := make(map[incidents.GroupRef]*incidents.Incident, len(recent))
	for r, incs := range recent {
		out[r] = incs[0]
	}
	return out, nil
}

// Recent returns each group's most recently opened incidents, newest
// first, at most incidents.RecentPerGroup of them (incidents.RecentReader):
// what the deriver needs in memory to derive a late notification with the
// episodes around it after a restart.
func (s *Store) Recent(ctx context.Context, refs []incidents.GroupRef) (map[incidents.GroupRef][]*incidents.Incident, error) {
	out, err := s.lookups.recent(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("recent incidents: %w", err)
	}
	return out, nil
}

// latestIDs finds the most recently opened incident of each (group_key,
// service) pair among keys × services. It reads only the immutable key
// columns, so that a group with no incident yet, the common case during a
// storm, costs no version collapsing.
var latestIDs = `SELECT group_key, service, id
FROM (
    SELECT group_key, service, id, min(opened_at) AS first_opened_at
    FROM incidents
    WHERE ` + refsFilter + `
    GROUP BY group_key, service, id
)
ORDER BY first_opened_at DESC, id DESC
LIMIT ` + recentLimit + ` BY group_key, service`

// recentLimit is incidents.RecentPerGroup, as SQL text.
var recentLimit = strconv.Itoa(incidents.RecentPerGroup)

// latest answers one lookup: the IDs first, then the incidents found,
// collapsed and with their alerts.
func (s *Store) latest(ctx context.Context, refs []incidents.GroupRef) (map[incidents.GroupRef][]*incidents.Incident, error) {
	out := make(map[incidents.GroupRef][]*incidents.Incident, len(refs))
	rank := map[string]int{} // incident ID → its place in the IDs' order
	const op = "query_latest"
	for chunk := range slices.Chunk(refs, maxInList) {
		chunkKeys, want, err := refKeys(chunk)
		if err != nil {
			return nil, err
		}
		s.metrics.op(op)
		rows, err := s.conn.Query(chunkKeys.context(ctx), latestIDs)
		if err != nil {
			return nil, s.fail(ctx, op, err, "latest incident ids")
		}
		ids, err := newKeyTable("service", "id")
		if err != nil {
			return nil, err
		}
		n := 0
		err = func() error {
			defer rows.Close()
			for rows.Next() {
				var ref incidents.GroupRef
				var id string
				if err := rows.Scan(&ref.GroupKey, &ref.Service, &id); err != nil {
					return err
				}
				if want[ref] {
					n++
					rank[id] = n
					if err := ids.add(ref.Service, id); err != nil {
						return err
					}
				}
			}
			return rows.Err()
		}()
		if err != nil {
			return nil, s.fail(ctx, op, err, "latest incident ids")
		}
		if n == 0 {
			continue
		}
		incs, err := s.queryIncidentsWith(ctx, op, ids, selectIncidents(idsFilter, nil, ""))
		if err != nil {
			return nil, err
		}
		for _, inc := range incs {
			ref := incidents.GroupRef{GroupKey: inc.GroupKey, Service: inc.Service}
			out[ref] = append(out[ref], inc)
		}
	}
	for _, incs := range out {
		slices.SortFunc(incs, func(a, b *incidents.Incident) int { return rank[a.ID] - rank[b.ID] })
	}
	return out, nil
}

// Listing limits. A page holds at most MaxListAlerts alerts in all (but
// at least one incident, whatever its size): incidents come with their
// alerts, and a thousand incidents of thousands of alerts would take
// gigabytes to read and answer.
const (
	DefaultListLimit = 50
	MaxListLimit     = 1000
	MaxListAlerts    = 10_000
)

// cursor is the position after the last incident of a page, in List's
// order (started_at DESC, started_at_millis DESC, id DESC): the start's
// second and its milliseconds.
type cursor struct {
	StartedAt int64  `json:"t"`
	Millis    uint16 `json:"ms,omitempty"`
	ID        string `json:"id"`
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c) // cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.ID == "" {
		return cursor{}, fmt.Errorf("%w: cursor %q", fault.ErrInvalid, s)
	}
	return c, nil
}

// List returns incidents matching f, newest first (by start, to the
// millisecond, then id DESC), and the cursor of the next page, empty on
// the last page (incidents.Reader). Limit defaults to DefaultListLimit and
// is capped at MaxListLimit; a page stops early rather than hold more than
// MaxListAlerts alerts. Since and Until are compared to the second,
// the precision of started_at (its milliseconds are beside it, in
// started_at_millis): Since and Until are truncated to whole seconds.
func (s *Store) List(ctx context.Context, f incidents.Filter) ([]*incidents.Incident, string, error) {
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = DefaultListLimit
	case limit > MaxListLimit:
		limit = MaxListLimit
	}
	inner, outer := "1", []string(nil)
	var innerArgs, outerArgs []any
	if f.Service != "" {
		inner = "service = ?"
		innerArgs = append(innerArgs, f.Service)
	}
	if f.State != "" {
		st, err := incidents.ParseState(string(f.State))
		if err != nil {
			return nil, "", fmt.Errorf("list incidents: %w", err)
		}
		outer = append(outer, "state = ?")
		outerArgs = append(outerArgs, string(st))
		if st != incidents.StateResolved {
			// Only incidents with a version in that state can be in it
			// now: collapse those few, not the whole table.
			inner += " AND id GLOBAL IN (SELECT id FROM incidents WHERE state = ?)"
			innerArgs = append(innerArgs, string(st))
		}
	}
	if f.Impact != nil {
		outer = append(outer, "impact = ?")
		outerArgs = append(outerArgs, int8(*f.Impact))
	}
	if !f.Since.IsZero() {
		outer = append(outer, "started_at >= toDateTime(?)")
		outerArgs = append(outerArgs, f.Since.Unix())
	}
	if !f.Until.IsZero() {
		outer = append(outer, "started_at < toDateTime(?)")
		outerArgs = append(outerArgs, f.Until.Unix())
	}
	if f.Cursor != "" {
		c, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("list incidents: %w", err)
		}
		outer = append(outer, "(started_at < toDateTime(?) OR (started_at = toDateTime(?) AND "+
			"(started_at_millis < ? OR (started_at_millis = ? AND id < ?))))")
		outerArgs = append(outerArgs, c.StartedAt, c.StartedAt, c.Millis, c.Millis, c.ID)
	}
	q := selectIncidents(inner, outer, fmt.Sprintf("ORDER BY started_at DESC, started_at_millis DESC, id DESC\nLIMIT %d", limit+1))
	incs, err := s.queryIncidentRows(ctx, "query_list", nil, q, append(innerArgs, outerArgs...)...)
	if err != nil {
		return nil, "", fmt.Errorf("list incidents: %w", err)
	}
	more := len(incs) > limit
	incs = incs[:min(len(incs), limit)]
	if len(incs) > 1 {
		counts, err := s.countAlerts(ctx, incs)
		if err != nil {
			return nil, "", fmt.Errorf("list incidents: %w", err)
		}
		total := 0
		for i, inc := range incs {
			if total += counts[inc.ID]; total > MaxListAlerts && i > 0 {
				incs, more = incs[:i], true
				break
			}
		}
	}
	if err := s.loadAlerts(ctx, incs); err != nil {
		return nil, "", fmt.Errorf("list incidents: %w", err)
	}
	var next string
	if more {
		last := incs[len(incs)-1]
		next = encodeCursor(cursor{StartedAt: last.StartedAt.Unix(), Millis: millisOf(last.StartedAt), ID: last.ID})
	}
	return incs, next, nil
}

// Timeline returns an incident's events ordered by time (then id), each
// once however often it was written, or an error wrapping
// fault.ErrNotFound for an unknown incident (incidents.Reader).
func (s *Store) Timeline(ctx context.Context, id string) ([]incidents.Event, error) {
	const op = "query_timeline"
	s.metrics.op(op)
	const q = `SELECT id, at_ms, kind, actor, text, fingerprint
FROM incident_events
WHERE incident_id = ?
ORDER BY at_ms, id
LIMIT 1 BY id`
	rows, err := s.conn.Query(ctx, q, id)
	if err != nil {
		return nil, s.fail(ctx, op, err, "timeline of %s", id)
	}
	defer rows.Close()
	var events []incidents.Event
	for rows.Next() {
		var (
			e    = incidents.Event{IncidentID: id}
			atMS int64
			kind string
		)
		if err := rows.Scan(&e.ID, &atMS, &kind, &e.Actor, &e.Text, &e.Fingerprint); err != nil {
			return nil, s.fail(ctx, op, err, "timeline of %s", id)
		}
		e.At, e.Kind = fromMS(atMS), incidents.EventKind(kind)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err, "timeline of %s", id)
	}
	if len(events) == 0 {
		if _, err := s.Get(ctx, id); err != nil {
			return nil, fmt.Errorf("timeline: %w", err)
		}
	}
	return events, nil
}

// inList binds values as a parenthesised list for `x IN ?`.
func inList(values []string) clickhouse.GroupSet {
	set := clickhouse.GroupSet{Value: make([]any, len(values))}
	for i, v := range values {
		set.Value[i] = v
	}
	return set
}
