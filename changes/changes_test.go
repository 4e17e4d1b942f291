package changes

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/fault"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name    string
		c       Change
		wantErr string
	}{
		{"defaults", Change{Service: "checkout"}, ""},
		{"missing service", Change{}, "service: required"},
		{"bad kind", Change{Service: "s", Kind: "yolo"}, "kind:"},
		{"bad status", Change{Service: "s", Status: "done"}, "status:"},
		{"rollout above 1", Change{Service: "s", Rollout: 1.5}, "rollout:"},
		{"negative rollout", Change{Service: "s", Rollout: -0.1}, "rollout:"},
		{"future", Change{Service: "s", At: t0.Add(time.Hour)}, "in the future"},
		{"bad url", Change{Service: "s", URL: "javascript:alert(1)"}, "url:"},
		{"bad id", Change{Service: "s", ID: "a b"}, "id:"},
		{"metacharacters kept in service", Change{Service: `it's "x"; DROP`}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			err := c.Normalize(t0)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Kind != KindDeploy || c.Status != StatusSucceeded || c.Rollout != 1 || !c.At.Equal(t0) || c.ID == "" {
					t.Errorf("defaults not applied: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, fault.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid containing %q", err, tc.wantErr)
			}
		})
	}
	// The derived id is stable: a retried call records the same change.
	a, b := Change{Service: "s", Version: "v1", At: t0}, Change{Service: "s", Version: "v1", At: t0}
	_ = a.Normalize(t0)
	_ = b.Normalize(t0.Add(time.Minute))
	if a.ID != b.ID {
		t.Errorf("ids differ: %s %s", a.ID, b.ID)
	}
}

func TestRank(t *testing.T) {
	start := t0
	ch := func(id, svc string, kind Kind, before time.Duration, mod func(*Change)) Change {
		c := Change{ID: id, Service: svc, Kind: kind, Version: "v-" + id, Status: StatusSucceeded, Rollout: 1, At: start.Add(-before)}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	cs := []Change{
		ch("own-old", "checkout", KindDeploy, 90*time.Minute, nil),
		ch("own-new", "checkout", KindConfig, 5*time.Minute, nil),
		ch("up-canary", "payments", KindDeploy, 10*time.Minute, func(c *Change) { c.Rollout = 0.5 }),
		ch("up-failed", "payments", KindDeploy, 20*time.Minute, func(c *Change) { c.Status = StatusFailed }),
		ch("too-old", "checkout", KindDeploy, 3*time.Hour, nil),
		ch("unrelated", "search", KindDeploy, time.Minute, nil),
		ch("rollback", "checkout", KindRollback, time.Minute, nil),
		ch("during", "checkout", KindFeatureFlag, -5*time.Minute, nil),
		ch("after-end", "checkout", KindDeploy, -2*time.Hour, nil),
	}
	tests := []struct {
		name   string
		causes map[string]bool
		want   string
	}{
		{"own service first, newest first", nil, "[during own-new own-old up-canary up-failed]"},
		{"marked cause first", map[string]bool{"up-failed": true}, "[up-failed during own-new own-old up-canary]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Rank("checkout", start, start.Add(time.Hour), []string{"payments"}, cs, 0, tc.causes)
			var ids []string
			for _, s := range got {
				ids = append(ids, s.Change.ID)
			}
			if fmt.Sprint(ids) != tc.want {
				t.Errorf("order = %v, want %s", ids, tc.want)
			}
		})
	}
	got := Rank("frontend", start, start, []string{"payments"}, cs, 0, nil)
	if len(got) != 2 || got[0].Change.ID != "up-canary" {
		t.Fatalf("upstream suspects = %+v", got)
	}
	if want := "deployed 10m before: payments v-up-canary at 50% — consider rollback"; got[0].Hint != want {
		t.Errorf("hint = %q, want %q", got[0].Hint, want)
	}
	if fmt.Sprint(got[0].Flags) != "[partial_rollout]" || fmt.Sprint(got[1].Flags) != "[failed]" {
		t.Errorf("flags = %v / %v", got[0].Flags, got[1].Flags)
	}
}
