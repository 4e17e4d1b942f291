package chstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	chdriver "github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// Write stores new incident versions, their changed alerts and their new
// timeline events (incidents.Store). Concurrent calls are merged into few
// INSERTs (see batcher); Write returns once the flush holding its rows has
// succeeded, or with that flush's error, which every write of the flush
// shares. If ctx ends first, Write returns ctx's error (wrapped with
// fault.ErrUnavailable for a deadline): its rows are dropped if their
// flush has not started yet and stored otherwise.
//
// A flush inserts alerts, then events, then incidents, one INSERT per
// table. If a later INSERT fails the earlier ones stay: that is harmless
// because every row is an idempotent version (ReplacingMergeTree keys and
// versions), so the caller's retry writes the same rows again, and a reader
// that sees an incident version also sees the alerts written with it.
func (s *Store) Write(ctx context.Context, changes []incidents.Change) error {
	rows, err := toRows(changes)
	if err != nil {
		return err
	}
	if rows.len() == 0 {
		return nil
	}
	if err := s.batcher.write(ctx, &request{rows: rows}); err != nil {
		if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, fault.ErrUnavailable) {
			// The store did not keep up with the caller's deadline.
			return fmt.Errorf("write %d changes: %w: %w", len(changes), fault.ErrUnavailable, err)
		}
		return fmt.Errorf("write %d changes: %w", len(changes), err)
	}
	return nil
}

// rowSet is what one Write inserts, by table.
type rowSet struct {
	incidents []incidentRow
	alerts    []alertRow
	events    []eventRow
	log       []logRow // only in the log's batcher (journal.go)
}

func (r rowSet) len() int { return len(r.incidents) + len(r.alerts) + len(r.events) + len(r.log) }

// Roughly the bytes a row holds, for insertColumns: its strings, plus
// rowOverhead for its fixed columns.
const rowOverhead = 64

func (r rowSet) incidentBytes(i int) int {
	x := &r.incidents[i]
	return rowOverhead + len(x.id) + len(x.title) + len(x.groupKey) + len(x.labels) + len(x.annotations)
}

func (r rowSet) alertBytes(i int) int {
	x := &r.alerts[i]
	return rowOverhead + len(x.incidentID) + len(x.fingerprint) + len(x.labels) + len(x.annotations) + len(x.generatorURL)
}

func (r rowSet) eventBytes(i int) int {
	x := &r.events[i]
	return rowOverhead + len(x.id) + len(x.incidentID) + len(x.text)
}

// segmentRow is one incident version's impact segments.
type segmentRow struct {
	incidentID, service string
	version             uint64
	starts, ends        []time.Time
	impacts             []int8
}

type incidentRow struct {
	id, service, groupKey, title string
	impact                       int8
	state, source                string
	startedAt                    time.Time // opened_at comes from the first version
	acknowledgedAt               time.Time
	acknowledgedBy               string
	resolvedAt                   time.Time
	resolvedBy                   string
	flaps, truncatedAlerts       uint32
	labels, annotations          string
	runbookURL, generatorURL     string
	externalURL, causedBy        string
	periodStarts, periodEnds     []time.Time
	millis                       incidentMillis
	segments                     segmentRow
	excluded                     exclusionCols
	alertCount, alertsFiring     uint32
	facts                        uint32
	updatedAt                    time.Time
	version                      uint64
	openedAt                     time.Time // set at flush time
}

// incidentMillis holds the milliseconds within their second of an
// incident's times, which its DateTime columns drop (migration 0042):
// the *_millis columns.
type incidentMillis struct {
	startedAt, acknowledgedAt, resolvedAt uint16
	periodStarts, periodEnds              []uint16
}

// exclusionCols are an incident version's periods marked as not downtime
// (incidents.Exclusion), as the parallel arrays the excluded_* columns
// hold.
type exclusionCols struct {
	from, to    []time.Time
	by, reasons []string
	atMS        []int64
}

type alertRow struct {
	incidentID, service, fingerprint string
	startsAt                         time.Time
	startsAtMS                       int64
	endsAt                           time.Time
	endsAtMS                         int64
	status                           string
	impact                           int8
	labels, annotations              string
	generatorURL                     string
	version                          uint64
}

