package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ninesops/nines/fault"
)

// fuzzBackend stands in for the service and the store behind the API: it
// knows one incident and checks what the API hands it.
type fuzzBackend struct{ t *testing.T }

const knownID = "inc-0123456789abcdef0123"

func (b fuzzBackend) incident(id string) (*Incident, error) {
	if id != knownID {
		return nil, ErrNotFound
	}
	return &Incident{ID: id, Service: "api", State: StateFiring, StartedAt: t0,
		Labels: map[string]string{"q": `'"; {{.}}`}}, nil
}

func (b fuzzBackend) Acknowledge(_ context.Context, id, actor string) (*Incident, error) {
	b.actor(actor)
	return b.incident(id)
}
func (b fuzzBackend) Resolve(_ context.Context, id, actor string) (*Incident, error) {
	b.actor(actor)
	return b.incident(id)
}
func (b fuzzBackend) AddNote(_ context.Context, id, actor, text string) (*Incident, error) {
	b.actor(actor)
	if strings.TrimSpace(text) == "" {
		return nil, ErrInvalid
	}
	return b.incident(id)
}
func (b fuzzBackend) Open(_ context.Context, req OpenRequest) (*Incident, error) {
	b.actor(req.Actor)
	if _, err := Open(req, t0.Add(time.Hour)); err != nil {
		return nil, err
	}
	return b.incident(knownID)
}
func (b fuzzBackend) Link(_ context.Context, id, up, actor string) (*Incident, error) {
	b.actor(actor)
	if !idPattern.MatchString(up) {
		b.t.Fatalf("Link got caused_by %q past the check", up)
	}
	return b.incident(id)
}
func (b fuzzBackend) NotDowntime(_ context.Context, id string, r NotDowntimeRequest) (*Incident, error) {
	b.actor(r.Actor)
	if err := r.validate(); err != nil {
		b.t.Fatalf("NotDowntime got an invalid request past the check: %v", err)
	}
	return b.incident(id)
}
func (b fuzzBackend) WithdrawNotDowntime(_ context.Context, id string, markedAt time.Time, actor, reason string) (*Incident, error) {
	b.actor(actor)
	if err := validateWithdrawal(&markedAt, reason); err != nil {
		b.t.Fatalf("WithdrawNotDowntime got an invalid request past the check: %v", err)
	}
	return b.incident(id)
}
func (b fuzzBackend) Unlink(_ context.Context, id, actor string) (*Incident, error) {
	b.actor(actor)
	return b.incident(id)
}
func (b fuzzBackend) List(_ context.Context, f Filter) ([]*Incident, string, error) {
	if f.Limit < 1 || f.Limit > 1000 {
		b.t.Fatalf("List got limit %d", f.Limit)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		b.t.Fatalf("List got since %v not before until %v", f.Since, f.Until)
	}
	if (!f.Since.IsZero() && !Storable(f.Since)) || (!f.Until.IsZero() && !Storable(f.Until)) {
		b.t.Fatalf("List got since %v, until %v: a time the store cannot compare", f.Since, f.Until)
	}
	if f.State != "" {
		if _, err := ParseState(string(f.State)); err != nil {
			b.t.Fatalf("List got state %q", f.State)
		}
	}
	inc, _ := b.incident(knownID)
	return []*Incident{inc}, "", nil
}
func (b fuzzBackend) Get(_ context.Context, id string) (*Incident, error) { return b.incident(id) }
func (b fuzzBackend) Timeline(_ context.Context, id string) ([]Event, error) {
	if _, err := b.incident(id); err != nil {
		return nil, err
	}
	return nil, nil
}

func (b fuzzBackend) actor(a string) {
	if strings.TrimSpace(a) == "" {
		b.t.Fatal("the API handed an empty actor on")
	}
}

// checkAnswer checks what the API answered: a status it may answer, and a
// JSON body (an error body with a message).
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, allowed ...int) {
	t.Helper()
	ok := false
	for _, s := range allowed {
		ok = ok || rec.Code == s
	}
	if !ok {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("status %d with a body that is not JSON: %q", rec.Code, rec.Body)
	}
	if rec.Code >= 400 {
		msg, _ := body["error"].(string)
		if msg == "" {
			t.Fatalf("status %d without an error message: %s", rec.Code, rec.Body)
		}
		if !utf8.ValidString(msg) {
			t.Fatalf("error message is not UTF-8: %q", msg)
		}
	}
}

