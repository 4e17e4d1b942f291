package incidents

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// nullStore is a Store with nothing in it that accepts every write: the
// lifecycle's cost without storage.
type nullStore struct{}

func (nullStore) Latest(context.Context, []GroupRef) (map[GroupRef]*Incident, error) {
	return map[GroupRef]*Incident{}, nil
}
func (nullStore) Get(context.Context, string) (*Incident, error) { return nil, ErrNotFound }
func (nullStore) Write(context.Context, []Change) error          { return nil }

// benchGroup returns the notifications one alert group sends in a storm:
// it opens with n firing alerts, is sent again unchanged, loses half of
// them, then resolves.
func benchGroup(g, n int, start time.Time) []Notification {
	key := fmt.Sprintf(`{}:{alertname="HighLatency", service="svc-%d"}`, g)
	alerts := make([]Alert, n)
	for i := range alerts {
		instance := fmt.Sprintf("svc-%d-%d.example.net:9100", g, i)
		alerts[i] = Alert{
			Fingerprint: fmt.Sprintf("%08x%08x", g, i),
			Status:      AlertFiring,
			Labels: map[string]string{
				"alertname": "HighLatency", "service": fmt.Sprintf("svc-%d", g), "severity": "critical",
				"instance": instance, "job": "svc", "team": "search", "namespace": "prod", "cluster": "eu1",
			},
			Annotations: map[string]string{
				"summary":     "p99 latency above 500ms on " + instance,
				"description": "HighLatency has fired on " + instance + " for more than 5 minutes.",
				"runbook_url": "https://runbooks.example.com/HighLatency",
			},
			StartsAt:     start.Add(time.Duration(i) * time.Second),
			GeneratorURL: "http://prometheus.example.net:9090/graph?g0.expr=up",
		}
	}
	notify := func(resolved int) Notification {
		nt := Notification{
			Receiver: "nines", Status: AlertFiring, GroupKey: key,
			GroupLabels:  map[string]string{"alertname": "HighLatency", "service": fmt.Sprintf("svc-%d", g)},
			CommonLabels: map[string]string{"alertname": "HighLatency", "service": fmt.Sprintf("svc-%d", g), "severity": "critical"},
			ExternalURL:  "http://alertmanager.example.net:9093",
			Alerts:       make([]Alert, n),
		}
		copy(nt.Alerts, alerts)
		for i := range resolved {
			nt.Alerts[i].Status = AlertResolved
			nt.Alerts[i].EndsAt = start.Add(10 * time.Minute)
		}
		if resolved == n {
			nt.Status = AlertResolved
		}
		return nt
	}
	return []Notification{notify(0), notify(0), notify(n / 2), notify(n)}
}

// BenchmarkIngest runs Service.Ingest on an in-memory store: grouping,
// deduplication and the lifecycle, without storage. "lifecycle" sends a
// new group through open, repeat, partial resolve and full resolve (four
// notifications an iteration); "repeat" sends one open group's snapshot
// again, which changes nothing (the common case between storms).
func BenchmarkIngest(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1, 16, 64} {
		b.Run("lifecycle/alerts="+strconv.Itoa(n), func(b *testing.B) {
			now := time.Date(2026, 11, 22, 17, 0, 0, 0, time.UTC)
			svc, err := NewService(Options{Config: DefaultConfig(), Store: nullStore{}, Now: func() time.Time { return now }, CacheSize: 1000})
			if err != nil {
				b.Fatal(err)
			}
			groups := make([][]Notification, 0, 1024)
			for g := range cap(groups) {
				groups = append(groups, benchGroup(g, n, now.Add(-time.Hour)))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				// Each group is new to the service: the clock moves past
				// the reopen window, and evicted groups are unknown to
				// the (empty) store.
				now = now.Add(time.Hour)
				for _, nt := range groups[i%len(groups)] {
					nt.ReceivedAt = now
					if err := svc.Ingest(ctx, nt); err != nil {
						b.Fatal(err)
					}
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(4*i), "ns/notification")
		})
	}
	b.Run("repeat/alerts=64", func(b *testing.B) {
		now := time.Date(2026, 11, 22, 17, 0, 0, 0, time.UTC)
		svc, err := NewService(Options{Config: DefaultConfig(), Store: nullStore{}, Now: func() time.Time { return now }})
		if err != nil {
			b.Fatal(err)
		}
		nt := benchGroup(1, 64, now.Add(-time.Hour))[0]
		if err := svc.Ingest(ctx, nt); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := svc.Ingest(ctx, nt); err != nil {
				b.Fatal(err)
			}
		}
	})
}