type eventRow struct {
	id, incidentID    string
	at                time.Time
	atMS              int64
	kind, actor, text string
	fingerprint       string
	impact            int8 // incidents.Impact, or -1 when the event records none
}

// Columns of each INSERT, in Append order.
const (
	insertIncidents = `INSERT INTO incidents (id, service, group_key, title, impact, state, source, opened_at,
started_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by, flaps, truncated_alerts, labels,
annotations, runbook_url, generator_url, external_url, caused_by, period_starts, period_ends, alert_count,
alerts_firing, facts, updated_at, version, started_at_millis, acknowledged_at_millis, resolved_at_millis,
period_starts_millis, period_ends_millis, excluded_from, excluded_to, excluded_by, excluded_reasons, excluded_at_ms)`
	insertAlerts = `INSERT INTO incident_alerts (incident_id, service, fingerprint, starts_at, starts_at_ms,
ends_at, ends_at_ms, status, impact, labels, annotations, generator_url, version)`
	insertEvents   = `INSERT INTO incident_events (id, incident_id, at, at_ms, kind, actor, text, fingerprint, inserted_at_ms, impact)`
	insertSegments = `INSERT INTO incident_segments (incident_id, service, version, segment_starts, segment_ends, segment_impacts)`
)

// toRows converts changes to rows, checking what the schema cannot hold.
func toRows(changes []incidents.Change) (rowSet, error) {
	var rs rowSet
	for _, c := range changes {
		inc := c.Incident
		if inc == nil {
			if len(c.Alerts) > 0 {
				return rowSet{}, fmt.Errorf("%w: change with alerts but no incident", fault.ErrInvalid)
			}
		} else {
			row, err := toIncidentRow(inc)
			if err != nil {
				return rowSet{}, err
			}
			rs.incidents = append(rs.incidents, row)
			for _, a := range c.Alerts {
				row, err := toAlertRow(inc, a)
				if err != nil {
					return rowSet{}, err
				}
				rs.alerts = append(rs.alerts, row)
			}
			for _, a := range c.Moved {
				row, err := toAlertRow(inc, a)
				if err != nil {
					return rowSet{}, err
				}
				row.status = alertMoved
				row.version = inc.Version()
				rs.alerts = append(rs.alerts, row)
			}
		}
		for _, e := range c.Events {
			row, err := toEventRow(e)
			if err != nil {
				return rowSet{}, err
			}
			rs.events = append(rs.events, row)
		}
	}
	return rs, nil
}

func toIncidentRow(inc *incidents.Incident) (incidentRow, error) {
	if inc.ID == "" {
		return incidentRow{}, fmt.Errorf("%w: incident without id", fault.ErrInvalid)
	}
	r := incidentRow{
		id:              inc.ID,
		service:         inc.Service,
		groupKey:        inc.GroupKey,
		title:           inc.Title,
		impact:          int8(inc.Impact),
		state:           string(inc.State),
		source:          inc.Source,
		acknowledgedBy:  inc.AcknowledgedBy,
		resolvedBy:      inc.ResolvedBy,
		flaps:           clampUint32(inc.Flaps),
		truncatedAlerts: clampUint32(inc.TruncatedAlerts),
		labels:          encodeMap(inc.Labels),
		annotations:     encodeMap(inc.Annotations),
		runbookURL:      inc.RunbookURL,
		generatorURL:    inc.GeneratorURL,
		externalURL:     inc.ExternalURL,
		causedBy:        inc.CausedBy,
		alertCount:      clampUint32(len(inc.Alerts)),
		facts:           inc.Facts,
		version:         inc.Version(),
	}
	for _, a := range inc.Alerts {
		if a.Status == incidents.AlertFiring {
			r.alertsFiring++
		}
	}
	var err error
	set := func(dst *time.Time, t time.Time, field string) {
		if err == nil {
			*dst, err = toDateTime(t)
			if err != nil {
				err = fmt.Errorf("%w: incident %s %s: %w", fault.ErrInvalid, inc.ID, field, err)
			}
		}
	}
	set(&r.startedAt, inc.StartedAt, "started_at")
	set(&r.acknowledgedAt, inc.AcknowledgedAt, "acknowledged_at")
	set(&r.resolvedAt, inc.ResolvedAt, "resolved_at")
	set(&r.updatedAt, inc.UpdatedAt, "updated_at")
	r.periodStarts = make([]time.Time, len(inc.Periods))
	r.periodEnds = make([]time.Time, len(inc.Periods))
	r.millis = incidentMillis{
		startedAt: millisOf(inc.StartedAt), acknowledgedAt: millisOf(inc.AcknowledgedAt), resolvedAt: millisOf(inc.ResolvedAt),
		periodStarts: make([]uint16, len(inc.Periods)), periodEnds: make([]uint16, len(inc.Periods)),
	}
	for i, p := range inc.Periods {
		set(&r.periodStarts[i], p.Start, "period start")
		set(&r.periodEnds[i], p.End, "period end")
		r.millis.periodStarts[i], r.millis.periodEnds[i] = millisOf(p.Start), millisOf(p.End)
	}
	r.segments = segmentRow{incidentID: inc.ID, service: inc.Service, version: r.version,
		starts: make([]time.Time, len(inc.Segments)), ends: make([]time.Time, len(inc.Segments)),
		impacts: make([]int8, len(inc.Segments))}
	for i, sg := range inc.Segments {
		set(&r.segments.starts[i], sg.Start, "segment start")
		set(&r.segments.ends[i], sg.End, "segment end")
		r.segments.impacts[i] = int8(sg.Impact)
	}
	n := len(inc.Excluded)
	r.excluded = exclusionCols{from: make([]time.Time, n), to: make([]time.Time, n), by: make([]string, n),
		reasons: make([]string, n), atMS: make([]int64, n)}
	for i, x := range inc.Excluded {
		set(&r.excluded.from[i], x.From, "not downtime from")
		set(&r.excluded.to[i], x.To, "not downtime to")
		r.excluded.by[i], r.excluded.reasons[i], r.excluded.atMS[i] = x.By, x.Reason, toMS(x.At)
	}
	return r, err
}

