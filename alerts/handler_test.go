package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// fakeIngester records what it is given and answers with err.
type fakeIngester struct {
	err error

	mu  sync.Mutex
	got []incidents.Notification
}

func (f *fakeIngester) Ingest(_ context.Context, n incidents.Notification) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, n)
	return f.err
}

// IngestStoredForm records the notification body holds: the fake takes
// the path production's spool does.
func (f *fakeIngester) IngestStoredForm(ctx context.Context, _ string, body []byte) error {
	n, err := incidents.UnmarshalNotification(body)
	if err != nil {
		return err
	}
	return f.Ingest(ctx, n)
}

func (f *fakeIngester) notifications() []incidents.Notification {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]incidents.Notification(nil), f.got...)
}

// testNow is the handlers' clock in tests.
func testNow() time.Time { return time.Date(2026, 11, 22, 17, 34, 0, 0, time.UTC) }

type handlerSetup struct {
	ingester *fakeIngester
	handler  *Handler
	reg      *prometheus.Registry
}

func newTestHandler(t *testing.T, auth *Auth, maxBytes int64, ingestErr error) handlerSetup {
	t.Helper()
	ing := &fakeIngester{err: ingestErr}
	reg := prometheus.NewPedanticRegistry()
	h, err := NewHandler(Options{
		Ingester:     ing,
		Auth:         auth,
		MaxBodyBytes: maxBytes,
		Logger:       slog.New(slog.DiscardHandler),
		Registerer:   reg,
		Now:          testNow,
	})
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	return handlerSetup{ingester: ing, handler: h, reg: reg}
}

