package main

import (
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"
	"time"
)

// report is the bench's output.
type report struct {
	cfg     *config
	w, lat  *workload
	decode  *phaseResult
	am      *phaseResult
	nines   *phaseResult
	insert  *phaseResult
	latency *phaseResult
	storm   *stormResults

	loadBefore, loadAfter string
}

// Targets of issues 8 and 20.
const (
	targetStormAM       = 2.0 // storm of new groups: nines ≥ 2× Alertmanager
	targetStormLogBound = 0.5 // and ≥ half the raw-log insert bound
	targetVisibleP99    = 2 * time.Second
	targetP99           = 50 * time.Millisecond
	targetPeakRSS       = 200 << 20
	targetRows          = 1000
	targetMaxParts      = 150
	targetInsertRate    = 1.5 // "about one INSERT per table per second"
)

func ms(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0f ms", float64(d)/1e6)
}

func mb(n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MB", float64(n)/(1<<20))
}

// perNotif is CPU time per notification answered: a figure other work on
// the machine disturbs less than rates do.
func perNotif(u *usage, n int) string {
	if u == nil || u.pid <= 0 || n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f ms", u.CPU.Seconds()*1000/float64(n))
}

func cpu(u *usage, elapsed time.Duration) string {
	if u == nil || u.pid <= 0 || elapsed <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f s (%.2f cores)", u.CPU.Seconds(), u.CPU.Seconds()/elapsed.Seconds())
}

// row is one line of a table.
type row struct {
	name string
	p    *phaseResult
}

func (r *report) rows() []row {
	return []row{
		{"HTTP + decode bound (in process)", r.decode},
		{"Alertmanager 0.25 /api/v2/alerts", r.am},
		{"nines → ClickHouse", r.nines},
		{"ClickHouse insert bound", r.insert},
		{fmt.Sprintf("nines at %.0f/s (latency run)", r.cfg.latencyRate), r.latency},
	}
}

// stormRows are the storm of new groups' lines.
func (r *report) stormRows() []row {
	if r.storm == nil {
		return nil
	}
	return []row{
		{"storm: HTTP + decode bound (in process)", r.storm.decode},
		{"storm: Alertmanager 0.25 /api/v2/alerts", r.storm.am},
		{"storm: nines → notification log", r.storm.nines},
		{"storm: raw-log insert bound", r.storm.logBound},
	}
}

func (r *report) print(out io.Writer) {
	fmt.Fprintf(out, "\nnines-bench: %d notifications, %d alerts, concurrency %d, %d CPUs (%s/%s, %s)\n",
		len(r.w.steps), r.w.alerts, r.cfg.concurrency, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(out, "machine before: %s; after: %s\n", r.loadBefore, r.loadAfter)
	if r.cfg.rounds > 1 {
		fmt.Fprintf(out, "throughput phases: fastest of %d rounds each\n", r.cfg.rounds)
	}
	fmt.Fprintln(out)
	r.table(out, r.rows())
	if r.storm != nil {
		fmt.Fprintf(out, "storm of new groups: %d notifications of 64 alerts, each a new group, %d senders\n\n",
			r.cfg.stormNotifications, r.cfg.stormConcurrency)
		r.table(out, r.stormRows())
	}
	r.details(out, append(r.rows(), r.stormRows()...))

	fmt.Fprintln(out)
	fmt.Fprintln(out, r.ratios())
	fmt.Fprintln(out)
	fmt.Fprintln(out, "targets (issues 8 and 20):")
	for _, t := range r.targets() {
		fmt.Fprintf(out, "  %s\n", t)
	}
}

// table prints rows as a table.
func (r *report) table(out io.Writer, rows []row) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tnotif/s\talerts/s\tp50\tp99\tmax\tnon-2xx\treceiver CPU\tCPU/notif\tpeak RSS\tClickHouse CPU\tCPU/notif\t")
	for _, row := range rows {
		p := row.p
		if p == nil {
			continue
		}
		l := p.load
		var rss int64
		if p.server != nil {
			rss = p.server.PeakRSS
		}
		bound := row.p == r.insert || (r.storm != nil && row.p == r.storm.logBound)
		non2xx := fmt.Sprint(l.non2xx + l.transport)
		if bound {
			non2xx = "-"
		}
		if p.inProcess || bound {
			rss = 0 // the bench's own, scripts included: meaningless
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", row.name,
			thousands(l.perSecond(l.ok)), thousands(l.perSecond(l.okAlerts)),
			ms(l.quantile(0.5)), ms(l.quantile(0.99)), ms(l.max()), non2xx,
			cpu(p.server, l.elapsed), perNotif(p.server, l.ok), mb(rss), cpu(p.ch, l.elapsed), perNotif(p.ch, l.ok))
	}
	tw.Flush()
	fmt.Fprintln(out)
}