// alertMoved is the status of an occurrence's row in an incident it left
// (incidents.Change.Moved); readers leave such rows out.
//
// An alert row's version is the version of the incident written with it:
// the latest write of an occurrence's row wins, whatever its status. One
// deriver writes at a time (package journal), and its memory holds the
// merged occurrences (a resolved copy beats a firing one, the earlier end
// wins: incidents.Occurrences), so its latest write is the truth. An
// occurrence a merge moved away comes back when a later split returns it.
const alertMoved = "moved"

func toAlertRow(inc *incidents.Incident, a incidents.Alert) (alertRow, error) {
	if a.Fingerprint == "" {
		return alertRow{}, fmt.Errorf("%w: incident %s: alert without fingerprint", fault.ErrInvalid, inc.ID)
	}
	startsAt, err := toDateTime(a.StartsAt)
	if err != nil {
		return alertRow{}, fmt.Errorf("%w: incident %s alert %s starts_at: %w", fault.ErrInvalid, inc.ID, a.Fingerprint, err)
	}
	endsAt, err := toDateTime(a.EndsAt)
	if err != nil {
		return alertRow{}, fmt.Errorf("%w: incident %s alert %s ends_at: %w", fault.ErrInvalid, inc.ID, a.Fingerprint, err)
	}
	r := alertRow{
		incidentID:   inc.ID,
		service:      inc.Service,
		fingerprint:  a.Fingerprint,
		startsAt:     startsAt,
		startsAtMS:   toMS(a.StartsAt),
		endsAt:       endsAt,
		endsAtMS:     toMS(a.EndsAt),
		status:       string(a.Status),
		impact:       int8(a.Impact),
		labels:       encodeMap(a.Labels),
		annotations:  encodeMap(a.Annotations),
		generatorURL: a.GeneratorURL,
	}
	r.version = inc.Version()
	return r, nil
}

func toEventRow(e incidents.Event) (eventRow, error) {
	if e.ID == "" || e.IncidentID == "" {
		return eventRow{}, fmt.Errorf("%w: event without id or incident id", fault.ErrInvalid)
	}
	at, err := toDateTime(e.At)
	if err != nil {
		return eventRow{}, fmt.Errorf("%w: event %s at: %w", fault.ErrInvalid, e.ID, err)
	}
	impact := int8(-1)
	if e.Impact != nil {
		impact = int8(*e.Impact)
	}
	return eventRow{
		id:          e.ID,
		incidentID:  e.IncidentID,
		at:          at,
		atMS:        toMS(e.At),
		kind:        string(e.Kind),
		actor:       e.Actor,
		text:        e.Text,
		fingerprint: e.Fingerprint,
		impact:      impact,
	}, nil
}

