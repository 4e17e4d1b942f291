package incidents

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Exclusion is a period of an incident that a person marked as not
// downtime (a false positive, say): availability leaves it out of that
// incident's downtime (availability/doc.go). It is a fact kept on the
// incident, as columns, with who marked it and why; the timeline has an
// event for it too, for people.
type Exclusion struct {
	// From and To bound the period [From, To). A zero To means "until the
	// incident ends": the whole incident, when From is its start.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// By is who marked it, Reason why, and At when.
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Timeline events of marks.
const (
	// EventNotDowntime records that a period was marked as not downtime.
	EventNotDowntime EventKind = "not_downtime"
	// EventNotDowntimeWithdrawn records that a mark was withdrawn: the
	// period counts as downtime again.
	EventNotDowntimeWithdrawn EventKind = "not_downtime_withdrawn"
)

// same reports whether x and y are the same mark (the same action kept
// twice: in memory and restored from the stored incident).
func (x Exclusion) same(y Exclusion) bool {
	return x.From.Equal(y.From) && x.To.Equal(y.To) && x.At.Equal(y.At) && x.By == y.By && x.Reason == y.Reason
}

func compareExclusions(x, y Exclusion) int {
	if c := x.At.Compare(y.At); c != 0 {
		return c
	}
	if c := x.From.Compare(y.From); c != 0 {
		return c
	}
	if c := x.To.Compare(y.To); c != 0 {
		return c
	}
	if c := strings.Compare(x.By, y.By); c != 0 {
		return c
	}
	return strings.Compare(x.Reason, y.Reason)
}

// withExclusion returns xs with x added once, in a fixed order (when
// marked, then the period), so that the same marks give the same incident
// whatever order they are applied in.
func withExclusion(xs []Exclusion, x Exclusion) []Exclusion {
	for _, y := range xs {
		if y.same(x) {
			return xs
		}
	}
	out := append(slices.Clone(xs), x)
	slices.SortFunc(out, compareExclusions)
	return out
}

// NotDowntimeRequest asks to mark a period of an incident as not
// downtime. A zero From is the incident's start; a zero To, its end.
type NotDowntimeRequest struct {
	From, To time.Time
	Actor    string
	Reason   string
}

// validate names what makes r impossible to apply.
func (r NotDowntimeRequest) validate() error {
	if strings.TrimSpace(r.Reason) == "" {
		return fmt.Errorf("%w: reason: required (why is this not downtime?)", ErrInvalid)
	}
	if !r.From.IsZero() && !r.To.IsZero() && !r.From.Before(r.To) {
		return fmt.Errorf("%w: from must be before to (got from %s, to %s)", ErrInvalid,
			r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339))
	}
	for _, f := range []struct {
		name string
		t    time.Time
	}{{"from", r.From}, {"to", r.To}} {
		if !f.t.IsZero() && !Storable(f.t) {
			return fmt.Errorf("%w: %s: %s is outside 1970-01-01T00:00:00Z..%s", ErrInvalid, f.name,
				f.t.UTC().Format(time.RFC3339), MaxTime().Format(time.RFC3339))
		}
	}
	return nil
}

// MarkNotDowntime marks a period of the incident as not downtime, on
// behalf of r.Actor at at. The period defaults to the whole incident (from
// its start, until it ends). Marking a period that does not overlap the
// incident is allowed, and removes nothing.
func MarkNotDowntime(inc *Incident, r NotDowntimeRequest, at time.Time) (Change, error) {
	if err := r.validate(); err != nil {
		return Change{}, err
	}
	// Whole seconds for the period, as availability counts, and
	// milliseconds for the time of marking, as the store keeps them: the
	// mark read back is the same mark.
	x := Exclusion{From: r.From.UTC().Truncate(time.Second), To: r.To.UTC().Truncate(time.Second),
		By: r.Actor, Reason: strings.TrimSpace(r.Reason), At: markedAt(at)}
	if r.From.IsZero() {
		x.From = inc.StartedAt.UTC().Truncate(time.Second)
	}
	if !x.To.IsZero() && !x.From.Before(x.To) {
		return Change{}, fmt.Errorf("%w: from must be before to: the incident started at %s", ErrInvalid, x.From.Format(time.RFC3339))
	}
	inc = inc.Clone()
	inc.Excluded = withExclusion(inc.Excluded, x)
	ch := manualEvent(inc, EventNotDowntime, r.Actor, at, fmt.Sprintf("Marked %s as not downtime: %s", describePeriod(x), x.Reason))
	return ch, nil
}