func tokenAuth(t *testing.T) *Auth {
	t.Helper()
	a, err := NewAuthFromValues("s3cr3t-token", "alertmanager", "pw")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// onlyReader hides everything but Read, so that the request has no
// Content-Length and the body is read as a stream.
type onlyReader struct{ io.Reader }

func TestHandlerFixtures(t *testing.T) {
	t.Parallel()
	s := newTestHandler(t, tokenAuth(t), 0, nil)
	srv := httptest.NewServer(s.handler)
	t.Cleanup(srv.Close)
	auth := fixtureAuthorization(t)
	for i, name := range fixtureNames() {
		body := readFixture(t, name)
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/alerts", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", "Alertmanager/0.25.0")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want, _ := Decode(bytes.NewReader(body), 0)
		if resp.StatusCode != http.StatusOK || string(got) != fmt.Sprintf(`{"status":"ok","alerts":%d}`+"\n", len(want.Alerts)) {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, got)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
		stored := s.ingester.notifications()
		if len(stored) != i+1 {
			t.Fatalf("%s: ingester got %d notifications, want %d", name, len(stored), i+1)
		}
		n := stored[i]
		if !n.ReceivedAt.Equal(testNow()) {
			t.Errorf("%s: ReceivedAt = %v, want %v", name, n.ReceivedAt, testNow())
		}
		if n.GroupKey != want.GroupKey || len(n.Alerts) != len(want.Alerts) || n.Alerts[0].Fingerprint != want.Alerts[0].Fingerprint {
			t.Errorf("%s: ingested %+v", name, n)
		}
	}
	n := s.ingester.notifications()[3] // 04: one firing, one resolved
	if a := n.Alerts[1]; a.Status != incidents.AlertResolved || !a.EndsAt.Equal(ts("2026-11-22T17:35:26.31Z")) ||
		!n.Alerts[0].EndsAt.IsZero() {
		t.Errorf("fixture 04 alerts = %+v", n.Alerts)
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	fixture := readFixture(t, "04-search-latency-partly-resolved.json")
	const limit = 4096
	big := notification(t, 10_000)
	tests := []struct {
		name      string
		method    string
		header    map[string]string // Authorization is "Bearer s3cr3t-token" unless set
		basic     []string          // user, password
		body      io.Reader
		maxBytes  int64
		noAuth    bool
		ingestErr error
		wantCode  int
		wantBody  string // exact, without the trailing newline
		wantErr   string // prefix of the error message, when wantBody is empty
		wantAlert int    // alerts ingested
	}{
		{name: "ok", body: bytes.NewReader(fixture), wantCode: 200, wantBody: `{"status":"ok","alerts":2}`, wantAlert: 2},
		{name: "no content type", header: map[string]string{"Content-Type": ""}, body: bytes.NewReader(fixture), wantCode: 200, wantAlert: 2},
		{name: "json with charset", header: map[string]string{"Content-Type": "application/json; charset=utf-8"}, body: bytes.NewReader(fixture), wantCode: 200, wantAlert: 2},
		{name: "streamed body", body: onlyReader{bytes.NewReader(fixture)}, wantCode: 200, wantAlert: 2},
		{name: "10,000 alerts", body: bytes.NewReader(big), wantCode: 200, wantBody: `{"status":"ok","alerts":10000}`, wantAlert: 10_000},
		{name: "no auth configured", noAuth: true, header: map[string]string{"Authorization": ""}, body: bytes.NewReader(fixture), wantCode: 200, wantAlert: 2},
		{name: "basic auth", basic: []string{"alertmanager", "pw"}, body: bytes.NewReader(fixture), wantCode: 200, wantAlert: 2},

		{name: "GET", method: http.MethodGet, wantCode: 405, wantBody: `{"error":"method GET not allowed, use POST"}`},
		{name: "no credentials", header: map[string]string{"Authorization": ""}, body: bytes.NewReader(fixture), wantCode: 401, wantBody: `{"error":"missing or invalid credentials"}`},
		{name: "wrong bearer", header: map[string]string{"Authorization": "Bearer s3cr3t-tokeN"}, body: bytes.NewReader(fixture), wantCode: 401},
		{name: "bad basic auth", basic: []string{"alertmanager", "pW"}, body: bytes.NewReader(fixture), wantCode: 401},
		{name: "text/plain", header: map[string]string{"Content-Type": "text/plain"}, body: bytes.NewReader(fixture), wantCode: 415,
			wantBody: `{"error":"unsupported Content-Type \"text/plain\", want application/json"}`},
		{name: "bad content type", header: map[string]string{"Content-Type": "application/json; ===="}, body: bytes.NewReader(fixture), wantCode: 415},
		{name: "gzip", header: map[string]string{"Content-Encoding": "gzip"}, body: bytes.NewReader(fixture), wantCode: 415},
		{name: "over the limit with length", maxBytes: limit, body: bytes.NewReader(big), wantCode: 413, wantBody: `{"error":"request body exceeds 4096 bytes"}`},
		{name: "over the limit streamed", maxBytes: limit, body: onlyReader{bytes.NewReader(big)}, wantCode: 413, wantBody: `{"error":"request body exceeds 4096 bytes"}`},
		{name: "over the default limit", body: onlyReader{io.MultiReader(strings.NewReader(`{"receiver":"`), strings.NewReader(strings.Repeat("x", 10<<20)))},
			wantCode: 413, wantBody: `{"error":"request body exceeds 10485760 bytes"}`},
		{name: "malformed", body: strings.NewReader(`{"receiver":"nines",}`), wantCode: 400,
			wantBody: `{"error":"invalid JSON at offset 21: invalid character '}' looking for beginning of object key string"}`},
		{name: "truncated", body: bytes.NewReader(fixture[:500]), wantCode: 400, wantBody: `{"error":"invalid JSON at offset 500: unexpected end of input"}`},
		{name: "deeply nested", body: strings.NewReader(`{"alerts":` + strings.Repeat(`[{"labels":`, 20_000)), wantCode: 400, wantErr: "invalid JSON at offset"},
		{name: "wrong version", body: bytes.NewReader(mutate(t, "04-search-latency-partly-resolved.json", func(m map[string]any) { m["version"] = "5" })),
			wantCode: 400, wantBody: `{"error":"version: unsupported version \"5\", want \"4\""}`},
		// An invalid alert is left out and named; the others are taken
		// (Alertmanager never re-sends a notification answered 4xx).
		{name: "missing startsAt", body: bytes.NewReader(mutate(t, "04-search-latency-partly-resolved.json", func(m map[string]any) { delete(alertAt(m, 0), "startsAt") })),
			wantCode: 200, wantBody: `{"status":"ok","alerts":1,"refused":[{"field":"alerts[0].startsAt","reason":"missing"}]}`, wantAlert: 1},
		{name: "endsAt before startsAt", body: bytes.NewReader(mutate(t, "04-search-latency-partly-resolved.json", func(m map[string]any) { alertAt(m, 1)["endsAt"] = "2026-11-22T17:00:00Z" })),
			wantCode: 200, wantBody: `{"status":"ok","alerts":1,"refused":[{"field":"alerts[1].endsAt","reason":"2026-11-22T17:00:00Z is before startsAt 2026-11-22T17:33:38.31Z"}]}`, wantAlert: 1},
		{name: "a start the store cannot hold", body: bytes.NewReader(mutate(t, "04-search-latency-partly-resolved.json", func(m map[string]any) { alertAt(m, 0)["startsAt"] = "2150-01-01T00:00:00Z" })),
			wantCode: 200, wantBody: `{"status":"ok","alerts":1,"refused":[{"field":"alerts[0].startsAt","reason":"2150-01-01T00:00:00Z is outside 2000-01-01T00:00:00Z..2106-02-07T06:28:15Z"}]}`, wantAlert: 1},
		{name: "every alert invalid", body: bytes.NewReader(mutate(t, "04-search-latency-partly-resolved.json", func(m map[string]any) {
			alertAt(m, 0)["startsAt"] = "2150-01-01T00:00:00Z"
			delete(alertAt(m, 1), "fingerprint")
		})),
			wantCode: 400, wantBody: `{"error":"alerts[0].startsAt: 2150-01-01T00:00:00Z is outside 2000-01-01T00:00:00Z..2106-02-07T06:28:15Z"}`},

		{name: "store unavailable", body: bytes.NewReader(fixture), ingestErr: fmt.Errorf("write: %w", fault.ErrUnavailable),
			wantCode: 503, wantBody: `{"error":"store unavailable, retry later"}`, wantAlert: 2},
		{name: "request ended", body: bytes.NewReader(fixture), ingestErr: fmt.Errorf("write: %w", context.Canceled), wantCode: 503, wantAlert: 2},
		{name: "refused by ingester", body: bytes.NewReader(fixture), ingestErr: fmt.Errorf("%w: impact \"x\"", fault.ErrInvalid),
			wantCode: 400, wantBody: `{"error":"invalid: impact \"x\""}`, wantAlert: 2},
		{name: "ingester fails", body: bytes.NewReader(fixture), ingestErr: errors.New("dial clickhouse://admin:hunter2@db: refused"),
			wantCode: 500, wantBody: `{"error":"internal error"}`, wantAlert: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var auth *Auth
			if !tc.noAuth {
				auth = tokenAuth(t)
			}
			s := newTestHandler(t, auth, tc.maxBytes, tc.ingestErr)
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, "/api/v1/alerts", tc.body)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer s3cr3t-token")
			for k, v := range tc.header {
				if v == "" {
					req.Header.Del(k)
				} else {
					req.Header.Set(k, v)
				}
			}
			if tc.basic != nil {
				req.SetBasicAuth(tc.basic[0], tc.basic[1])
			}
			rec := httptest.NewRecorder()
			s.handler.ServeHTTP(rec, req)

			body := strings.TrimSuffix(rec.Body.String(), "\n")
			if rec.Code != tc.wantCode {
				t.Fatalf("status %d %s, want %d", rec.Code, body, tc.wantCode)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tc.wantBody != "" && body != tc.wantBody {
				t.Errorf("body %s, want %s", body, tc.wantBody)
			}
			if tc.wantCode != 200 {
				var e struct{ Error string }
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.HasPrefix(e.Error, tc.wantErr) {
					t.Errorf("error body %s (%v), want an error starting %q", body, err, tc.wantErr)
				}
				if strings.Contains(body, "hunter2") {
					t.Errorf("body leaks the ingester's error: %s", body)
				}
			}
			switch tc.wantCode {
			case 401:
				if got := rec.Header().Values("WWW-Authenticate"); len(got) != 2 || !strings.HasPrefix(got[0], "Bearer ") || !strings.HasPrefix(got[1], "Basic ") {
					t.Errorf("WWW-Authenticate = %q", got)
				}
			case 405:
				if got := rec.Header().Get("Allow"); got != "POST" {
					t.Errorf("Allow = %q", got)
				}
			}
			got := s.ingester.notifications()
			alerts := 0
			for _, n := range got {
				alerts += len(n.Alerts)
			}
			if alerts != tc.wantAlert {
				t.Errorf("ingested %d alerts, want %d", alerts, tc.wantAlert)
			}
			if v := counterValue(t, s.reg, "nines_webhook_requests_total", "code", fmt.Sprint(tc.wantCode)); v != 1 {
				t.Errorf("nines_webhook_requests_total{code=%q} = %v, want 1", fmt.Sprint(tc.wantCode), v)
			}
		})
	}
}