// toDateTime maps t to what a DateTime column holds: the zero time is the
// Unix epoch (0 means "not set"); other times must fit in 1970–2106.
func toDateTime(t time.Time) (time.Time, error) {
	if t.IsZero() {
		return time.Unix(0, 0).UTC(), nil
	}
	if u := t.Unix(); u < 0 || u > math.MaxUint32 {
		return time.Time{}, fmt.Errorf("%s is outside 1970–2106", t.UTC().Format(time.RFC3339))
	}
	return t.UTC(), nil
}

// fromDateTime is the inverse of toDateTime, to the second.
func fromDateTime(t time.Time) time.Time {
	if t.Unix() <= 0 {
		return time.Time{}
	}
	return time.Unix(t.Unix(), 0).UTC()
}

// millisOf is the milliseconds of t within its second: what a DateTime
// column drops, kept in the *_millis column beside it (0 for the zero
// time). Finer digits are dropped: nines keeps times to the millisecond,
// the precision of Prometheus' and so Alertmanager's times.
func millisOf(t time.Time) uint16 {
	if t.IsZero() {
		return 0
	}
	return uint16(t.Nanosecond() / int(time.Millisecond))
}

// fromDateTimeMillis is the inverse of toDateTime and millisOf: the
// DateTime column's second plus the *_millis column's milliseconds. A row
// stored before the millis columns reads 0 there: its whole second.
func fromDateTimeMillis(t time.Time, millis uint16) time.Time {
	sec := fromDateTime(t)
	if sec.IsZero() || millis > 999 {
		return sec
	}
	return sec.Add(time.Duration(millis) * time.Millisecond)
}

// toMS is t in Unix milliseconds, 0 for the zero time.
func toMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS is the inverse of toMS.
func fromMS(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func clampUint32(n int) uint32 {
	return uint32(min(max(n, 0), math.MaxUint32))
}

// encodeMap stores a label map as a JSON object; nil and empty maps are {}.
// It writes exactly what json.Marshal writes (keys sorted, the same
// escaping) without reflection: plain strings are copied as they are, and
// any string json.Marshal would escape is handed to it.
func encodeMap(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	var buf [16]string
	keys := buf[:0]
	n := 1
	for k, v := range m {
		keys = append(keys, k)
		n += len(k) + len(v) + 6
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, k)
		b.WriteByte(':')
		writeJSONString(&b, m[k])
	}
	b.WriteByte('}')
	return b.String()
}

// writeJSONString writes s as a JSON string, escaped as json.Marshal does.
func writeJSONString(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			b.Write(q)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}

