package chstore

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ninesops/nines/incidents"
)

// benchChanges returns what opening an incident with n alerts writes: the
// incident, its n alerts and n+1 events, as the lifecycle makes them.
func benchChanges(n int) []incidents.Change {
	start := time.Date(2026, 11, 22, 17, 0, 0, 0, time.UTC)
	inc := &incidents.Incident{
		ID: "inc-0123456789abcdef0123", Service: "search", GroupKey: `{}:{alertname="HighLatency", service="search"}`,
		Title: "p99 latency above 500ms", Impact: incidents.ImpactOutage, State: incidents.StateFiring,
		Source: incidents.SourceAlertmanager, StartedAt: start, UpdatedAt: start.Add(time.Minute), Facts: uint32(n + 1),
		Labels:      map[string]string{"alertname": "HighLatency", "service": "search", "severity": "critical"},
		Annotations: map[string]string{"runbook_url": "https://runbooks.example.com/HighLatency"},
		Periods:     []incidents.Period{{Start: start}},
	}
	ch := incidents.Change{Incident: inc}
	ch.Events = append(ch.Events, incidents.Event{ID: "ev-open", IncidentID: inc.ID, At: start, Kind: incidents.EventOpened, Actor: incidents.ActorAlertmanager, Text: "Opened with impact outage"})
	for i := range n {
		instance := fmt.Sprintf("search-%d.example.net:9100", i)
		a := incidents.Alert{
			Fingerprint: fmt.Sprintf("%016x", i), Status: incidents.AlertFiring, Impact: incidents.ImpactOutage,
			Labels: map[string]string{
				"alertname": "HighLatency", "service": "search", "severity": "critical", "instance": instance,
				"job": "search", "team": "search", "namespace": "prod", "cluster": "eu1",
			},
			Annotations: map[string]string{
				"summary":     "p99 latency above 500ms on " + instance,
				"description": "HighLatency has fired on " + instance + " for more than 5 minutes.",
				"runbook_url": "https://runbooks.example.com/HighLatency",
			},
			StartsAt:     start.Add(time.Duration(i) * time.Second),
			GeneratorURL: "http://prometheus.example.net:9090/graph?g0.expr=up",
		}
		inc.Alerts = append(inc.Alerts, a)
		ch.Alerts = append(ch.Alerts, a)
		ch.Events = append(ch.Events, incidents.Event{
			ID: fmt.Sprintf("ev-%d", i), IncidentID: inc.ID, At: a.StartsAt, Kind: incidents.EventAlertFired,
			Actor: incidents.ActorAlertmanager, Fingerprint: a.Fingerprint, Text: "HighLatency on " + instance + " fired (outage)",
		})
	}
	return []incidents.Change{ch}
}

// BenchmarkToRows converts a new incident's changes to the rows a flush
// inserts (checks, label encoding, versions): the store's work per Write
// before anything is sent.
func BenchmarkToRows(b *testing.B) {
	for _, n := range []int{1, 16, 64} {
		b.Run("alerts="+strconv.Itoa(n), func(b *testing.B) {
			changes := benchChanges(n)
			b.ReportAllocs()
			for b.Loop() {
				rs, err := toRows(changes)
				if err != nil || rs.len() != 2*n+2 {
					b.Fatalf("toRows: %d rows, %v", rs.len(), err)
				}
			}
		})
	}
}
