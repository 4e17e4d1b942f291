package harness

import "testing"

// TestFreeNGivesDifferentPorts: a server's TCP and HTTP ports (and a
// cluster's) are picked at once and never the same (clickhousectl once
// got one port for both from two picks one after the other).
func TestFreeNGivesDifferentPorts(t *testing.T) {
	for _, p := range []*Ports{nil, {}} {
		for range 20 {
			ports, err := p.FreeN(7)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[int]bool{}
			for _, port := range ports {
				if seen[port] {
					t.Fatalf("FreeN(7) gave port %d twice: %v", port, ports)
				}
				seen[port] = true
			}
		}
	}
}
