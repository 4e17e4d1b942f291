// Package nines_test checks the layout that docs/architecture.md draws:
// imports point down its layers.
package nines_test

import (
	"os/exec"
	"strings"
	"testing"
)

// layers is the dependency direction docs/architecture.md draws: a
// package may import only packages of a lower layer (never its own, never
// a higher one). A package missing here fails the test: place it in the
// document and here.
var layers = map[string]int{
	// Vocabulary: imports nothing of nines.
	"fault":   0,
	"catalog": 0,
	"lease":   0,
	// HTTP answers, over the error kinds.
	"answer": 1,
	// The incident model every domain speaks.
	"incidents": 2,
	// Domains.
	"alerts":       3,
	"availability": 3,
	"chat":         3,
	"dashboards":   3,
	"journal":      3,
	"spool":        3,
	// Domains built on availability's figures.
	"changes":   4,
	"collector": 4,
	// Test doubles of the outside world and of domains' ports.
	"chat/slacktest":         1,
	"collector/promtest":     1,
	"dashboards/grafanatest": 1,
	"chat/chattest":          5,
	// Pages over the domains' figures.
	"web": 5,
	// The storage adapter implements the domains' ports.
	"chstore":        6,
	"chstore/chtest": 7,
	// Programs wire everything.
	"cmd/nines":            8,
	"cmd/nines-bench":      8,
	"cmd/nines-chaos":      8,
	"cmd/internal/harness": 7,
	// A test program that imports nothing of nines.
	"chstore/chtest/chdbserver": 8,
}

const module = "github.com/ninesops/nines"

// TestImportDirection fails when an import runs against the layers: a
// domain package importing the adapter (chstore) or a program (cmd), the
// vocabulary importing a domain, or any arrow upward or sideways.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] == module {
			continue // this test's own package
		}
		pkg := strings.TrimPrefix(fields[0], module+"/")
		from, ok := layers[pkg]
		if !ok {
			t.Errorf("package %s is not in docs/architecture.md's layers (architecture_test.go)", pkg)
			continue
		}
		seen++
		for _, imp := range fields[1:] {
			dep, ours := strings.CutPrefix(imp, module+"/")
			if !ours {
				continue
			}
			to, ok := layers[dep]
			if !ok {
				continue // reported as a package of its own
			}
			if to >= from {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must point down the layers of docs/architecture.md", pkg, from, dep, to)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("go list showed %d packages; is the test running in the module root?", seen)
	}
}