// FuzzListQuery feeds arbitrary query strings to GET /api/v1/incidents:
// the answer is 200 or a 400 that says why, never a panic or a 500, and
// the store only ever sees a valid filter.
func FuzzListQuery(f *testing.F) {
	for _, s := range []string{
		"", "limit=10", "limit=0", "limit=1001", "limit=-1", "limit=1e3", "limit=99999999999999999999",
		"state=firing", "state=FIRING", "state=open", "impact=outage", "impact=%00",
		"since=2026-01-01T00:00:00Z&until=2025-01-01T00:00:00Z", "since=2026-01-01T00:00:00Z&until=2026-01-01T00:00:00Z",
		"since=9999-12-31T23:59:59Z", "since=0000-01-01T00:00:00Z", "since=yesterday",
		"service=%27%3B+DROP+TABLE+incidents%3B--", "service={{.}}", "cursor=eyJ0IjowfQ", "cursor=%ff%fe",
		"limit=5&limit=6", "%zz", "a=b&&&==", strings.Repeat("service=x&", 200),
	} {
		f.Add(s)
	}
	api := NewAPI(fuzzBackend{}, fuzzBackend{}, nil)
	f.Fuzz(func(t *testing.T, query string) {
		api := *api
		api.read = fuzzBackend{t}
		req := httptest.NewRequest(http.MethodGet, "/api/v1/incidents", nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		api.List(rec, req)
		checkAnswer(t, rec, http.StatusOK, http.StatusBadRequest)
		if rec.Code == http.StatusOK {
			if l := req.URL.Query().Get("limit"); l != "" {
				if n, err := strconv.Atoi(l); err != nil || n < 1 || n > 1000 {
					t.Fatalf("limit %q accepted", l)
				}
			}
		}
	})
}

// FuzzActionRequests feeds arbitrary incident IDs and bodies to the
// mutating endpoints: the answer is one of the statuses the API documents,
// never a panic or a 500.
func FuzzActionRequests(f *testing.F) {
	for _, s := range []struct{ id, body string }{
		{knownID, `{"actor":"alice"}`},
		{knownID, ``},
		{knownID, `{}`},
		{knownID, `{"reason":"false positive","from":"2026-01-01T00:05:00Z","to":"2026-01-01T00:10:00Z"}`},
		{knownID, `{"reason":"false positive","from":"2026-01-01T00:10:00Z","to":"2026-01-01T00:05:00Z"}`},
		{knownID, `{"reason":" ","from":"1969-12-31T23:59:59Z"}`},
		{knownID, `{"actor":"alice","text":"rolled back"}`},
		{knownID, `{"caused_by":"inc-00000000000000000000"}`},
		{knownID, `{"caused_by":"../../etc/passwd"}`},
		{knownID, `{"actor":"alice","unknown":1}`},
		{knownID, `{"actor":1}`},
		{knownID, `{"actor":"a"}{"actor":"b"}`},
		{knownID, `[`},
		{knownID, "{\"text\":\"\xff\xfe\"}"},
		{knownID, `{"service":"api","title":"Down","impact":"outage","started_at":"2026-01-01T00:00:00Z","labels":{"a":"b"}}`},
		{knownID, `{"service":"api","title":"Down","impact":"catastrophic"}`},
		{knownID, `{"service":"api","title":"Down","started_at":"9999-01-01T00:00:00Z"}`},
		{knownID, `{"service":"'; DROP TABLE incidents; --","title":"{{ .Secret }}"}`},
		{"inc-00000000000000000000", `{}`},
		{"../metrics", `{}`},
		{"%2e%2e", `{}`},
		{"inc-0123456789ABCDEF0123", `{}`},
		{strings.Repeat("a", 10000), `{}`},
		{"inc-0123456789abcdef0123\n", `{}`},
		{"", `{}`},
	} {
		f.Add(s.id, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, id string, body []byte) {
		api := NewAPI(fuzzBackend{t}, fuzzBackend{t}, nil)
		for _, h := range []struct {
			name string
			f    http.HandlerFunc
		}{
			{"ack", api.Acknowledge}, {"resolve", api.Resolve}, {"notes", api.AddNote},
			{"link", api.Link}, {"unlink", api.Unlink}, {"open", api.Open}, {"get", api.Get},
			{"not-downtime", api.NotDowntime}, {"not-downtime/withdraw", api.WithdrawNotDowntime},
		} {
			req := httptest.NewRequest(http.MethodPost, "/api/v1/incidents/x/"+h.name, strings.NewReader(string(body)))
			req.SetPathValue("id", id)
			rec := httptest.NewRecorder()
			h.f(rec, req)
			checkAnswer(t, rec, http.StatusOK, http.StatusCreated, http.StatusBadRequest, http.StatusNotFound,
				http.StatusConflict, http.StatusRequestEntityTooLarge)
			if rec.Code == http.StatusOK && h.name != "open" && id != knownID {
				t.Fatalf("%s on id %q answered 200", h.name, id)
			}
		}
	})
}

// TestDecodeBodyLimits covers the body cases the fuzzer finds slowly.
func TestDecodeBodyLimits(t *testing.T) {
	tests := []struct {
		name string
		body string
		want error
	}{
		{"empty is an empty object", "", nil},
		{"too large", `{"actor":"` + strings.Repeat("a", maxAPIBody) + `"}`, fault.ErrTooLarge},
		{"unknown field", `{"nope":1}`, ErrInvalid},
		{"deeply nested", strings.Repeat(`{"actor":`, 100000), ErrInvalid},
		{"truncated", `{"actor":"al`, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v actBody
			err := decodeBody(httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body)), &v)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
