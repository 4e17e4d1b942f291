package chat_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/chat"
)

type fakeDORA struct {
	figs map[string][]chat.DORAFigure // window → figures
	err  error
}

func (f *fakeDORA) DORA(_ context.Context, window string) ([]chat.DORAFigure, error) {
	return f.figs[window], f.err
}

// hookSink is a Slack incoming webhook: it keeps what each path got.
type hookSink struct {
	mu   sync.Mutex
	got  map[string]string
	fail bool
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.got == nil {
		h.got = map[string]string{}
	}
	h.got[r.URL.Path] += string(b)
	w.Write([]byte("ok"))
}

func (h *hookSink) body(path string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got[path]
}

// TestDigestDeliveryFigures: the digest lists the week's delivery (DORA)
// figures of each service that has some, as the DORASource gives them
// (GET /api/v1/dora's), each squad's channel its own services'; a
// failing DORASource fails the digest rather than post one without them.
func TestDigestDeliveryFigures(t *testing.T) {
	cat, err := catalog.Parse([]byte(`
squads:
  - {name: payments, channel: "#payments"}
  - {name: discovery, channel: "#discovery"}
  - {name: web}
services:
  - {name: checkout, owner: payments}
  - {name: search, owner: discovery}
  - {name: frontend, owner: web}
`), "catalog.yml")
	if err != nil {
		t.Fatal(err)
	}
	f := func(v float64) *float64 { return &v }
	dora := &fakeDORA{figs: map[string][]chat.DORAFigure{
		"7d": {
			{Service: "search", Owner: "discovery", Deployments: 1, DeploymentsPerDay: 1.0 / 7, ChangeFailureRate: f(0), RollbackRate: f(0)},
			{Service: "checkout", Owner: "payments", Deployments: 3, DeploymentsPerDay: 3.0 / 7, ChangeFailureRate: f(1.0 / 3), RollbackRate: f(1.0 / 3),
				Restored: 1, TimeToRestoreSeconds: f(1800.4)},
		},
		"30d": {{Service: "checkout", Owner: "payments", Deployments: 99}},
	}}
	sink := &hookSink{}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	cfg := chat.DefaultConfig()
	post := func() ([]string, error) {
		return chat.PostDigest(context.Background(), chat.DigestOptions{
			Config:       cfg,
			WebhookURLs:  map[string]string{"#operations": srv.URL + "/ops", "#payments": srv.URL + "/payments", "#discovery": srv.URL + "/discovery"},
			Availability: testFigures(), DORA: dora, Catalog: func() *catalog.Catalog { return cat },
			Now: func() time.Time { return time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC) },
		})
	}
	if _, err := post(); err != nil {
		t.Fatal(err)
	}
	checkout := "*checkout* — 3 deploys (0.43 a day) · change failure rate 33.3% · rollback rate 33.3% · time to restore 30m (1 incident)"
	search := "*search* — 1 deploy (0.14 a day) · change failure rate 0.0% · rollback rate 0.0%"
	tests := []struct {
		path      string
		want, not []string
	}{
		{"/ops", []string{"Delivery (last 7 days", checkout, search}, []string{"99 deploys"}},
		{"/payments", []string{checkout}, []string{search}},
		{"/discovery", []string{search}, []string{checkout}},
	}
	for _, tc := range tests {
		body := strings.ReplaceAll(sink.body(tc.path), `\u0026`, "&")
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: no %q in %s", tc.path, w, body)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(body, n) {
				t.Errorf("%s: %q should not be there: %s", tc.path, n, body)
			}
		}
	}

	dora.err = errors.New("changes table gone")
	if _, err := post(); err == nil || !strings.Contains(err.Error(), "changes table gone") {
		t.Errorf("digest with failing DORA figures: %v, want the error", err)
	}
}
