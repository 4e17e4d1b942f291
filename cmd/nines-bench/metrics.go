package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ninesops/nines/cmd/internal/harness"
)

// samples are the series of one /metrics scrape, by name and labels as
// written ("name{a="b"}").
type samples map[string]float64

// scrape reads a Prometheus text exposition.
func scrape(ctx context.Context, client *http.Client, url string) (samples, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	out := samples{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// storeTables are nines' tables, in the order they are reported.
var storeTables = []string{"incidents", "incident_alerts", "incident_events"}

// storeStats is what nines' store did during a phase, from the difference
// of two scrapes of nines' nines_clickhouse_* metrics.
type storeStats struct {
	inserts    map[string]float64 // INSERTs by table
	rows       map[string]float64 // rows by table
	flushes    float64
	flushTime  float64 // seconds, summed
	flushCalls float64 // Write calls merged into the flushes
	errors     float64
	ops        map[string]float64 // ClickHouse operations by op
	seconds    float64            // length of the phase
}

func diffStore(before, after samples, d time.Duration) storeStats {
	s := storeStats{inserts: map[string]float64{}, rows: map[string]float64{}, ops: map[string]float64{}, seconds: d.Seconds()}
	delta := func(k string) float64 { return after[k] - before[k] }
	for _, t := range storeTables {
		s.inserts[t] = delta(`nines_clickhouse_insert_rows_count{table="` + t + `"}`)
		s.rows[t] = delta(`nines_clickhouse_insert_rows_sum{table="` + t + `"}`)
	}
	s.flushes = delta("nines_clickhouse_flush_duration_seconds_count")
	s.flushTime = delta("nines_clickhouse_flush_duration_seconds_sum")
	s.flushCalls = delta("nines_clickhouse_flush_writes_sum")
	for k := range after {
		if strings.HasPrefix(k, "nines_clickhouse_errors_total") {
			s.errors += delta(k)
		}
		if op, ok := strings.CutPrefix(k, `nines_clickhouse_operations_total{op="`); ok {
			if n := delta(k); n > 0 {
				s.ops[strings.TrimSuffix(op, `"}`)] = n
			}
		}
	}
	return s
}

func (s storeStats) totalRows() float64 {
	var n float64
	for _, t := range storeTables {
		n += s.rows[t]
	}
	return n
}

// minRowsPerInsert is the smallest mean rows per INSERT over the tables.
func (s storeStats) String() string {
	var parts []string
	for _, t := range storeTables {
		per := 0.0
		if s.inserts[t] > 0 {
			per = s.rows[t] / s.inserts[t]
		}
		parts = append(parts, fmt.Sprintf("%s %.1f/s × %s rows", t, s.inserts[t]/s.seconds, thousands(per)))
	}
	mean := 0.0
	if s.flushes > 0 {
		mean = s.flushTime / s.flushes * 1000
	}
	calls := 0.0
	if s.flushes > 0 {
		calls = s.flushCalls / s.flushes
	}
	var ops []string
	for op, n := range s.ops {
		if !strings.HasPrefix(op, "insert_") {
			ops = append(ops, fmt.Sprintf("%s %s", op, thousands(n)))
		}
	}
	sort.Strings(ops)
	return fmt.Sprintf("INSERTs %s; %s flushes (%.1f/s, mean %.0f ms, %.0f writes each), %s rows, %.0f store errors; other queries: %s",
		strings.Join(parts, ", "), thousands(s.flushes), s.flushes/s.seconds, mean, calls, thousands(s.totalRows()), s.errors, orDash(strings.Join(ops, ", ")))
}

// partsPoller samples system.parts while a phase runs and keeps the
// largest number of active parts in one partition.
type partsPoller struct {
	stop chan struct{}
	done chan struct{}

	mu        sync.Mutex
	max       int
	where     string
	samples   int
	lastError error
}

func pollParts(ctx context.Context, ch *harness.SQL, db string, every time.Duration) *partsPoller {
	p := &partsPoller{stop: make(chan struct{}), done: make(chan struct{})}
	q := fmt.Sprintf(`SELECT table, partition, count() AS c FROM system.parts
WHERE active AND database = '%s' GROUP BY table, partition ORDER BY c DESC LIMIT 1 FORMAT TSV`, db)
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			out, err := ch.Query(ctx, q)
			p.mu.Lock()
			if err != nil {
				p.lastError = err
			} else if f := strings.Split(strings.TrimSpace(out), "\t"); len(f) == 3 {
				p.samples++
				if n, _ := strconv.Atoi(f[2]); n > p.max {
					p.max, p.where = n, f[0]+" partition "+f[1]
				}
			}
			p.mu.Unlock()
			select {
			case <-t.C:
			case <-p.stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return p
}

// result stops the poller and returns the maximum seen.
func (p *partsPoller) result() (int, string, error) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.samples == 0 && p.lastError != nil {
		return 0, "", p.lastError
	}
	return p.max, p.where, nil
}

// thousands formats n with thousands separators and no decimals (or one
// decimal below 10).
func thousands(n float64) string {
	if n < 10 && n != float64(int64(n)) {
		return strconv.FormatFloat(n, 'f', 1, 64)
	}
	s := strconv.FormatInt(int64(n+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// sortedCodes lists status codes and counts, for the report.
func sortedCodes(m map[int]int) string {
	var codes []int
	for c := range m {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", m[c], c))
	}
	return strings.Join(parts, " ")
}
