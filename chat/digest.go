package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/incidents"
)

// Figure is a service's availability over a window, as chat shows it.
type Figure struct {
	Service         string
	Owner           string
	Availability    float64 // 0…1
	SLOTarget       float64 // 0…1
	BudgetSeconds   float64 // the window's error budget
	BudgetRemaining float64 // share of the budget left; negative once overspent
	DowntimeSeconds float64
	Incidents       int
}

// Availability knows how to compute services' availability over a window
// such as "7d" or "30d". cmd/nines adapts *availability.Service to it.
type Availability interface {
	// Figures returns every service's figures.
	Figures(ctx context.Context, window string) ([]Figure, error)
	// Figure returns one service's figures.
	Figure(ctx context.Context, service, window string) (Figure, error)
}

// IncidentLister knows how to list incidents; *chstore.Store implements
// it.
type IncidentLister interface {
	List(ctx context.Context, f incidents.Filter) ([]*incidents.Incident, string, error)
}

// Digest windows.
const (
	digestWeek  = "7d"
	digestMonth = "30d"
	// maxDigestIncidents bounds how many incidents a digest reads.
	maxDigestIncidents = 5000
	maxDigestRows      = 150
	maxWorst           = 5
	maxLongest         = 5
)

// digester builds the availability digest.
type digester struct {
	avail Availability
	// incs, if set, adds the longest incidents and MTTA/MTTR.
	incs    IncidentLister
	catalog func() *catalog.Catalog
	pageURL string // nines' external URL: incidents link to their pages
	// dora, if set, adds the week's delivery (DORA) figures.
	dora DORASource
}

// digestData is what one digest shows.
type digestData struct {
	Scope     string // "All services" or "Squad payments"
	From, To  time.Time
	Rows      []digestRow // worst first
	Longest   []digestItem
	Incidents int // started in the last week
	MTTA      *time.Duration
	MTTR      *time.Duration
	Loc       *time.Location
	PageURL   string       // nines' external URL, if known
	Delivery  []DORAFigure // the last week's, by service
}

type digestRow struct {
	Service, Owner string
	SLO            float64
	Week, Month    float64
	BudgetLeft     float64 // of the 30-day budget
	Incidents      int     // in the last week
}

type digestItem struct {
	ID, Service, Title, Owner string
	Impact                    incidents.Impact
	Downtime                  time.Duration
	Started                   time.Time
}

// Messages builds the digest for the operations channel (every service)
// and for each squad's channel (its services), keyed by channel.
func (d *digester) Messages(ctx context.Context, now time.Time, operations string) (map[string]rendered, error) {
	all, err := d.build(ctx, now)
	if err != nil {
		return nil, err
	}
	out := map[string]rendered{operations: renderDigest(all)}
	cat := d.cat()
	for _, sq := range cat.Squads() {
		if sq.Channel == "" || sq.Channel == operations {
			continue
		}
		part := all.forSquad(sq.Name)
		if len(part.Rows) == 0 {
			continue
		}
		if _, dup := out[sq.Channel]; dup {
			continue
		}
		out[sq.Channel] = renderDigest(part)
	}
	return out, nil
}

func (d *digester) cat() *catalog.Catalog {
	if d.catalog != nil {
		if c := d.catalog(); c != nil {
			return c
		}
	}
	return catalog.Empty(catalog.DefaultSLOTarget)
}

func (d *digester) build(ctx context.Context, now time.Time) (digestData, error) {
	cat := d.cat()
	week, err := d.avail.Figures(ctx, digestWeek)
	if err != nil {
		return digestData{}, fmt.Errorf("digest: availability over %s: %w", digestWeek, err)
	}
	month, err := d.avail.Figures(ctx, digestMonth)
	if err != nil {
		return digestData{}, fmt.Errorf("digest: availability over %s: %w", digestMonth, err)
	}
	dd := digestData{Scope: "All services", From: now.Add(-7 * 24 * time.Hour), To: now, Loc: cat.Location(), PageURL: d.pageURL}
	rows := map[string]*digestRow{}
	get := func(f Figure) *digestRow {
		r := rows[f.Service]
		if r == nil {
			r = &digestRow{Service: f.Service, Owner: f.Owner, SLO: f.SLOTarget, Week: 1, Month: 1, BudgetLeft: 1}
			rows[f.Service] = r
		}
		return r
	}
	for _, f := range week {
		r := get(f)
		r.Week, r.Incidents = f.Availability, f.Incidents
	}
	for _, f := range month {
		r := get(f)
		r.Month, r.BudgetLeft = f.Availability, f.BudgetRemaining
	}
	for _, r := range rows {
		dd.Rows = append(dd.Rows, *r)
	}
	slices.SortFunc(dd.Rows, func(a, b digestRow) int {
		switch {
		case a.BudgetLeft != b.BudgetLeft:
			return cmpFloat(a.BudgetLeft, b.BudgetLeft)
		case a.Week != b.Week:
			return cmpFloat(a.Week, b.Week)
		}
		return strings.Compare(a.Service, b.Service)
	})
	if d.incs != nil {
		if err := d.addIncidents(ctx, &dd, cat, now); err != nil {
			return digestData{}, err
		}
	}
	if d.dora != nil {
		if err := d.addDelivery(ctx, &dd); err != nil {
			return digestData{}, err
		}
	}
	return dd, nil
}

