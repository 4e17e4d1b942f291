package alerts

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// sharedFixtures is where the captured notifications live in the repository
// checkout; testdata holds copies so that the package tests stand alone.
const sharedFixtures = "../../shared/fixtures/alertmanager-0.25"

// fixtureNames are the six captured Alertmanager 0.25 notifications.
func fixtureNames() []string {
	return []string{
		"01-search-latency-firing.json",
		"02-checkout-down-firing.json",
		"03-checkout-down-repeat.json",
		"04-search-latency-partly-resolved.json",
		"05-checkout-down-resolved.json",
		"06-search-latency-one-left.json",
	}
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureAuthorization returns the Authorization header Alertmanager sent
// with the fixtures, from the captured request headers.
func fixtureAuthorization(t testing.TB) string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "request-headers.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	req, err := http.ReadRequest(bufio.NewReader(f))
	if err != nil {
		t.Fatalf("parse request headers: %v", err)
	}
	auth := req.Header.Get("Authorization")
	if auth == "" {
		t.Fatal("no Authorization header in request-headers.txt")
	}
	return auth
}

// TestFixtureCopies checks that testdata holds exact copies of the shared
// fixtures, when the shared directory is there to compare with.
func TestFixtureCopies(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(sharedFixtures); err != nil {
		t.Skipf("shared fixtures not available: %v", err)
	}
	for _, name := range append(fixtureNames(), "request-headers.txt") {
		shared, err := os.ReadFile(filepath.Join(sharedFixtures, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(shared, readFixture(t, name)) {
			t.Errorf("testdata/%s differs from %s/%s", name, sharedFixtures, name)
		}
	}
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err) // test constants only
	}
	return t.UTC()
}

func TestDecodeFixtures(t *testing.T) {
	t.Parallel()
	const (
		latencyKey  = `{}:{alertname="HighLatency", service="search"}`
		checkoutKey = `{}:{alertname="CheckoutDown", service="checkout"}`
		search1     = "14d34edfcfdb5b57"
		search2     = "fcea8ccb35c82b36"
		checkout    = "a4968fcd8858e3e5"
	)
	type alert struct {
		fingerprint string
		status      incidents.AlertStatus
		endsAt      string // empty: zero
	}
	tests := []struct {
		name     string
		status   incidents.AlertStatus
		groupKey string
		alerts   []alert
	}{
		{"01-search-latency-firing.json", "firing", latencyKey, []alert{{search1, "firing", ""}, {search2, "firing", ""}}},
		{"02-checkout-down-firing.json", "firing", checkoutKey, []alert{{checkout, "firing", ""}}},
		{"03-checkout-down-repeat.json", "firing", checkoutKey, []alert{{checkout, "firing", ""}}},
		{"04-search-latency-partly-resolved.json", "firing", latencyKey, []alert{{search1, "firing", ""}, {search2, "resolved", "2026-11-22T17:35:26.31Z"}}},
		{"05-checkout-down-resolved.json", "resolved", checkoutKey, []alert{{checkout, "resolved", "2026-11-22T17:35:26.31Z"}}},
		{"06-search-latency-one-left.json", "firing", latencyKey, []alert{{search1, "firing", ""}}},
	}
	if len(tests) != len(fixtureNames()) {
		t.Fatal("every fixture needs a case")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, err := Decode(bytes.NewReader(readFixture(t, tc.name)), 0)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if n.Receiver != "nines" || n.Status != tc.status || n.GroupKey != tc.groupKey ||
				n.ExternalURL != "http://vm:9193" || n.TruncatedAlerts != 0 || !n.ReceivedAt.IsZero() {
				t.Errorf("notification = %+v", n)
			}
			if len(n.Alerts) != len(tc.alerts) {
				t.Fatalf("got %d alerts, want %d", len(n.Alerts), len(tc.alerts))
			}
			for i, want := range tc.alerts {
				got := n.Alerts[i]
				var wantEnd time.Time
				if want.endsAt != "" {
					wantEnd = ts(want.endsAt)
				}
				if got.Fingerprint != want.fingerprint || got.Status != want.status ||
					!got.StartsAt.Equal(ts("2026-11-22T17:33:38.31Z")) || got.StartsAt.Location() != time.UTC ||
					!got.EndsAt.Equal(wantEnd) || got.Labels["alertname"] == "" || got.Impact != incidents.ImpactNone {
					t.Errorf("alerts[%d] = %+v, want %+v", i, got, want)
				}
			}
		})
	}
}