// markedAt is the time of a mark made at at, as the store keeps it.
func markedAt(at time.Time) time.Time { return at.UTC().Truncate(time.Millisecond) }

// describePeriod writes an exclusion's period for the timeline.
func describePeriod(x Exclusion) string {
	const layout = "2006-01-02 15:04:05Z07:00"
	if x.To.IsZero() {
		return "from " + x.From.Format(layout) + " until the incident ends"
	}
	return x.From.Format(layout) + " to " + x.To.Format(layout)
}

// NotDowntime marks a period of the incident as not downtime.
func (s *Service) NotDowntime(ctx context.Context, id string, r NotDowntimeRequest) (*Incident, error) {
	return s.Do(ctx, Command{Kind: CommandNotDowntime, Incident: id, Actor: r.Actor, Text: r.Reason,
		Period: notDowntimePeriod(r), At: s.now().UTC()})
}

func notDowntimePeriod(r NotDowntimeRequest) *Period {
	if r.From.IsZero() && r.To.IsZero() {
		return nil
	}
	return &Period{Start: r.From, End: r.To}
}

// notDowntimeRequest is the request c holds.
func (c Command) notDowntimeRequest() NotDowntimeRequest {
	r := NotDowntimeRequest{Actor: c.Actor, Reason: c.Text}
	if c.Period != nil {
		r.From, r.To = c.Period.Start, c.Period.End
	}
	return r
}

// exclusionActions are the actions that marked inc's periods as not
// downtime, so that deriving its group again keeps them.
func exclusionActions(inc *Incident) []Action {
	var out []Action
	for _, x := range inc.Excluded {
		out = append(out, Action{Kind: EventNotDowntime, Incident: inc.ID, Actor: x.By, At: x.At, Excluded: &x})
	}
	return out
}

// withoutExclusion returns xs without the mark made at markedAt.
func withoutExclusion(xs []Exclusion, markedAt time.Time) []Exclusion {
	var out []Exclusion
	for _, x := range xs {
		if !x.At.Equal(markedAt) {
			out = append(out, x)
		}
	}
	return out
}

func validateWithdrawal(mark *time.Time, reason string) error {
	if mark == nil || mark.IsZero() {
		return fmt.Errorf("%w: marked_at: required (the at of the mark to withdraw)", ErrInvalid)
	}
	if strings.TrimSpace(reason) == "" {
		return fmt.Errorf("%w: reason: required (why does it count as downtime after all?)", ErrInvalid)
	}
	return nil
}

// WithdrawNotDowntime withdraws the mark made at markedAt, on behalf of
// actor at at, for reason: its period counts as downtime again. The mark
// and its withdrawal both stay on the timeline.
func WithdrawNotDowntime(inc *Incident, markedAt time.Time, actor, reason string, at time.Time) (Change, error) {
	if err := validateWithdrawal(&markedAt, reason); err != nil {
		return Change{}, err
	}
	markedAt = markedAt.UTC().Truncate(time.Millisecond)
	var gone *Exclusion
	for _, x := range inc.Excluded {
		if x.At.Equal(markedAt) {
			gone = &x
		}
	}
	if gone == nil {
		return Change{}, fmt.Errorf("%w: incident %s has no not-downtime mark made at %s", ErrConflict, inc.ID,
			markedAt.Format(time.RFC3339Nano))
	}
	inc = inc.Clone()
	inc.Excluded = withoutExclusion(inc.Excluded, markedAt)
	ch := manualEvent(inc, EventNotDowntimeWithdrawn, actor, at, fmt.Sprintf("Withdrew the mark of %s as not downtime (by %s): %s",
		describePeriod(*gone), gone.By, strings.TrimSpace(reason)))
	ch.Action = &Action{Kind: EventNotDowntimeWithdrawn, Incident: inc.ID, Actor: actor, At: at.UTC(), Excluded: &Exclusion{At: markedAt}}
	return ch, nil
}

// WithdrawNotDowntime withdraws the mark made at markedAt.
func (s *Service) WithdrawNotDowntime(ctx context.Context, id string, markedAt time.Time, actor, reason string) (*Incident, error) {
	return s.Do(ctx, Command{Kind: CommandWithdrawNotDowntime, Incident: id, Mark: &markedAt, Actor: actor, Text: reason, At: s.now().UTC()})
}