func cmpFloat(a, b float64) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// addIncidents adds the week's longest incidents and the times to
// acknowledge and to resolve, over incidents that started in the week.
func (d *digester) addIncidents(ctx context.Context, dd *digestData, cat *catalog.Catalog, now time.Time) error {
	all, err := incidents.ListUpTo(ctx, d.incs.List, incidents.Filter{Since: dd.From}, maxDigestIncidents)
	if err != nil {
		return fmt.Errorf("digest: list incidents: %w", err)
	}
	var ackSum, resSum time.Duration
	var acked, resolved int
	for _, inc := range all {
		dd.Incidents++
		if !inc.AcknowledgedAt.IsZero() && !inc.AcknowledgedAt.Before(inc.StartedAt) {
			ackSum += inc.AcknowledgedAt.Sub(inc.StartedAt)
			acked++
		}
		if inc.State == incidents.StateResolved && !inc.ResolvedAt.Before(inc.StartedAt) {
			resSum += inc.ResolvedAt.Sub(inc.StartedAt)
			resolved++
		}
		di := digestItem{ID: inc.ID, Service: inc.Service, Title: inc.Title, Impact: inc.Impact,
			Downtime: firingWithin(inc, dd.From, now), Started: inc.StartedAt}
		if svc, ok := cat.Service(inc.Service); ok {
			di.Owner = svc.Owner
		}
		dd.Longest = append(dd.Longest, di)
	}
	if acked > 0 {
		m := ackSum / time.Duration(acked)
		dd.MTTA = &m
	}
	if resolved > 0 {
		m := resSum / time.Duration(resolved)
		dd.MTTR = &m
	}
	slices.SortFunc(dd.Longest, func(a, b digestItem) int {
		if a.Downtime != b.Downtime {
			return cmpFloat(float64(b.Downtime), float64(a.Downtime))
		}
		return strings.Compare(a.ID, b.ID)
	})
	return nil
}

// firingWithin is how long the incident fired within [from, now).
func firingWithin(inc *incidents.Incident, from, now time.Time) time.Duration {
	var sum time.Duration
	for _, p := range inc.Periods {
		s, e := p.Start, p.End
		if e.IsZero() || e.After(now) {
			e = now
		}
		if s.Before(from) {
			s = from
		}
		if e.After(s) {
			sum += e.Sub(s)
		}
	}
	return sum
}

// forSquad narrows the digest to a squad's services.
func (dd digestData) forSquad(squad string) digestData {
	out := dd
	out.Scope = "Squad " + squad
	out.Rows = nil
	for _, r := range dd.Rows {
		if r.Owner == squad {
			out.Rows = append(out.Rows, r)
		}
	}
	out.Longest = nil
	for _, i := range dd.Longest {
		if i.Owner == squad {
			out.Longest = append(out.Longest, i)
		}
	}
	out.Delivery = nil
	for _, f := range dd.Delivery {
		if f.Owner == squad {
			out.Delivery = append(out.Delivery, f)
		}
	}
	return out
}

