package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/incidents"
	"github.com/ninesops/nines/journal"
)

// replayLogOptions are the flags of `nines replay`.
type replayLogOptions struct {
	store       storeFlags
	from, to    string
	dryRun      bool
	keep        bool
	configFile  string
	catalogFile string
}

// addReplay declares `nines replay`.
func (c *cli) addReplay() {
	cmd := c.app.Command("replay", "Derive a period's incidents again from the notification log under the current configuration (grouping, service and severity mapping, reopen window); report what changes, and write it unless --dry-run.")
	o := &replayLogOptions{}
	cmd.Flag("from", "Start of the period (RFC 3339): notifications and actions logged from then.").Required().PlaceHolder("TIME").StringVar(&o.from)
	cmd.Flag("to", "End of the period (RFC 3339), excluded.").Required().PlaceHolder("TIME").StringVar(&o.to)
	cmd.Flag("dry-run", "Only report: incidents split, merged, new or gone, and availability per service before and after.").BoolVar(&o.dryRun)
	cmd.Flag("keep-scratch", "Keep the scratch database the period was derived into (its name is printed).").BoolVar(&o.keep)
	cmd.Flag("config.file", "nines serve's --config.file: the configuration to derive under.").PlaceHolder("FILE").StringVar(&o.configFile)
	cmd.Flag("catalog.file", "nines serve's --catalog.file: services of alerts, and the figures' SLOs.").PlaceHolder("FILE").StringVar(&o.catalogFile)
	o.store.register(cmd)
	c.command(cmd, func(ctx context.Context) error { return replayLog(ctx, o, c.logger(), c.stdout) })
}

// replayLog derives [from, to) of the log again into a scratch database
// beside the live one, compares the two and, unless --dry-run, writes the
// differences to the live database as new versions, then tells the
// running deriver to read them.
func replayLog(ctx context.Context, o *replayLogOptions, log *slog.Logger, stdout io.Writer) error {
	if err := o.store.check(); err != nil {
		return err
	}
	from, err := time.Parse(time.RFC3339, o.from)
	if err != nil {
		return usageError{fmt.Errorf("--from: %w", err)}
	}
	to, err := time.Parse(time.RFC3339, o.to)
	if err != nil {
		return usageError{fmt.Errorf("--to: %w", err)}
	}
	if !from.Before(to) {
		return usageError{errors.New("--from must be before --to")}
	}
	cfg, cat, err := loadFiles(o.configFile, o.catalogFile)
	if err != nil {
		return err
	}
	live, err := o.store.open(ctx, log, nil)
	if err != nil {
		return err
	}
	defer live.Close()

	// The scratch database: the same server, its own name.
	scratchFlags := o.store
	scratchFlags.cluster = ""
	scratchFlags.dsn, err = scratchDSN(o.store.dsn, time.Now())
	if err != nil {
		return usageError{err}
	}
	scratch, err := scratchFlags.open(ctx, log, nil)
	if err != nil {
		return err
	}
	defer scratch.Close()
	if !o.keep {
		defer func() {
			if err := scratch.DropDatabase(context.WithoutCancel(ctx)); err != nil {
				log.Warn("replay: scratch database left behind", "err", err)
			}
		}()
	}
	if err := scratch.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate the scratch database: %w", err)
	}
	svc, err := incidents.NewService(incidents.Options{
		Config: cfg.Incidents, Store: scratch, Logger: log,
		Resolver: cat.ServiceFor, Upstream: cat.UpstreamNearestFirst,
	})
	if err != nil {
		return err
	}
	st, err := journal.Replay(ctx, live, svc, from, to)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	fmt.Fprintf(stdout, "replayed %s to %s: %d notifications, %d actions (%d no longer apply, %d refused)\n",
		from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), st.Notifications, st.Commands, st.Orphans, st.Refused)
	if o.keep {
		fmt.Fprintf(stdout, "scratch database: %s\n", mustDatabase(scratchFlags.dsn))
	}

	// The incidents derived again, and the live ones of the time they
	// span: notifications are logged as they happen, so alert times fall
	// in [from, to] but for late deliveries, which widen the span.
	after, err := listPeriod(ctx, scratch, time.Time{}, time.Time{})
	if err != nil {
		return err
	}
	start, end := from, to
	for _, inc := range after {
		start = minTime(start, inc.StartedAt)
		if !inc.ResolvedAt.IsZero() {
			end = maxTime(end, inc.ResolvedAt)
		}
	}
	before, err := listPeriod(ctx, live, start, end)
	if err != nil {
		return err
	}
	// Only live incidents that hold alerts of the replay are compared:
	// the others come from notifications logged outside the period.
	replayed := map[string]bool{}
	for _, inc := range after {
		for _, a := range inc.Alerts {
			replayed[a.Key()] = true
		}
	}
	for id, inc := range before {
		holds := false
		for _, a := range inc.Alerts {
			holds = holds || replayed[a.Key()]
		}
		if !holds {
			delete(before, id)
		}
	}
	d := diffIncidents(before, after)
	d.write(stdout)
	fmt.Fprintf(stdout, "availability from %s to %s:\n", start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
	if err := compareAvailability(ctx, stdout, live, scratch, cat, cfg.Availability, start, end); err != nil {
		return err
	}
	if o.dryRun {
		fmt.Fprintln(stdout, "dry run: nothing written")
		return nil
	}
	n, err := writeReplay(ctx, live, scratch, d, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("write the re-derived incidents: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %d incident versions\n", n)
	// The running deriver holds incidents in memory: make it read them
	// again (a command through the log, so it waits for the deriver).
	jrn, err := journal.New(journal.Options{Log: live, Results: live, Incidents: live, Logger: log})
	if err != nil {
		return err
	}
	if _, err := jrn.Do(ctx, incidents.Command{Kind: incidents.CommandForget}); err != nil {
		fmt.Fprintf(stdout, "no deriver confirmed it re-read the incidents (%v): a deriver that starts later reads them anyway\n", err)
	}
	return nil
}

// scratchDSN is dsn with its database renamed for a replay's scratch one.
func scratchDSN(dsn string, now time.Time) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("--clickhouse.dsn: %w", err)
	}
	db := strings.Trim(u.Path, "/")
	if db == "" {
		db = chstore.DefaultDatabase
	}
	u.Path = "/" + fmt.Sprintf("%s_replay_%d", db, now.Unix())
	return u.String(), nil
}

