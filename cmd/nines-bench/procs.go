package main

import (
	"os"
	"strings"
	"time"

	"github.com/ninesops/nines/cmd/internal/harness"
)

// usage is a process's consumption over a phase.
type usage struct {
	pid     int
	cpu0    time.Duration
	CPU     time.Duration
	PeakRSS int64
}

func startUsage(pid int) *usage {
	u := &usage{pid: pid}
	if pid <= 0 {
		return u
	}
	_ = harness.ResetPeakRSS(pid) // best effort: without it the peak covers the process's life
	u.cpu0, _, _ = harness.ProcStats(pid)
	return u
}

func (u *usage) stop() {
	if u.pid <= 0 {
		return
	}
	cpu, peak, err := harness.ProcStats(u.pid)
	if err != nil {
		return
	}
	u.CPU, u.PeakRSS = cpu-u.cpu0, peak
}

// machineLoad describes how busy the machine is, from /proc/loadavg and
// /proc/pressure/cpu (the share of time some runnable task waited for a
// CPU): figures taken on a machine other work keeps busy are low.
func machineLoad() string {
	var parts []string
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			parts = append(parts, "load average "+strings.Join(f[:3], " "))
		}
	}
	if b, err := os.ReadFile("/proc/pressure/cpu"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "some "); ok {
				for _, kv := range strings.Fields(rest) {
					if v, ok := strings.CutPrefix(kv, "avg60="); ok {
						parts = append(parts, "CPU pressure "+v+"% (60 s)")
					}
				}
			}
		}
	}
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, ", ")
}