// decodeMap reads what encodeMap wrote; {} reads as nil.
func decodeMap(s string) (map[string]string, error) {
	if s == "" || s == "{}" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode labels: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// gather returns the rows of reqs together, and leaves them in the first
// request alone, so that they are held once, not twice, while they are
// inserted (a deriver's flush holds tens of megabytes of rows in a storm),
// and a second try of the flush (flushGroup) finds them all there.
func gather(reqs []*request) rowSet {
	if len(reqs) == 1 {
		return reqs[0].rows
	}
	var ni, na, ne int
	for _, r := range reqs {
		ni, na, ne = ni+len(r.rows.incidents), na+len(r.rows.alerts), ne+len(r.rows.events)
	}
	all := rowSet{
		incidents: make([]incidentRow, 0, ni),
		alerts:    make([]alertRow, 0, na),
		events:    make([]eventRow, 0, ne),
	}
	for _, r := range reqs {
		all.incidents = append(all.incidents, r.rows.incidents...)
		all.alerts = append(all.alerts, r.rows.alerts...)
		all.events = append(all.events, r.rows.events...)
		r.rows.incidents, r.rows.alerts, r.rows.events = nil, nil, nil
	}
	reqs[0].rows.incidents, reqs[0].rows.alerts, reqs[0].rows.events = all.incidents, all.alerts, all.events
	return all
}

// flush inserts the rows of reqs, one INSERT per table.
func (s *Store) flush(ctx context.Context, reqs []*request) error {
	start := time.Now()
	defer func() { s.metrics.flushTime.Observe(time.Since(start).Seconds()) }()
	s.metrics.flushWrites.Observe(float64(len(reqs)))

	all := gather(reqs)
	// The incident versions go after their alerts and segments (a reader
	// that sees a version finds them), and need opened_at: the three go
	// at once, to save round trips.
	var (
		wg   sync.WaitGroup
		errs [3]error
	)
	wg.Go(func() { errs[0] = s.setOpenedAt(ctx, all.incidents) })
	wg.Go(func() {
		errs[1] = s.insertColumns(ctx, "incident_alerts", insertAlerts, len(all.alerts), all.alertBytes, func(b chdriver.Batch, lo, hi int) error {
			a := all.alerts[lo:hi]
			return appendColumns(b,
				column(a, func(r *alertRow) string { return r.incidentID }),
				column(a, func(r *alertRow) string { return r.service }),
				column(a, func(r *alertRow) string { return r.fingerprint }),
				column(a, func(r *alertRow) time.Time { return r.startsAt }),
				column(a, func(r *alertRow) int64 { return r.startsAtMS }),
				column(a, func(r *alertRow) time.Time { return r.endsAt }),
				column(a, func(r *alertRow) int64 { return r.endsAtMS }),
				column(a, func(r *alertRow) string { return r.status }),
				column(a, func(r *alertRow) int8 { return r.impact }),
				column(a, func(r *alertRow) string { return r.labels }),
				column(a, func(r *alertRow) string { return r.annotations }),
				column(a, func(r *alertRow) string { return r.generatorURL }),
				column(a, func(r *alertRow) uint64 { return r.version }),
			)
		})
	})
	wg.Go(func() {
		errs[2] = s.insertColumns(ctx, "incident_segments", insertSegments, len(all.incidents), nil, func(b chdriver.Batch, _, _ int) error {
			r := all.incidents
			return appendColumns(b,
				column(r, func(r *incidentRow) string { return r.segments.incidentID }),
				column(r, func(r *incidentRow) string { return r.segments.service }),
				column(r, func(r *incidentRow) uint64 { return r.segments.version }),
				column(r, func(r *incidentRow) []time.Time { return r.segments.starts }),
				column(r, func(r *incidentRow) []time.Time { return r.segments.ends }),
				column(r, func(r *incidentRow) []int8 { return r.segments.impacts }),
			)
		})
	})
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return err
	}
	err := s.insertColumns(ctx, "incidents", insertIncidents, len(all.incidents), all.incidentBytes, func(b chdriver.Batch, lo, hi int) error {
		r := all.incidents[lo:hi]
		return appendColumns(b,
			column(r, func(r *incidentRow) string { return r.id }),
			column(r, func(r *incidentRow) string { return r.service }),
			column(r, func(r *incidentRow) string { return r.groupKey }),
			column(r, func(r *incidentRow) string { return r.title }),
			column(r, func(r *incidentRow) int8 { return r.impact }),
			column(r, func(r *incidentRow) string { return r.state }),
			column(r, func(r *incidentRow) string { return r.source }),
			column(r, func(r *incidentRow) time.Time { return r.openedAt }),
			column(r, func(r *incidentRow) time.Time { return r.startedAt }),
			column(r, func(r *incidentRow) time.Time { return r.acknowledgedAt }),
			column(r, func(r *incidentRow) string { return r.acknowledgedBy }),
			column(r, func(r *incidentRow) time.Time { return r.resolvedAt }),
			column(r, func(r *incidentRow) string { return r.resolvedBy }),
			column(r, func(r *incidentRow) uint32 { return r.flaps }),
			column(r, func(r *incidentRow) uint32 { return r.truncatedAlerts }),
			column(r, func(r *incidentRow) string { return r.labels }),
			column(r, func(r *incidentRow) string { return r.annotations }),
			column(r, func(r *incidentRow) string { return r.runbookURL }),
			column(r, func(r *incidentRow) string { return r.generatorURL }),
			column(r, func(r *incidentRow) string { return r.externalURL }),
			column(r, func(r *incidentRow) string { return r.causedBy }),
			column(r, func(r *incidentRow) []time.Time { return r.periodStarts }),
			column(r, func(r *incidentRow) []time.Time { return r.periodEnds }),
			column(r, func(r *incidentRow) uint32 { return r.alertCount }),
			column(r, func(r *incidentRow) uint32 { return r.alertsFiring }),
			column(r, func(r *incidentRow) uint32 { return r.facts }),
			column(r, func(r *incidentRow) time.Time { return r.updatedAt }),
			column(r, func(r *incidentRow) uint64 { return r.version }),
			column(r, func(r *incidentRow) uint16 { return r.millis.startedAt }),
			column(r, func(r *incidentRow) uint16 { return r.millis.acknowledgedAt }),
			column(r, func(r *incidentRow) uint16 { return r.millis.resolvedAt }),
			column(r, func(r *incidentRow) []uint16 { return r.millis.periodStarts }),
			column(r, func(r *incidentRow) []uint16 { return r.millis.periodEnds }),
			column(r, func(r *incidentRow) []time.Time { return r.excluded.from }),
			column(r, func(r *incidentRow) []time.Time { return r.excluded.to }),
			column(r, func(r *incidentRow) []string { return r.excluded.by }),
			column(r, func(r *incidentRow) []string { return r.excluded.reasons }),
			column(r, func(r *incidentRow) []int64 { return r.excluded.atMS }),
		)
	})
	if err != nil {
		return err
	}
	// Events go last and carry the flush time: a reader tailing events by
	// inserted_at_ms (chat) finds the incident rows they belong to stored.
	insertedMS := s.now().UnixMilli()
	err = s.insertColumns(ctx, "incident_events", insertEvents, len(all.events), all.eventBytes, func(b chdriver.Batch, lo, hi int) error {
		e := all.events[lo:hi]
		return appendColumns(b,
			column(e, func(r *eventRow) string { return r.id }),
			column(e, func(r *eventRow) string { return r.incidentID }),
			column(e, func(r *eventRow) time.Time { return r.at }),
			column(e, func(r *eventRow) int64 { return r.atMS }),
			column(e, func(r *eventRow) string { return r.kind }),
			column(e, func(r *eventRow) string { return r.actor }),
			column(e, func(r *eventRow) string { return r.text }),
			column(e, func(r *eventRow) string { return r.fingerprint }),
			column(e, func(*eventRow) int64 { return insertedMS }),
			column(e, func(r *eventRow) int8 { return r.impact }),
		)
	})
	if err != nil {
		return err
	}
	for _, r := range all.incidents {
		s.opened.put(r.id, r.openedAt)
	}
	return nil
}