func mustDatabase(dsn string) string {
	u, _ := url.Parse(dsn)
	return strings.Trim(u.Path, "/")
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// listPeriod reads the incidents that started in [from, to) (zero: no
// bound), whole.
func listPeriod(ctx context.Context, s *chstore.Store, from, to time.Time) (map[string]*incidents.Incident, error) {
	out := map[string]*incidents.Incident{}
	f := incidents.Filter{Since: from, Until: to, Limit: chstore.MaxListLimit}
	for {
		page, next, err := s.List(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, inc := range page {
			full, err := s.Get(ctx, inc.ID)
			if err != nil {
				return nil, err
			}
			if len(full.Periods) > 0 { // not merged away
				out[full.ID] = full
			}
		}
		if next == "" {
			return out, nil
		}
		f.Cursor = next
	}
}

// incidentDiff is what a replay changes.
type incidentDiff struct {
	kept    []string
	changed []*incidents.Incident // the new version
	added   []*incidents.Incident
	gone    []*incidents.Incident
}

func diffIncidents(before, after map[string]*incidents.Incident) incidentDiff {
	var d incidentDiff
	for id, a := range after {
		b, ok := before[id]
		switch {
		case !ok:
			d.added = append(d.added, a)
		case sameIncident(a, b):
			d.kept = append(d.kept, id)
		default:
			d.changed = append(d.changed, a)
		}
	}
	for id, b := range before {
		if _, ok := after[id]; !ok {
			d.gone = append(d.gone, b)
		}
	}
	byStart := func(x, y *incidents.Incident) int { return x.StartedAt.Compare(y.StartedAt) }
	slices.SortFunc(d.changed, byStart)
	slices.SortFunc(d.added, byStart)
	slices.SortFunc(d.gone, byStart)
	return d
}

// sameIncident compares what a replay may change: service, impact, state,
// periods and alerts.
func sameIncident(a, b *incidents.Incident) bool {
	if a.Service != b.Service || a.Impact != b.Impact || a.State != b.State || len(a.Periods) != len(b.Periods) || len(a.Alerts) != len(b.Alerts) {
		return false
	}
	for i := range a.Periods {
		if !a.Periods[i].Start.Equal(b.Periods[i].Start) || !a.Periods[i].End.Equal(b.Periods[i].End) {
			return false
		}
	}
	keys := func(inc *incidents.Incident) []string {
		var ks []string
		for _, al := range inc.Alerts {
			ks = append(ks, al.Key()+string(al.Status))
		}
		slices.Sort(ks)
		return ks
	}
	return slices.Equal(keys(a), keys(b))
}

func (d incidentDiff) write(w io.Writer) {
	fmt.Fprintf(w, "incidents: %d unchanged, %d changed, %d new (split off or regrouped), %d gone (merged or regrouped)\n",
		len(d.kept), len(d.changed), len(d.added), len(d.gone))
	line := func(mark string, inc *incidents.Incident) {
		fmt.Fprintf(w, "  %s %s %s %s %s, %d alerts\n", mark, inc.ID, inc.Service, inc.Impact,
			inc.StartedAt.UTC().Format(time.RFC3339), len(inc.Alerts))
	}
	for _, inc := range d.changed {
		line("~", inc)
	}
	for _, inc := range d.added {
		line("+", inc)
	}
	for _, inc := range d.gone {
		line("-", inc)
	}
}

// compareAvailability prints each service's availability over the period
// before (the live database) and after (the scratch one).
func compareAvailability(ctx context.Context, w io.Writer, live, scratch *chstore.Store, cat *catalog.Catalog, cfg availability.Config, from, to time.Time) error {
	win, err := availability.WindowBetween(from, to)
	if err != nil {
		return usageError{err}
	}
	figures := func(s *chstore.Store) (map[string]availability.Figure, error) {
		svc, err := availability.New(availability.Options{Source: s, Catalog: func() *catalog.Catalog { return cat }, Config: cfg})
		if err != nil {
			return nil, err
		}
		all, err := svc.All(ctx, win, false)
		if err != nil {
			return nil, err
		}
		out := map[string]availability.Figure{}
		for _, f := range all {
			out[f.Service] = f
		}
		return out, nil
	}
	b, err := figures(live)
	if err != nil {
		return err
	}
	a, err := figures(scratch)
	if err != nil {
		return err
	}
	var names []string
	for n := range b {
		names = append(names, n)
	}
	for n := range a {
		if _, ok := b[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tBEFORE\tAFTER\tCHANGE")
	for _, n := range names {
		fb, fa := b[n], a[n]
		change := ""
		if fb.Availability != fa.Availability {
			change = fmt.Sprintf("%+.6f", fa.Availability-fb.Availability)
		}
		fmt.Fprintf(tw, "%s\t%.6f\t%.6f\t%s\n", n, fb.Availability, fa.Availability, change)
	}
	return tw.Flush()
}

// writeReplay writes the re-derived incidents that changed or are new as
// versions above the live ones, with the scratch timeline's events, and
// empties those gone (resolved, without periods, their alerts moved), each
// with a timeline event saying so. It returns how many versions it wrote.
func writeReplay(ctx context.Context, live, scratch *chstore.Store, d incidentDiff, now time.Time) (int, error) {
	var chs []incidents.Change
	bump := func(inc *incidents.Incident) {
		facts := inc.Facts
		if old, err := live.Get(ctx, inc.ID); err == nil {
			facts = max(facts, old.Facts)
		}
		inc.Facts, inc.UpdatedAt = facts+1, now
	}
	for _, inc := range append(slices.Clone(d.changed), d.added...) {
		evs, err := scratch.Timeline(ctx, inc.ID)
		if err != nil {
			return 0, err
		}
		ch := incidents.Change{Incident: inc, Alerts: inc.Alerts, Events: append(evs, incidents.Event{
			ID: incidents.EventID(inc.ID, "replayed", now.String()), IncidentID: inc.ID, At: now, Kind: incidents.EventNote,
			Actor: "nines replay", Text: "Derived again from the notification log under the current configuration",
		})}
		if old, err := live.Get(ctx, inc.ID); err == nil {
			ch.Moved = movedAway(old, inc)
		}
		bump(inc)
		chs = append(chs, ch)
	}
	for _, old := range d.gone {
		m := old.Clone()
		m.Alerts, m.Periods, m.Segments = nil, nil, nil
		m.State, m.ResolvedBy = incidents.StateResolved, "nines"
		if m.ResolvedAt.IsZero() {
			m.ResolvedAt = m.StartedAt
		}
		bump(m)
		chs = append(chs, incidents.Change{Incident: m, Moved: old.Alerts, Events: []incidents.Event{{
			ID: incidents.EventID(m.ID, "replayed", now.String()), IncidentID: m.ID, At: now, Kind: incidents.EventNote,
			Actor: "nines replay", Text: "Derived again from the notification log under the current configuration: its alerts now belong to other incidents",
		}}})
	}
	if len(chs) == 0 {
		return 0, nil
	}
	return len(chs), live.Write(ctx, chs)
}

// movedAway returns old's alerts that inc no longer holds.
func movedAway(old, inc *incidents.Incident) []incidents.Alert {
	keep := map[string]bool{}
	for _, a := range inc.Alerts {
		keep[a.Key()] = true
	}
	var out []incidents.Alert
	for _, a := range old.Alerts {
		if !keep[a.Key()] {
			out = append(out, a)
		}
	}
	return out
}
