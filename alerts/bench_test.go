package alerts

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/ninesops/nines/incidents"
)

// discardIngester accepts every notification and keeps nothing. It takes
// the stored form, as production's spool does.
type discardIngester struct{}

func (discardIngester) Ingest(context.Context, incidents.Notification) error { return nil }

func (discardIngester) IngestStoredForm(context.Context, string, []byte) error { return nil }

// BenchmarkDecodeConvertSize decodes notifications of 1, 16 and 64 alerts
// (64 is as many as Prometheus sends Alertmanager in one POST).
func BenchmarkDecodeConvertSize(b *testing.B) {
	for _, n := range []int{1, 16, 64} {
		b.Run("alerts="+strconv.Itoa(n), func(b *testing.B) {
			body := notification(b, n)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(bytes.NewReader(body), 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHandler runs the whole webhook handler (authentication, media
// type, decoding, writing the stored form, metrics, answer) on a 64-alert
// notification, with an ingester that does nothing: nines' intake cost
// without the store.
func BenchmarkHandler(b *testing.B) {
	auth, err := NewAuthFromValues("s3cr3t-token", "", "")
	if err != nil {
		b.Fatal(err)
	}
	h, err := NewHandler(Options{Ingester: discardIngester{}, Auth: auth, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	body := notification(b, 64)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/alerts", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer s3cr3t-token")
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