// renderDigest builds the digest message.
func renderDigest(dd digestData) rendered {
	loc := dd.Loc
	if loc == nil {
		loc = time.UTC
	}
	title := fmt.Sprintf(":bar_chart: Availability report · %s – %s",
		dd.From.In(loc).Format("Mon 2 Jan"), dd.To.In(loc).Format("Mon 2 Jan 2006"))
	blocks := []slack.Block{slack.NewHeaderBlock(plain(title, maxHeaderText))}

	summary := fmt.Sprintf("*%s* · last 7 and 30 days · %d services · %d incidents started in the last 7 days",
		esc(dd.Scope), len(dd.Rows), dd.Incidents)
	if dd.MTTA != nil {
		summary += " · MTTA " + incidents.FormatDuration(*dd.MTTA)
	}
	if dd.MTTR != nil {
		summary += " · MTTR " + incidents.FormatDuration(*dd.MTTR)
	}
	blocks = append(blocks, section(summary))

	var worst []string
	for _, r := range dd.Rows {
		if len(worst) == maxWorst {
			break
		}
		if r.Month < r.SLO || r.Week < r.SLO {
			worst = append(worst, fmt.Sprintf("• :red_circle: *%s* %s over 30 days, %s over 7 (SLO %s) — %s",
				esc(r.Service), pct3(r.Month), pct3(r.Week), catalog.Percent(r.SLO), budgetLeftText(r.BudgetLeft)))
		}
	}
	if len(worst) > 0 {
		blocks = append(blocks, section("*Below SLO*\n"+strings.Join(worst, "\n")))
	} else if len(dd.Rows) > 0 {
		blocks = append(blocks, section(":white_check_mark: Every service met its SLO over the last 7 and 30 days."))
	}

	blocks = append(blocks, tableSections(dd.Rows)...)

	if len(dd.Longest) > 0 {
		var b strings.Builder
		b.WriteString("*Longest incidents (last 7 days)*")
		for i, inc := range dd.Longest {
			if i == maxLongest || inc.Downtime <= 0 {
				break
			}
			id := "`" + inc.ID + "`"
			if u := incidentPage(dd.PageURL, inc.ID); u != "" {
				id = link(u, inc.ID)
			}
			fmt.Fprintf(&b, "\n• %s *%s* — %s — %s (%s)", impactEmoji(inc.Impact), esc(inc.Service),
				esc(clip(inc.Title, 200)), incidents.FormatDuration(inc.Downtime), id)
		}
		if b.Len() > len("*Longest incidents (last 7 days)*") {
			blocks = append(blocks, section(b.String()))
		}
	}
	blocks = append(blocks, deliverySection(dd.Delivery)...)
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn("nines · availability excludes maintenance windows · generated "+slackDate(dd.To), maxSectionText)))
	text := fmt.Sprintf("Availability report (%s): %d services, %d incidents in the last 7 days", dd.Scope, len(dd.Rows), dd.Incidents)
	return rendered{Text: clip(esc(text), maxFallback), Blocks: capBlocks(blocks)}
}

// tableSections lays the services out as a monospace table, split into
// sections that stay under Slack's limits.
func tableSections(rows []digestRow) []slack.Block {
	if len(rows) == 0 {
		return nil
	}
	width := len("service")
	for i, r := range rows {
		if i == maxDigestRows {
			break
		}
		width = max(width, min(len(r.Service), 32))
	}
	head := fmt.Sprintf("%-*s  %8s  %8s  %7s  %11s  %s", width, "service", "7d", "30d", "SLO", "budget left", "incidents")
	var out []slack.Block
	var b strings.Builder
	start := func() {
		b.Reset()
		b.WriteString("```\n" + head + "\n")
	}
	end := func() {
		out = append(out, section(strings.TrimSuffix(b.String(), "\n")+"\n```"))
	}
	start()
	for i, r := range rows {
		if i == maxDigestRows {
			b.WriteString(fmt.Sprintf("…and %d more services\n", len(rows)-i))
			break
		}
		line := fmt.Sprintf("%-*s  %8s  %8s  %7s  %11s  %d\n", width, clip(r.Service, 32), pct3(r.Week), pct3(r.Month),
			catalog.Percent(r.SLO), percent(r.BudgetLeft), r.Incidents)
		if b.Len()+len(line)+4 > sectionBudget {
			end()
			start()
		}
		b.WriteString(line)
	}
	end()
	return out
}

// pct3 writes an availability with three decimals, never rounding a
// shortfall up to 100%.
func pct3(a float64) string {
	p := math.Floor(a*100_000) / 1000
	return strconv.FormatFloat(p, 'f', 3, 64) + "%"
}

func budgetLeftText(left float64) string {
	if left < 0 {
		return "error budget overspent by " + percent(-left)
	}
	return percent(left) + " of the error budget left"
}

