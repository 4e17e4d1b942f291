package incidents

import (
	"fmt"
	"testing"
	"time"
)

// TestStartServicesRemembersEachOccurrence: the service given to an
// occurrence is found again for that occurrence only (another start, group
// or fingerprint is another occurrence), the newest ones survive a switch
// of generations, and the memory stays within two generations however
// many occurrences pass.
func TestStartServicesRemembersEachOccurrence(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 123e6, time.UTC)
	limit := int64(100 * sizeStartEntry)
	m := newStartServices(limit)
	alert := func(i int, start time.Time) Alert {
		return Alert{Fingerprint: fmt.Sprintf("%016x", i), StartsAt: start}
	}
	m.put(map[GroupRef][]Alert{{GroupKey: "g", Service: "checkout"}: {alert(1, t0)}})

	for _, c := range []struct {
		name  string
		group string
		a     Alert
		want  string
		found bool
	}{
		{"the occurrence", "g", alert(1, t0), "checkout", true},
		{"a millisecond later", "g", alert(1, t0.Add(time.Millisecond)), "", false},
		{"another group", "h", alert(1, t0), "", false},
		{"another fingerprint", "g", alert(2, t0), "", false},
	} {
		if got, ok := m.get(c.group, c.a); got != c.want || ok != c.found {
			t.Errorf("%s: got %q, %v; want %q, %v", c.name, got, ok, c.want, c.found)
		}
	}

	// Many more occurrences than two generations hold: the latest are
	// all remembered, and the maps stay bounded.
	const n = 1000
	for i := range n {
		m.put(map[GroupRef][]Alert{{GroupKey: "g", Service: fmt.Sprint("svc-", i%7)}: {alert(10+i, t0)}})
	}
	for i := n - 100; i < n; i++ {
		if got, ok := m.get("g", alert(10+i, t0)); !ok || got != fmt.Sprint("svc-", i%7) {
			t.Errorf("occurrence %d: got %q, %v; want svc-%d", i, got, ok, i%7)
		}
	}
	if held := len(m.cur) + len(m.old); held > 2*int(limit/sizeStartEntry) {
		t.Errorf("holds %d occurrences, want at most %d (two generations)", held, 2*limit/sizeStartEntry)
	}
}