// details prints what else each row's run measured.
func (r *report) details(out io.Writer, rows []row) {
	for _, row := range rows {
		p := row.p
		if p == nil {
			continue
		}
		var lines []string
		if p.store.seconds > 0 && p != r.insert {
			lines = append(lines, "store: "+p.store.String())
		}
		if p.ch != nil {
			lines = append(lines, fmt.Sprintf("max active parts in one partition: %d (%s)", p.parts, orDash(p.where)))
		}
		if rt := p.chRoundTrip; len(rt) > 0 {
			lines = append(lines, fmt.Sprintf("ClickHouse SELECT 1 round trip meanwhile: p50 %s, p99 %s (%d probes)",
				ms(rt[len(rt)/2]), ms(rt[min(len(rt)-1, len(rt)*99/100)]), len(rt)))
		}
		if p.derived > 0 {
			lines = append(lines, fmt.Sprintf("deriver caught up %.1f s after the last answer (POST /api/v1/sync): %s notifications/s answered and applied; through sending and deriving: peak RSS %s, CPU per notification %.2f ms + ClickHouse %.2f ms",
				p.derived.Seconds(), thousands(applied(p)), mb(p.peakDerived),
				p.cpuDerived.Seconds()*1000/float64(max(p.load.ok, 1)), p.chCPUDerived.Seconds()*1000/float64(max(p.load.ok, 1))))
		}
		if p.visible != nil {
			lines = append(lines, p.visible.String())
		}
		if p.check != nil {
			lines = append(lines, "check: "+p.check.String())
		}
		if p.load.late > 0 {
			lines = append(lines, fmt.Sprintf("%d sends more than 10 ms behind schedule", p.load.late))
		}
		lines = append(lines, p.notes...)
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(out, "%s (%.1f s):\n", row.name, p.load.elapsed.Seconds())
		for _, l := range lines {
			fmt.Fprintf(out, "  %s\n", l)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func rate(p *phaseResult) float64 {
	if p == nil {
		return 0
	}
	return p.load.perSecond(p.load.ok)
}

// applied is p's rate counted until the deriver had applied everything,
// not only until the last answer.
func applied(p *phaseResult) float64 {
	if p == nil || p.load.elapsed+p.derived <= 0 {
		return 0
	}
	return float64(p.load.ok) / (p.load.elapsed + p.derived).Seconds()
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func (r *report) ratios() string {
	n := rate(r.nines)
	line := fmt.Sprintf("nines/alertmanager = %s, nines/decode = %s, nines/insert-bound = %s; answered and applied: nines/alertmanager = %s",
		ratio(n, rate(r.am)), ratio(n, rate(r.decode)), ratio(n, rate(r.insert)), ratio(applied(r.nines), rate(r.am)))
	// CPU time per notification depends much less on what else the
	// machine runs than rates do.
	if r.nines != nil && r.am != nil && r.nines.load.ok > 0 && r.am.load.ok > 0 {
		ninesMS := (r.nines.server.CPU + r.nines.ch.CPU).Seconds() * 1000 / float64(r.nines.load.ok)
		amMS := r.am.server.CPU.Seconds() * 1000 / float64(r.am.load.ok)
		line += fmt.Sprintf("\nCPU per notification: nines + ClickHouse %.2f ms, Alertmanager %.2f ms (ratio %s)",
			ninesMS, amMS, ratio(amMS, ninesMS))
	}
	if s := r.storm; s != nil {
		n := rate(s.nines)
		line += fmt.Sprintf("\nstorm of new groups: nines/alertmanager = %s, nines/log-insert-bound = %s, nines/decode = %s; answered and applied: nines/alertmanager = %s",
			ratio(n, rate(s.am)), ratio(n, rate(s.logBound)), ratio(n, rate(s.decode)), ratio(applied(s.nines), rate(s.am)))
	}
	return line
}

func mark(ok bool) string {
	if ok {
		return "met    "
	}
	return "NOT met"
}

func (r *report) targets() []string {
	var out []string
	if n := r.nines; n != nil {
		lost := n.check == nil || !n.check.ok()
		errs := n.load.non2xx + n.load.transport
		if r.am != nil {
			ok := rate(n) >= rate(r.am) && errs == 0 && !lost
			out = append(out, fmt.Sprintf("%s throughput ≥ Alertmanager's: %s vs %s notifications/s (ratio %s), %d non-2xx, check %s",
				mark(ok), thousands(rate(n)), thousands(rate(r.am)), ratio(rate(n), rate(r.am)), errs, okText(!lost)))
		}
		var worstRows, worstRate float64 = -1, 0
		for _, t := range storeTables {
			if n.store.inserts[t] == 0 {
				continue
			}
			per := n.store.rows[t] / n.store.inserts[t]
			if worstRows < 0 || per < worstRows {
				worstRows = per
			}
			worstRate = max(worstRate, n.store.inserts[t]/n.store.seconds)
		}
		ok := worstRows >= targetRows && worstRate <= targetInsertRate && n.parts <= targetMaxParts
		out = append(out, fmt.Sprintf("%s under load about 1 INSERT per table per second with ≥ %d rows, ≤ %d active parts: at most %.1f INSERTs/s per table, at least %s rows per INSERT, %d active parts at most",
			mark(ok), targetRows, targetMaxParts, worstRate, thousands(max(worstRows, 0)), n.parts))
		out = append(out, fmt.Sprintf("%s peak RSS ≤ %s during the sustained run: %s",
			mark(n.server.PeakRSS <= targetPeakRSS), mb(targetPeakRSS), mb(n.server.PeakRSS)))
	}
	if s := r.storm; s != nil && s.nines != nil {
		n := s.nines
		errs := n.load.non2xx + n.load.transport
		checked := n.check != nil && n.check.ok() && errs == 0
		if s.am != nil {
			out = append(out, fmt.Sprintf("%s storm of new groups ≥ %.0f× Alertmanager: %s vs %s notifications/s (%s×), %d non-2xx, check %s",
				mark(rate(n) >= targetStormAM*rate(s.am) && checked), targetStormAM, thousands(rate(n)), thousands(rate(s.am)),
				ratio(rate(n), rate(s.am)), errs, okText(checked)))
		}
		out = append(out, fmt.Sprintf("%s storm of new groups ≥ %.1f× the raw-log insert bound: %s vs %s notifications/s (%s×)",
			mark(rate(n) >= targetStormLogBound*rate(s.logBound) && checked), targetStormLogBound, thousands(rate(n)),
			thousands(rate(s.logBound)), ratio(rate(n), rate(s.logBound))))
		out = append(out, fmt.Sprintf("%s peak RSS ≤ %s through the storm (sending and deriving): %s; deriver caught up %.1f s after the last answer",
			mark(n.peakDerived <= targetPeakRSS), mb(targetPeakRSS), mb(n.peakDerived), n.derived.Seconds()))
	}
	if l := r.latency; l != nil {
		p99 := l.load.quantile(0.99)
		errs := l.load.non2xx + l.load.transport
		ok := p99 <= targetP99 && errs == 0 && l.check != nil && l.check.ok()
		out = append(out, fmt.Sprintf("%s p99 ≤ %v at %.0f notifications/s: p99 %s (p50 %s, max %s), %d non-2xx, check %s",
			mark(ok), targetP99, r.cfg.latencyRate, ms(p99), ms(l.load.quantile(0.5)), ms(l.load.max()), errs, okText(l.check != nil && l.check.ok())))
		if v := l.visible; v != nil {
			ok := len(v.lat) > 0 && v.errs == 0 && v.p99() <= targetVisibleP99
			out = append(out, fmt.Sprintf("%s 2xx to visible in the API p99 ≤ %v: p99 %s over %d samples (%d timeouts, %d errors)",
				mark(ok), targetVisibleP99, ms(v.p99()), len(v.lat)+v.timeouts, v.timeouts, v.errs))
		}
	}
	return out
}

func okText(ok bool) string {
	if ok {
		return "OK"
	}
	return "FAILED"
}

// passed reports whether nines stored everything and answered 2xx: the
// bench fails otherwise, whatever the speed.
func (r *report) passed() bool {
	ps := []*phaseResult{r.nines, r.latency}
	if r.storm != nil {
		ps = append(ps, r.storm.nines)
	}
	for _, p := range ps {
		if p != nil && (p.check == nil || !p.passed()) {
			return false
		}
	}
	return true
}