func TestHandlerMetrics(t *testing.T) {
	t.Parallel()
	s := newTestHandler(t, nil, 0, nil)
	post := func(body []byte) int {
		rec := httptest.NewRecorder()
		s.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/alerts", bytes.NewReader(body)))
		return rec.Code
	}
	truncated := mutate(t, "01-search-latency-firing.json", func(m map[string]any) { m["truncatedAlerts"] = 5 })
	for _, body := range [][]byte{
		readFixture(t, "01-search-latency-firing.json"),          // 2 firing
		readFixture(t, "04-search-latency-partly-resolved.json"), // 1 firing, 1 resolved
		readFixture(t, "05-checkout-down-resolved.json"),         // 1 resolved
		truncated, // 2 firing, 5 truncated
		[]byte("{"),
	} {
		post(body)
	}
	tests := []struct {
		name, label, value string
		want               float64
	}{
		{"nines_webhook_requests_total", "code", "200", 4},
		{"nines_webhook_requests_total", "code", "400", 1},
		{"nines_webhook_requests_total", "code", "503", 0},
		{"nines_webhook_alerts_received_total", "status", "firing", 5},
		{"nines_webhook_alerts_received_total", "status", "resolved", 2},
		{"nines_webhook_notifications_truncated_alerts_total", "", "", 5},
	}
	for _, tc := range tests {
		if got := counterValue(t, s.reg, tc.name, tc.label, tc.value); got != tc.want {
			t.Errorf("%s{%s=%q} = %v, want %v", tc.name, tc.label, tc.value, got, tc.want)
		}
	}
	if h := metric(t, s.reg, "nines_webhook_request_duration_seconds", "", ""); h.count != 5 || h.buckets != 13 || !h.native {
		t.Errorf("request duration histogram = %+v, want 5 observations with classic and native buckets", h)
	}
	// The registry is pedantic: this also checks the metrics' consistency.
	if _, err := s.reg.Gather(); err != nil {
		t.Error(err)
	}
}