// column gathers one field of every row, for appendColumns.
func column[R, T any](rows []R, field func(*R) T) []T {
	out := make([]T, len(rows))
	for i := range rows {
		out[i] = field(&rows[i])
	}
	return out
}

// appendColumns appends cols[i] (a slice holding the i-th column of every
// row) to the batch's i-th column: one call a column rather than one a
// row, which spares boxing every value into an interface.
func appendColumns(b chdriver.Batch, cols ...any) error {
	for i, c := range cols {
		if err := b.Column(i).Append(c); err != nil {
			return fmt.Errorf("column %d: %w", i, err)
		}
	}
	return nil
}

// insert sends n rows to table in one INSERT, fill appending them row by
// row.
func (s *Store) insert(ctx context.Context, table, query string, n int, fill func(appendRow func(...any) error) error) error {
	return s.insertColumns(ctx, table, query, n, nil, func(b chdriver.Batch, _, _ int) error { return fill(b.Append) })
}

// blockBytes bounds the bytes of one block of a large INSERT (see
// insertColumns): what the client holds of it at once. The driver grows
// its column and encoding buffers row by row (by a quarter at a time once
// large) up to the first block, then reuses them for the others, so the
// block is about what an INSERT costs in garbage: with blocks of 1 MB, a
// storm's INSERTs allocated 1.4 GB of the 5.7 GB its nines allocated
// (TestAppendLogAllocatesAboutItsBodies).
const blockBytes = 256 << 10