// TestDecodeFixture04 checks one conversion field by field.
func TestDecodeFixture04(t *testing.T) {
	t.Parallel()
	n, err := Decode(bytes.NewReader(readFixture(t, "04-search-latency-partly-resolved.json")), 0)
	if err != nil {
		t.Fatal(err)
	}
	const gen = "http://vm:9190/graph?g0.expr=label_replace%28label_replace%28vector%281%29%2C+%22instance%22%2C+%22search-1%3A8080%22%2C+%22%22%2C+%22%22%29%2C+%22service%22%2C+%22search%22%2C+%22%22%2C+%22%22%29&g0.tab=1"
	want := incidents.Notification{
		Receiver:          "nines",
		Status:            incidents.AlertFiring,
		GroupKey:          `{}:{alertname="HighLatency", service="search"}`,
		GroupLabels:       map[string]string{"alertname": "HighLatency", "service": "search"},
		CommonLabels:      map[string]string{"alertname": "HighLatency", "service": "search", "severity": "warning"},
		CommonAnnotations: map[string]string{},
		ExternalURL:       "http://vm:9193",
		Alerts: []incidents.Alert{
			{
				Fingerprint:  "14d34edfcfdb5b57",
				Status:       incidents.AlertFiring,
				Labels:       map[string]string{"alertname": "HighLatency", "instance": "search-1:8080", "service": "search", "severity": "warning"},
				Annotations:  map[string]string{"summary": "p99 latency above 500ms on search-1:8080"},
				StartsAt:     time.Date(2026, 11, 22, 17, 33, 38, 310_000_000, time.UTC),
				GeneratorURL: gen,
			},
			{
				Fingerprint:  "fcea8ccb35c82b36",
				Status:       incidents.AlertResolved,
				Labels:       map[string]string{"alertname": "HighLatency", "instance": "search-2:8080", "service": "search", "severity": "warning"},
				Annotations:  map[string]string{"summary": "p99 latency above 500ms on search-2:8080"},
				StartsAt:     time.Date(2026, 11, 22, 17, 33, 38, 310_000_000, time.UTC),
				EndsAt:       time.Date(2026, 11, 22, 17, 35, 26, 310_000_000, time.UTC),
				GeneratorURL: gen,
			},
		},
	}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("Decode =\n%#v\nwant\n%#v", n, want)
	}
}