func TestNewHandler(t *testing.T) {
	t.Parallel()
	if _, err := NewHandler(Options{}); err == nil || err.Error() != "alerts handler: ingester is required" {
		t.Errorf("NewHandler without ingester = %v", err)
	}
	if _, err := NewHandler(Options{Ingester: &fakeIngester{}, MaxBodyBytes: -1}); err == nil {
		t.Error("NewHandler accepted a negative MaxBodyBytes")
	}
	// Two handlers without a registry, or on separate ones, coexist; on one
	// registry, the second fails instead of panicking.
	if _, err := NewHandler(Options{Ingester: &fakeIngester{}}); err != nil {
		t.Errorf("NewHandler without registry: %v", err)
	}
	reg := prometheus.NewRegistry()
	if _, err := NewHandler(Options{Ingester: &fakeIngester{}, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewHandler(Options{Ingester: &fakeIngester{}, Registerer: reg}); err == nil || !strings.HasPrefix(err.Error(), "alerts handler: register metrics: ") {
		t.Errorf("second NewHandler on one registry = %v", err)
	}
}

// TestHandlerConcurrent runs many requests at once, for the race detector.
func TestHandlerConcurrent(t *testing.T) {
	t.Parallel()
	s := newTestHandler(t, tokenAuth(t), 0, nil)
	srv := httptest.NewServer(s.handler)
	t.Cleanup(srv.Close)
	body := notification(t, 64)
	var wg sync.WaitGroup
	const n = 32
	for range n {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Authorization", "Bearer s3cr3t-token")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if got := len(s.ingester.notifications()); got != n {
		t.Errorf("ingested %d notifications, want %d", got, n)
	}
	if got := counterValue(t, s.reg, "nines_webhook_alerts_received_total", "status", "firing"); got != n*(64-21) {
		t.Errorf("firing alerts received = %v, want %d", got, n*(64-21))
	}
}

// sample is what the tests read of one metric.
type sample struct {
	value   float64 // a counter's value
	count   uint64  // a histogram's number of observations
	buckets int     // a histogram's classic buckets
	native  bool    // whether the histogram has native buckets
}

// metric gathers reg and returns the metric of family name with the given
// label value (the first metric when label is empty). It reads the
// gathered protobufs through their getters, without importing
// client_model, which go.mod lists only as indirect.
func metric(t *testing.T, reg *prometheus.Registry, name, label, value string) sample {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				match = match || l.GetName() == label && l.GetValue() == value
			}
			if !match {
				continue
			}
			h := m.GetHistogram()
			return sample{
				value:   m.GetCounter().GetValue(),
				count:   h.GetSampleCount(),
				buckets: len(h.GetBucket()),
				native:  len(h.GetPositiveSpan()) > 0 || h.GetZeroThreshold() > 0,
			}
		}
	}
	t.Fatalf("no metric %s{%s=%q}", name, label, value)
	return sample{}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	return metric(t, reg, name, label, value).value
}