// insertColumns sends n rows to table in one INSERT, fill appending rows
// lo to hi-1. With size (the bytes a row holds, roughly), the rows go as
// blocks of about blockBytes each, one after the other in the same
// INSERT: ClickHouse squashes them into one part as it would one block
// (min_insert_block_size_rows), while the client holds one block at a
// time rather than the whole INSERT encoded twice, and the connection's
// buffer grows once for the first block rather than for every INSERT.
// Without size, all rows go as one block.
func (s *Store) insertColumns(ctx context.Context, table, query string, n int, size func(i int) int, fill func(b chdriver.Batch, lo, hi int) error) error {
	if n == 0 {
		return nil
	}
	op := "insert_" + table
	s.metrics.op(op)
	b, err := s.conn.PrepareBatch(batchContext(ctx), query)
	if err != nil {
		return s.fail(ctx, op, err, "insert %d rows into %s", n, table)
	}
	defer b.Close()
	for lo := 0; lo < n; {
		hi := n
		if size != nil {
			hi = lo + 1
			for bytes := size(lo); hi < n && bytes < blockBytes; hi++ {
				bytes += size(hi)
			}
		}
		if err := fill(b, lo, hi); err != nil {
			return s.fail(ctx, op, err, "insert %d rows into %s", n, table)
		}
		if hi < n {
			if err := b.Flush(); err != nil {
				return s.fail(ctx, op, err, "insert %d rows into %s", n, table)
			}
		}
		lo = hi
	}
	if err := b.Send(); err != nil {
		return s.fail(ctx, op, err, "insert %d rows into %s", n, table)
	}
	s.metrics.insertRows.WithLabelValues(table).Observe(float64(n))
	return nil
}

// batchContext returns the context to give a batch: ctx's values and
// deadline, but not its cancellation. clickhouse-go (2.50) closes a
// batch's connection from a watchdog goroutine when the batch's context
// ends during Send, and that goroutine can still fire after Send has
// returned the connection to the pool: a caller that cancels its context
// as soon as the insert returns (as every caller does) then breaks the
// next query to use that connection ("use of closed network connection").
// A context that ends only at the deadline leaves the watchdog seconds to
// notice that Send is over.
func batchContext(ctx context.Context) context.Context {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithoutCancel(ctx)
	}
	bctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	time.AfterFunc(time.Until(deadline), cancel) // it ends then anyway
	return bctx
}

// setOpenedAt gives each incident row its opened_at: the started_at of the
// first version written, so that all versions share one sort key and
// partition. It is known from earlier reads and writes (openedCache), else
// looked up in one query for the whole flush, else it is this version's
// started_at (the first version of the incident written; within one flush
// the first row of an id wins).
func (s *Store) setOpenedAt(ctx context.Context, rows []incidentRow) error {
	unknown, err := newKeyTable("service", "id")
	if err != nil {
		return err
	}
	asked := map[string]bool{}
	for _, r := range rows {
		if _, ok := s.opened.get(r.id); !ok && !asked[r.id] {
			asked[r.id] = true
			if err := unknown.add(r.service, r.id); err != nil {
				return err
			}
		}
	}
	found := map[string]time.Time{}
	if len(asked) > 0 {
		const op = "lookup_opened_at"
		s.metrics.op(op)
		const q = "SELECT id, min(opened_at) FROM incidents WHERE " + idsFilter + " GROUP BY id"
		rs, err := s.conn.Query(unknown.context(ctx), q)
		if err != nil {
			return s.fail(ctx, op, err, "look up opened_at")
		}
		defer rs.Close()
		for rs.Next() {
			var (
				id string
				t  time.Time
			)
			if err := rs.Scan(&id, &t); err != nil {
				return s.fail(ctx, op, err, "look up opened_at")
			}
			found[id] = t.UTC()
		}
		if err := rs.Err(); err != nil {
			return s.fail(ctx, op, err, "look up opened_at")
		}
	}
	for i := range rows {
		r := &rows[i]
		if t, ok := s.opened.get(r.id); ok {
			r.openedAt = t
		} else if t, ok := found[r.id]; ok {
			r.openedAt = t
		} else {
			r.openedAt = r.startedAt
			found[r.id] = r.startedAt
		}
	}
	return nil
}

// openedCache remembers the opened_at of recently seen incidents, so that
// writes rarely need to look it up. It forgets everything when full, which
// only costs a lookup.
type openedCache struct {
	mu sync.Mutex
	m  map[string]time.Time
}

const openedCacheSize = 100_000

func (c *openedCache) get(id string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[id]
	return t, ok
}

func (c *openedCache) put(id string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= openedCacheSize {
		c.m = make(map[string]time.Time)
	}
	c.m[id] = t
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
