package alerts

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
	"unicode/utf8"

	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// FuzzDecode feeds arbitrary bodies to the decode, check and convert path.
// It must never panic; every error must be a *DecodeError (answered with a
// 4xx); every notification it accepts must hold what the incidents package
// relies on.
func FuzzDecode(f *testing.F) {
	for _, name := range fixtureNames() {
		f.Add(readFixture(f, name))
	}
	for _, seed := range []string{
		"", "{}", "null", "[]", `"x"`, "{", `{"version":"4"}`,
		`{"version":"4","status":"firing","groupKey":"k","alerts":[{}]}`,
		`{"version":"4","status":"resolved","groupKey":"k","alerts":[{"fingerprint":"f","status":"resolved","labels":{"a":"b"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"2025-01-01T00:00:00Z"}]}`,
		`{"version":"4","status":"firing","groupKey":"k","truncatedAlerts":18446744073709551615,"alerts":[{"fingerprint":"f","status":"firing","labels":{"a":"\xff"},"startsAt":"2026-01-01T00:00:00+14:00","endsAt":"9999-12-31T23:59:59Z"}]}`,
	} {
		f.Add([]byte(seed))
	}
	const limit = 64 << 10
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := Decode(bytes.NewReader(body), limit)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, fault.ErrInvalid) || err.Error() == "" {
				t.Fatalf("error %#v is not a *DecodeError matching fault.ErrInvalid", err)
			}
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) != (len(body) > limit) {
				t.Fatalf("body of %d bytes: error %v", len(body), err)
			}
			if !utf8.ValidString(err.Error()) && utf8.Valid(body) {
				t.Fatalf("error %q is not valid UTF-8", err)
			}
			return
		}
		if len(body) > limit {
			t.Fatalf("accepted a body of %d bytes over the limit of %d", len(body), limit)
		}
		if n.GroupKey == "" || len(n.Alerts) == 0 || n.TruncatedAlerts < 0 ||
			(n.Status != incidents.AlertFiring && n.Status != incidents.AlertResolved) {
			t.Fatalf("accepted %+v", n)
		}
		for i, a := range n.Alerts {
			switch {
			case a.Fingerprint == "" || len(a.Labels) == 0:
				t.Fatalf("alerts[%d] accepted without fingerprint or labels: %+v", i, a)
			case a.StartsAt.IsZero() || a.StartsAt.Year() < minYear || a.StartsAt.After(incidents.MaxTime()) || a.StartsAt.Location().String() != "UTC":
				t.Fatalf("alerts[%d].StartsAt = %v", i, a.StartsAt)
			case a.Status == incidents.AlertFiring && !a.EndsAt.IsZero():
				t.Fatalf("firing alerts[%d].EndsAt = %v, want zero", i, a.EndsAt)
			case a.Status == incidents.AlertResolved && (a.EndsAt.Before(a.StartsAt) || a.EndsAt.After(incidents.MaxTime()) || a.EndsAt.Location().String() != "UTC"):
				t.Fatalf("resolved alerts[%d] from %v to %v", i, a.StartsAt, a.EndsAt)
			case a.Status != incidents.AlertFiring && a.Status != incidents.AlertResolved:
				t.Fatalf("alerts[%d].Status = %q", i, a.Status)
			}
			for k, v := range a.Labels {
				if !utf8.ValidString(k) || !utf8.ValidString(v) {
					t.Fatalf("alerts[%d] label %q=%q is not valid UTF-8", i, k, v)
				}
			}
		}
	})
}