// TestHandlerZeroAuthFailsClosed checks that a configured but empty Auth
// refuses every request instead of letting them through.
func TestHandlerZeroAuthFailsClosed(t *testing.T) {
	t.Parallel()
	s := newTestHandler(t, &Auth{}, 0, nil)
	for _, header := range []string{"", "Bearer ", "Bearer s3cr3t-token", "Basic Og=="} {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/alerts", bytes.NewReader(readFixture(t, "02-checkout-down-firing.json")))
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		rec := httptest.NewRecorder()
		s.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d, want 401", header, rec.Code)
		}
	}
	if got := len(s.ingester.notifications()); got != 0 {
		t.Errorf("ingested %d notifications, want none", got)
	}
}

// blockingIngester holds every notification until release is closed.
type blockingIngester struct {
	started chan struct{}
	release chan struct{}
}

func (b *blockingIngester) Ingest(ctx context.Context, _ incidents.Notification) error {
	b.started <- struct{}{}
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestHandlerBoundsBytesInFlight: the bodies of notifications being taken
// are bounded in bytes: past the bound a request waits, and answers 503
// (Alertmanager retries it) if no room comes within the wait; memory never
// holds more than the bound of bodies, however many large notifications
// arrive at once.
func TestHandlerBoundsBytesInFlight(t *testing.T) {
	b, err := os.ReadFile("testdata/02-checkout-down-firing.json")
	if err != nil {
		t.Fatal(err)
	}
	ing := &blockingIngester{started: make(chan struct{}, 4), release: make(chan struct{})}
	h, err := NewHandler(Options{
		Ingester: ing, Logger: slog.New(slog.DiscardHandler), Now: testNow,
		MaxInflightBytes: int64(len(b)) * 3 / 2, InflightWait: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	post := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/alerts", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	first := make(chan *httptest.ResponseRecorder, 1)
	go func() { first <- post() }()
	<-ing.started // the first holds its bytes
	second := post()
	if second.Code != http.StatusServiceUnavailable || !strings.Contains(second.Body.String(), "in flight") {
		t.Errorf("second notification while the first holds the room: %d %s, want 503 naming the bytes in flight", second.Code, second.Body)
	}
	close(ing.release)
	if rec := <-first; rec.Code != http.StatusOK {
		t.Errorf("first: %d %s", rec.Code, rec.Body)
	}
	if rec := post(); rec.Code != http.StatusOK {
		t.Errorf("retry once room is back: %d %s", rec.Code, rec.Body)
	}
}

// storingIngester keeps a notification's stored form, as the spool and the
// log do, and holds each call until release is closed, as the log's group
// commit holds the webhooks waiting for it.
type storingIngester struct {
	arrived chan struct{}
	release chan struct{}
}

func (s *storingIngester) Ingest(_ context.Context, n incidents.Notification) error {
	body, err := incidents.MarshalNotification(n)
	if err != nil {
		return err
	}
	n = incidents.Notification{}
	return s.IngestStoredForm(context.Background(), "", body)
}

// IngestStoredForm holds body: the webhook's path to the spool.
func (s *storingIngester) IngestStoredForm(_ context.Context, _ string, body []byte) error {
	s.arrived <- struct{}{}
	<-s.release
	runtime.KeepAlive(body)
	return nil
}

// TestHandlerLetsDecodedAlertsGo: while webhooks wait for the store, the
// handler does not keep their decoded alerts (label maps several times the
// size of the body) beside what the store keeps. Eight notifications with
// a 4 MB annotation wait at once; the heap then holds about their stored
// forms, not twice them.
func TestHandlerLetsDecodedAlertsGo(t *testing.T) {
	const (
		waiting = 8
		big     = 4 << 20
	)
	ing := &storingIngester{arrived: make(chan struct{}, waiting), release: make(chan struct{})}
	h, err := NewHandler(Options{Ingester: ing, MaxInflightBytes: 1 << 30, Logger: slog.New(slog.DiscardHandler), Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	var msg map[string]any
	if err := json.Unmarshal(readFixture(t, fixtureNames()[0]), &msg); err != nil {
		t.Fatal(err)
	}
	bodies := make([][]byte, waiting)
	for i := range bodies {
		msg["groupKey"] = fmt.Sprintf("{}:{big=\"%d\"}", i)
		alerts := msg["alerts"].([]any)
		a := alerts[0].(map[string]any)
		a["annotations"] = map[string]any{"description": strings.Repeat(string(rune('a'+i)), big)}
		msg["alerts"] = alerts[:1]
		if bodies[i], err = json.Marshal(msg); err != nil {
			t.Fatal(err)
		}
	}
	before := heapInUse()
	var wg sync.WaitGroup
	codes := make([]int, waiting)
	for i := range bodies {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/api/v1/alerts", bytes.NewReader(bodies[i]))
			req.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(rec, req)
			codes[i] = rec.Code
		})
	}
	for range waiting {
		<-ing.arrived
	}
	held := heapInUse() - before
	close(ing.release)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("notification %d: HTTP %d", i, c)
		}
	}
	if stored := int64(waiting * big); held > stored+stored/2 {
		t.Errorf("%d notifications of %d MB waiting for the store hold %d MB of heap, want about their stored forms (%d MB), not their decoded alerts too",
			waiting, big>>20, held>>20, stored>>20)
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// bodyIngester records the stored forms it is given.
type bodyIngester struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (b *bodyIngester) Ingest(context.Context, incidents.Notification) error {
	return errors.New("bodyIngester: given a notification, not its stored form")
}

func (b *bodyIngester) IngestStoredForm(_ context.Context, _ string, body []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bodies = append(b.bodies, body)
	return nil
}

// plainIngester is an Ingester and not a StoredIngester.
type plainIngester struct{ f *fakeIngester }

func (p plainIngester) Ingest(ctx context.Context, n incidents.Notification) error {
	return p.f.Ingest(ctx, n)
}

// TestWebhookWritesTheStoredForm: the stored form the webhook writes
// straight from what it decoded (the spool's path) is byte for byte
// MarshalNotification's for the notification an Ingester that is not a
// StoredIngester is given: same alerts, labels sorted, same escaping. The
// log's content hashes, and so its deduplication of a notification sent
// again, depend on it. The bodies cover Alertmanager's own notifications,
// escapes and HTML characters on the fast path, and bodies only
// encoding/json reads (an escaped key, null).
func TestWebhookWritesTheStoredForm(t *testing.T) {
	t.Parallel()
	bodies := map[string][]byte{"generated 64": notification(t, 64)}
	for _, name := range fixtureNames() {
		bodies[name] = readFixture(t, name)
	}
	alert := `{"status":"firing","labels":%s,"annotations":%s,"startsAt":"2026-11-22T18:33:38.31+01:00",` +
		`"endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://x/?a=1&b=<2>","fingerprint":"%s"}`
	body := func(alerts ...string) []byte {
		return []byte(`{"receiver":"nines","status":"firing","alerts":[` + strings.Join(alerts, ",") +
			`],"groupLabels":{"alertname":"A"},"commonLabels":{"alertname":"A"},"commonAnnotations":{"s":"\u003cb\u003e"},` +
			`"externalURL":"http://am","version":"4","groupKey":"{}:{alertname=\"A\"}","truncatedAlerts":3}`)
	}
	bodies["escapes and HTML"] = body(
		fmt.Sprintf(alert, `{"z":"1","alertname":"A","a":"\u003cdiv\u003e \"q\" \\ \n é 😀 \u2028"}`, `{"summary":"x & y"}`, "f1"),
		fmt.Sprintf(alert, `{"alertname":"A","nines_rule":""}`, `{}`, "f2"))
	bodies["escaped key"] = body(fmt.Sprintf(alert, `{"alertname":"A","\u0062":"1"}`, `{"summary":"s"}`, "f1"))
	bodies["null annotations"] = body(fmt.Sprintf(alert, `{"alertname":"A"}`, `null`, "f1"))
	bodies["a refused alert"] = body(fmt.Sprintf(alert, `{"alertname":"A"}`, `{}`, "f1"), fmt.Sprintf(alert, `{}`, `{}`, "f2"))

	for name, b := range bodies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stored, plain := &bodyIngester{}, &fakeIngester{}
			for _, ing := range []Ingester{stored, plainIngester{plain}} {
				h, err := NewHandler(Options{Ingester: ing, Logger: slog.New(slog.DiscardHandler), Now: testNow})
				if err != nil {
					t.Fatal(err)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/alerts", bytes.NewReader(b)))
				if rec.Code != http.StatusOK {
					t.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
			if len(stored.bodies) != 1 || len(plain.got) != 1 {
				t.Fatalf("stored forms %d, notifications %d: want one of each", len(stored.bodies), len(plain.got))
			}
			want, err := incidents.MarshalNotification(plain.got[0])
			if err != nil {
				t.Fatal(err)
			}
			if got := stored.bodies[0]; !bytes.Equal(got, want) {
				t.Errorf("the webhook wrote\n%s\nMarshalNotification writes\n%s", got, want)
			}
		})
	}
}
