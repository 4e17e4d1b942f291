package spool

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ninesops/nines/incidents"
)

// discardStore is a StoredIngester that takes everything and keeps
// nothing: what a replay costs the spool itself.
type discardStore struct{}

func (discardStore) Ingest(context.Context, incidents.Notification) error { return nil }
func (discardStore) IngestStored(context.Context, [][]byte) error         { return nil }

// stormNotification is a storm's notification as cmd/nines-bench sends
// it: 64 alerts with 8 labels and 3 annotations each.
func stormNotification(g int) incidents.Notification {
	service, cluster := fmt.Sprint("svc-", g%50), "eu-1"
	n := incidents.Notification{Receiver: "nines", Status: incidents.AlertFiring,
		GroupKey:          fmt.Sprintf(`{}/{severity=~"critical|warning|info"}:{alertname="InstanceDown", cluster=%q, service=%q}`, cluster, service),
		GroupLabels:       map[string]string{"alertname": "InstanceDown", "cluster": cluster, "service": service},
		CommonAnnotations: map[string]string{"runbook_url": "https://runbooks.example.com/InstanceDown"},
		ExternalURL:       "http://alertmanager.example.net:9093", ReceivedAt: t0}
	for i := range 64 {
		instance := fmt.Sprintf("%s-%d.%s.example.net:9100", service, i, cluster)
		n.Alerts = append(n.Alerts, incidents.Alert{Fingerprint: fmt.Sprintf("%016x", g*64+i), Status: incidents.AlertFiring,
			Labels: map[string]string{"alertname": "InstanceDown", "service": service, "cluster": cluster, "severity": "critical",
				"instance": instance, "job": service, "team": "team-01", "namespace": "prod"},
			Annotations: map[string]string{
				"summary":     "Instance down on " + instance,
				"description": fmt.Sprintf("InstanceDown has fired on %s for more than 5 minutes (group %d).", instance, g),
				"runbook_url": "https://runbooks.example.com/InstanceDown",
			},
			StartsAt: t0.Add(time.Duration(i) * 15 * time.Second), GeneratorURL: "http://prometheus.example.net:9090/graph?g0.expr=InstanceDown&g0.tab=1"})
	}
	return n
}

// BenchmarkReplayBatch: the spool's side of replaying a storm (read a
// batch of spooled notifications, hand them to a StoredIngester), per
// notification.
func BenchmarkReplayBatch(b *testing.B) {
	store := &fakeStore{fail: errDown}
	s, err := Open(Options{Dir: b.TempDir(), Next: store})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for g := range 1000 {
		if err := s.Ingest(context.Background(), stormNotification(g)); err != nil {
			b.Fatal(err)
		}
	}
	s.o.Next = discardStore{}
	b.ReportAllocs()
	var notifications, bytes int
	for b.Loop() {
		recs, _, err := s.readBatch(DefaultReplayBatch)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.apply(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
		notifications += len(recs)
		for _, r := range recs {
			bytes += int(r.end - r.off)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(notifications), "ns/notification")
	b.ReportMetric(float64(notifications)/float64(b.N), "notifications/batch")
	b.ReportMetric(float64(bytes)/float64(b.N), "record-bytes/batch")
}