// prepareDigest builds the digest when one is due and not yet posted.
func (s *Sender) prepareDigest(ctx context.Context, now time.Time) {
	st := s.st
	if s.digester == nil {
		return
	}
	sc, err := s.cfg.Digest.schedule(s.catalog().Location())
	if err != nil || sc == nil {
		return
	}
	due := sc.last(now)
	if now.Sub(due) > digestCatchUp || due.Equal(st.digestDue) || now.Before(st.storeWait) {
		return
	}
	key := "digest:" + due.UTC().Format(time.RFC3339)
	recs, err := s.ledger.LoadChat(ctx, []string{digestIncident}, s.holder)
	if err != nil {
		s.storeFailed("load digests", err)
		st.storeWait = now.Add(s.cfg.PollInterval)
		return
	}
	done := map[string]bool{}
	intents := map[string]*intent{}
	for _, d := range recs.Deliveries {
		if d.Key != key {
			continue
		}
		if d.State.Final() {
			done[d.Channel] = true
		} else if d.State == StateIntent && !s.neverSent(d) {
			dd := d
			intents[d.Channel] = &intent{d: dd}
		}
	}
	msgs, err := s.digester.Messages(ctx, now, s.cfg.OperationsChannel)
	if err != nil {
		s.log.Warn("chat: cannot build the availability digest; trying again in a minute", "err", err)
		st.storeWait = now.Add(time.Minute)
		return
	}
	st.digestDue = due
	st.digestJobs = nil
	for _, ch := range slices.Sorted(maps.Keys(msgs)) {
		if done[ch] || (s.hooks[ch] == "" && s.api.client == nil) {
			continue
		}
		st.digestJobs = append(st.digestJobs, &digestJob{key: key, channel: ch, hook: s.hooks[ch], msg: msgs[ch], intent: intents[ch]})
	}
}

// digestAction is what a digest job needs now, if anything.
func (s *Sender) digestAction(j *digestJob, now time.Time, soon func(time.Time)) *action {
	if j.done {
		return nil
	}
	if it := j.intent; it != nil {
		if it.lookup || !now.Before(it.d.At.Add(s.grace)) {
			return &action{kind: actRecover, prio: 0, digest: j, key: j.key, dkind: KindDigest, intent: it}
		}
		soon(it.d.At.Add(s.grace))
		return nil
	}
	return &action{kind: actDigest, prio: 3, digest: j, key: j.key, dkind: KindDigest}
}

// DigestOptions configure PostDigest.
type DigestOptions struct {
	// Config gives the operations channel.
	Config Config
	// Token, APIURL, HTTPClient and WebhookURLs are as in Options.
	Token       string
	APIURL      string
	HTTPClient  *http.Client
	WebhookURLs map[string]string
	// Availability is required; Incidents, DORA and Catalog are
	// optional.
	Availability Availability
	Incidents    IncidentLister
	DORA         DORASource
	Catalog      func() *catalog.Catalog
	// ExternalURL: as in Options.
	ExternalURL string
	// Channels, if set, limits the posts to these channels.
	Channels   []string
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// PostDigest builds the availability digest now and posts it once to the
// operations channel and to each squad's channel, for `nines report
// --post`. It returns the channels it posted to; errors of single
// channels are joined.
func PostDigest(ctx context.Context, o DigestOptions) ([]string, error) {
	if o.Availability == nil {
		return nil, errors.New("chat: digest: availability is required")
	}
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.Token == "" && len(o.WebhookURLs) == 0 {
		return nil, errors.New("chat: digest: a Slack bot token or incoming webhooks are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	api := newSlackAPI(o.Token, o.APIURL, o.HTTPClient, newMetrics(o.Registerer))
	d := &digester{avail: o.Availability, incs: o.Incidents, dora: o.DORA, catalog: o.Catalog, pageURL: strings.TrimSuffix(o.ExternalURL, "/")}
	now := o.Now()
	msgs, err := d.Messages(ctx, now, o.Config.OperationsChannel)
	if err != nil {
		return nil, err
	}
	var posted []string
	var errs []error
	key := "digest:" + now.UTC().Format(time.RFC3339)
	for _, ch := range slices.Sorted(maps.Keys(msgs)) {
		if len(o.Channels) > 0 && !slices.Contains(o.Channels, ch) {
			continue
		}
		var err error
		switch hook := o.WebhookURLs[ch]; {
		case hook != "":
			err = api.webhook(ctx, hook, msgs[ch])
		case api.client != nil:
			_, _, err = api.post(ctx, ch, "", msgs[ch], deliveryMeta{Key: key, IncidentID: digestIncident})
		default:
			o.Logger.Warn("digest: no bot token and no webhook for channel", "channel", ch)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("post digest to %s: %w", ch, err))
			continue
		}
		posted = append(posted, ch)
	}
	return posted, errors.Join(errs...)
}