// mutate decodes a fixture into generic JSON, lets change edit it and
// encodes it again.
func mutate(t testing.TB, name string, change func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readFixture(t, name), &m); err != nil {
		t.Fatal(err)
	}
	change(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// alertAt returns the i-th alert of a generic notification.
func alertAt(m map[string]any, i int) map[string]any {
	return m["alerts"].([]any)[i].(map[string]any)
}

// notification builds a valid version 4 notification with n alerts, every
// third of them resolved.
func notification(t testing.TB, n int) []byte {
	t.Helper()
	type alert struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     string            `json:"startsAt"`
		EndsAt       string            `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	}
	alerts := make([]alert, n)
	for i := range alerts {
		a := alert{
			Status: "firing",
			Labels: map[string]string{
				"alertname": "HighLatency", "service": "search", "severity": "warning",
				"instance": fmt.Sprintf("search-%d:8080", i), "team": "search",
			},
			Annotations:  map[string]string{"summary": fmt.Sprintf("p99 latency above 500ms on search-%d:8080", i)},
			StartsAt:     "2026-11-22T17:33:38.31Z",
			EndsAt:       "0001-01-01T00:00:00Z",
			GeneratorURL: "http://vm:9190/graph?g0.expr=vector%281%29&g0.tab=1",
			Fingerprint:  fmt.Sprintf("%016x", i),
		}
		if i%3 == 2 {
			a.Status = "resolved"
			a.EndsAt = "2026-11-22T17:35:26.31Z"
		}
		alerts[i] = a
	}
	b, err := json.Marshal(map[string]any{
		"receiver":          "nines",
		"status":            "firing",
		"alerts":            alerts,
		"groupLabels":       map[string]string{"alertname": "HighLatency", "service": "search"},
		"commonLabels":      map[string]string{"alertname": "HighLatency", "service": "search"},
		"commonAnnotations": map[string]string{},
		"externalURL":       "http://vm:9193",
		"version":           "4",
		"groupKey":          `{}:{alertname="HighLatency", service="search"}`,
		"truncatedAlerts":   0,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeAccepts(t *testing.T) {
	t.Parallel()
	const fixture = "04-search-latency-partly-resolved.json"
	tests := []struct {
		name  string
		body  []byte
		check func(t *testing.T, n incidents.Notification)
	}{
		{
			name: "trailing whitespace",
			body: append(readFixture(t, fixture), " \r\n\t\n"...),
		},
		{
			name: "unknown fields from newer alertmanagers",
			body: mutate(t, fixture, func(m map[string]any) {
				m["routeLabels"] = map[string]string{"x": "y"}
				m["somethingNew"] = []int{1, 2}
				alertAt(m, 0)["extra"] = true
			}),
		},
		{
			name: "firing alert's endsAt is ignored",
			body: mutate(t, fixture, func(m map[string]any) {
				alertAt(m, 0)["endsAt"] = "2026-11-22T17:38:38.31Z"
			}),
			check: func(t *testing.T, n incidents.Notification) {
				if !n.Alerts[0].EndsAt.IsZero() {
					t.Errorf("EndsAt = %v, want zero", n.Alerts[0].EndsAt)
				}
			},
		},
		{
			name: "timestamps are converted to UTC",
			body: mutate(t, fixture, func(m map[string]any) {
				alertAt(m, 1)["startsAt"] = "2026-11-22T18:33:38.31+01:00"
				alertAt(m, 1)["endsAt"] = "2026-11-22T12:35:26.31-05:00"
			}),
			check: func(t *testing.T, n incidents.Notification) {
				a := n.Alerts[1]
				if a.StartsAt != ts("2026-11-22T17:33:38.31Z") || a.EndsAt != ts("2026-11-22T17:35:26.31Z") {
					t.Errorf("StartsAt, EndsAt = %v, %v", a.StartsAt, a.EndsAt)
				}
			},
		},
		{
			name: "resolved alert may end as it starts",
			body: mutate(t, fixture, func(m map[string]any) {
				alertAt(m, 1)["endsAt"] = alertAt(m, 1)["startsAt"]
			}),
		},
		{
			name: "invalid UTF-8 becomes U+FFFD",
			body: bytes.Replace(readFixture(t, fixture), []byte("search-1:8080"), []byte("search-\xff:8080"), 1),
			check: func(t *testing.T, n incidents.Notification) {
				if got := n.Alerts[0].Labels["instance"]; got != "search-\uFFFD:8080" {
					t.Errorf("instance = %q", got)
				}
			},
		},
		{
			name: "truncated alerts",
			body: mutate(t, fixture, func(m map[string]any) { m["truncatedAlerts"] = 17 }),
			check: func(t *testing.T, n incidents.Notification) {
				if n.TruncatedAlerts != 17 {
					t.Errorf("TruncatedAlerts = %d, want 17", n.TruncatedAlerts)
				}
			},
		},
		{
			name: "10,000 alerts",
			body: notification(t, 10_000),
			check: func(t *testing.T, n incidents.Notification) {
				if len(n.Alerts) != 10_000 || n.Alerts[9_999].Fingerprint != fmt.Sprintf("%016x", 9_999) {
					t.Errorf("got %d alerts", len(n.Alerts))
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, err := Decode(bytes.NewReader(tc.body), 0)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if tc.check != nil {
				tc.check(t, n)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	t.Parallel()
	const fixture = "04-search-latency-partly-resolved.json"
	full := readFixture(t, fixture)
	tests := []struct {
		name    string
		body    []byte
		limit   int64
		wantErr string // exact message
		field   string
	}{
		{name: "empty", body: nil, wantErr: "empty body"},
		{name: "only whitespace", body: []byte(" \n"), wantErr: "empty body"},
		{name: "truncated", body: []byte(`{"receiver":`), wantErr: "invalid JSON at offset 12: unexpected end of input"},
		{name: "truncated fixture", body: full[:700], wantErr: "invalid JSON at offset 700: unexpected end of input"},
		{name: "syntax", body: []byte(`{"receiver" "nines"}`), wantErr: "invalid JSON at offset 13: invalid character '\"' after object key"},
		{name: "not an object", body: []byte(`[1]`), wantErr: "invalid JSON at offset 1: want an object, got array"},
		{name: "trailing garbage", body: append(full[:len(full):len(full)], "x"...), wantErr: fmt.Sprintf("invalid JSON at offset %d: data after the top-level object", len(full))},
		{name: "second object", body: append(full[:len(full):len(full)], "{}"...), wantErr: fmt.Sprintf("invalid JSON at offset %d: data after the top-level object", len(full)+1)},
		{name: "deeply nested", body: []byte(`{"receiver":` + strings.Repeat("[", 100_000)), wantErr: "invalid JSON at offset 10012: invalid character '[' exceeded max depth"},
		{name: "wrong type", body: mutate(t, fixture, func(m map[string]any) { alertAt(m, 1)["labels"] = map[string]any{"a": 1} }),
			wantErr: "invalid JSON at offset 0: alerts.labels: want a string, got number"},
		{name: "negative truncatedAlerts", body: mutate(t, fixture, func(m map[string]any) { m["truncatedAlerts"] = -1 }),
			wantErr: "invalid JSON at offset 0: truncatedAlerts: want a non-negative integer, got number -1"},
		{name: "bad timestamp", body: mutate(t, fixture, func(m map[string]any) { alertAt(m, 1)["startsAt"] = "yesterday" }),
			wantErr: `invalid JSON: parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"`},
		{name: "timestamp not a string", body: mutate(t, fixture, func(m map[string]any) { alertAt(m, 1)["endsAt"] = 5 }),
			wantErr: "invalid JSON: Time.UnmarshalJSON: input is not a JSON string"},
		{name: "over the limit", body: full, limit: 100, wantErr: "request body exceeds 100 bytes"},
		{name: "over the limit after the object", body: append(full[:len(full):len(full)], "      "...), limit: int64(len(full)) + 1,
			wantErr: fmt.Sprintf("request body exceeds %d bytes", len(full)+1)},
		{name: "version missing", body: mutate(t, fixture, func(m map[string]any) { delete(m, "version") }),
			field: "version", wantErr: "version: missing"},
		{name: "version wrong", body: mutate(t, fixture, func(m map[string]any) { m["version"] = "3" }),
			field: "version", wantErr: `version: unsupported version "3", want "4"`},
		{name: "status missing", body: mutate(t, fixture, func(m map[string]any) { delete(m, "status") }),
			field: "status", wantErr: "status: missing"},
		{name: "status wrong", body: mutate(t, fixture, func(m map[string]any) { m["status"] = "pending" }),
			field: "status", wantErr: `status: invalid status "pending", want "firing" or "resolved"`},
		{name: "groupKey missing", body: mutate(t, fixture, func(m map[string]any) { delete(m, "groupKey") }),
			field: "groupKey", wantErr: "groupKey: missing"},
		{name: "alerts missing", body: mutate(t, fixture, func(m map[string]any) { delete(m, "alerts") }),
			field: "alerts", wantErr: "alerts: missing or empty"},
		{name: "alerts null", body: mutate(t, fixture, func(m map[string]any) { m["alerts"] = nil }),
			field: "alerts", wantErr: "alerts: missing or empty"},
		{name: "alerts empty", body: mutate(t, fixture, func(m map[string]any) { m["alerts"] = []any{} }),
			field: "alerts", wantErr: "alerts: missing or empty"},
		{name: "alert null", body: mutate(t, fixture, func(m map[string]any) { m["alerts"].([]any)[1] = nil }),
			field: "alerts[1].fingerprint", wantErr: "alerts[1].fingerprint: missing"},
		{name: "fingerprint missing", body: mutate(t, fixture, func(m map[string]any) { delete(alertAt(m, 1), "fingerprint") }),
			field: "alerts[1].fingerprint", wantErr: "alerts[1].fingerprint: missing"},
		{name: "alert status wrong", body: mutate(t, fixture, func(m map[string]any) { alertAt(m, 0)["status"] = "pending" }),
			field: "alerts[0].status", wantErr: `alerts[0].status: invalid status "pending", want "firing" or "resolved"`},
		{name: "labels missing", body: mutate(t, fixture, func(m map[string]any) { delete(alertAt(m, 0), "labels") }),
			field: "alerts[0].labels", wantErr: "alerts[0].labels: missing or empty"},
		{name: "labels empty", body: mutate(t, fixture, func(m map[string]any) { alertAt(m, 0)["labels"] = map[string]any{} }),
			field: "alerts[0].labels", wantErr: "alerts[0].labels: missing or empty"},
		{name: "startsAt missing", body: mutate(t, fixture, func(m map[string]any) { delete(alertAt(m, 0), "startsAt") }),
			field: "alerts[0].startsAt", wantErr: "alerts[0].startsAt: missing"},
		{name: "startsAt zero", body: mutate(t, fixture, func(m map[string]any) { alertAt(m, 0)["startsAt"] = "0001-01-01T00:00:00Z" }),
			field: "alerts[0].startsAt", wantErr: "alerts[0].startsAt: missing"},
		{name: "startsAt too early", body: mutate(t, fixture, func(m map[string]any) { alertAt(m, 0)["startsAt"] = "1999-12-31T23:59:59Z" }),
			field: "alerts[0].startsAt", wantErr: "alerts[0].startsAt: 1999-12-31T23:59:59Z is outside 2000-01-01T00:00:00Z..2106-02-07T06:28:15Z"},
		{name: "startsAt too late", body: mutate(t, fixture, func(m map[string]any) { alertAt(m, 0)["startsAt"] = "2106-02-07T06:28:16Z" }),
			field: "alerts[0].startsAt", wantErr: "alerts[0].startsAt: 2106-02-07T06:28:16Z is outside 2000-01-01T00:00:00Z..2106-02-07T06:28:15Z"},
		{name: "resolved endsAt missing", body: mutate(t, fixture, func(m map[string]any) { alertAt(m, 1)["endsAt"] = "0001-01-01T00:00:00Z" }),
			field: "alerts[1].endsAt", wantErr: "alerts[1].endsAt: missing"},
		{name: "resolved endsAt too late", body: mutate(t, fixture, func(m map[string]any) { alertAt(m, 1)["endsAt"] = "9999-01-01T00:00:00Z" }),
			field: "alerts[1].endsAt", wantErr: "alerts[1].endsAt: 9999-01-01T00:00:00Z is outside 2000-01-01T00:00:00Z..2106-02-07T06:28:15Z"},
		{name: "endsAt before startsAt", body: mutate(t, fixture, func(m map[string]any) { alertAt(m, 1)["endsAt"] = "2026-11-22T17:33:38.309Z" }),
			field:   "alerts[1].endsAt",
			wantErr: "alerts[1].endsAt: 2026-11-22T17:33:38.309Z is before startsAt 2026-11-22T17:33:38.31Z"},
		{name: "long value is cut short", body: mutate(t, fixture, func(m map[string]any) { m["version"] = strings.Repeat("v", 1000) }),
			field: "version", wantErr: `version: unsupported version "` + strings.Repeat("v", 64) + `"…, want "4"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode(bytes.NewReader(tc.body), tc.limit)
			if err == nil {
				t.Fatal("Decode succeeded, want an error")
			}
			// Offsets in type errors depend on the re-encoded fixture, so
			// only the start of those messages is pinned.
			msg := err.Error()
			if strings.Contains(tc.wantErr, "at offset 0:") {
				before, after, _ := strings.Cut(tc.wantErr, " 0: ")
				if !strings.HasPrefix(msg, before) || !strings.Contains(msg, after) {
					t.Errorf("error = %q, want %q with any offset", msg, tc.wantErr)
				}
			} else if msg != tc.wantErr {
				t.Errorf("error = %q, want %q", msg, tc.wantErr)
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Field != tc.field {
				t.Errorf("error %#v, want a *DecodeError with Field %q", err, tc.field)
			}
			if !errors.Is(err, fault.ErrInvalid) {
				t.Errorf("errors.Is(%v, fault.ErrInvalid) = false", err)
			}
			var tooLarge *http.MaxBytesError
			if got, want := errors.As(err, &tooLarge), tc.limit != 0; got != want {
				t.Errorf("errors.As(err, *http.MaxBytesError) = %v, want %v", got, want)
			}
		})
	}
}

func TestDecodeLimitIsInclusive(t *testing.T) {
	t.Parallel()
	body := readFixture(t, "02-checkout-down-firing.json")
	if _, err := Decode(bytes.NewReader(body), int64(len(body))); err != nil {
		t.Errorf("body of exactly the limit: %v", err)
	}
	if _, err := Decode(bytes.NewReader(body), int64(len(body))-1); err == nil {
		t.Error("body one byte over the limit was accepted")
	}
}

// errReader fails after its data, like a connection that breaks.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestDecodeReadFailure(t *testing.T) {
	t.Parallel()
	cause := errors.New("connection reset")
	body := readFixture(t, "02-checkout-down-firing.json")
	_, err := Decode(&errReader{data: body[:100], err: cause}, 0)
	if err == nil || err.Error() != "read body: connection reset" || !errors.Is(err, cause) || !errors.Is(err, fault.ErrInvalid) {
		t.Errorf("Decode = %v, want the read failure", err)
	}
}

func BenchmarkDecodeConvert(b *testing.B) {
	body := notification(b, 64)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		n, err := Decode(bytes.NewReader(body), 0)
		if err != nil || len(n.Alerts) != 64 {
			b.Fatalf("Decode: %d alerts, %v", len(n.Alerts), err)
		}
	}
}
