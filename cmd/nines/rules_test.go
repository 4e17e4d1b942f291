package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ninesops/nines/collector/promtest"
)

// The example catalog and its committed budget rules, from cmd/nines.
const (
	rulesExampleCatalog = "../../deploy/catalog/catalog.yml"
	rulesCommitted      = "../../deploy/prometheus/generated/budget-rules.yml"
	rulesCommittedTest  = "../../deploy/prometheus/generated/budget-rules.test.yml"
	rulesRegenerate     = "go run ./cmd/nines rules generate --catalog.file deploy/catalog/catalog.yml --out deploy/prometheus/generated/budget-rules.yml\n" +
		"  (or: NINES_UPDATE_RULES=1 go test ./cmd/nines -run TestCommittedRulesAreCurrent)"
)

func runRules(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"rules"}, args...), &stdout, &stderr, nil)
	return stdout.String(), stderr.String(), err
}

// TestCommittedRulesAreCurrent regenerates the budget rules of the example
// catalog and fails if deploy/prometheus/generated/budget-rules.yml
// differs, so that a catalog or generator change cannot land without its
// rules. NINES_UPDATE_RULES=1 rewrites the file instead.
func TestCommittedRulesAreCurrent(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "budget-rules.yml")
	if _, stderr, err := runRules(t, "generate", "--catalog.file", rulesExampleCatalog, "--out", out); err != nil {
		t.Fatalf("generate: %v\n%s", err, stderr)
	}
	generated, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("NINES_UPDATE_RULES") == "1" {
		if err := os.WriteFile(rulesCommitted, generated, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	committed, err := os.ReadFile(rulesCommitted)
	if err != nil {
		t.Fatalf("deploy/prometheus/generated/budget-rules.yml: %v; generate it with:\n  %s", err, rulesRegenerate)
	}
	if !bytes.Equal(generated, committed) {
		t.Errorf("deploy/prometheus/generated/budget-rules.yml is stale; regenerate with:\n  %s", rulesRegenerate)
	}
}

// TestCommittedRulesPassPromtool checks the committed rules with promtool
// and runs their unit tests (budget-rules.test.yml).
func TestCommittedRulesPassPromtool(t *testing.T) {
	t.Parallel()
	promtool := promtest.Promtool(t)
	for _, args := range [][]string{
		{"check", "rules", rulesCommitted},
		{"test", "rules", rulesCommittedTest},
	} {
		out, err := exec.CommandContext(t.Context(), promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestRulesGenerate: the output follows --collector.windows, goes to stdout by default, and passes
// promtool check rules.
func TestRulesGenerate(t *testing.T) {
	t.Parallel()
	all := "5m,30m,1h,2h,6h,24h,3d,7d,30d"
	tests := []struct {
		name string
		args []string
		want []string // substrings of the output
		not  []string
	}{
		{
			name: "default windows",
			args: []string{"--catalog.file", rulesExampleCatalog},
			want: []string{
				"name: nines-budget-checkout", "name: nines-budget-playlist",
				`(1 - min by (service) (nines_service_availability_ratio{service="checkout", window="1h"})) / (1 - 0.9995) > 14.4`,
				`window="24h"})) / (1 - 0.9995) > 3` + "\n          and\n" + `          (1 - min by (service) (nines_service_availability_ratio{service="checkout", window="1h"})) / (1 - 0.9995) > 3`,
				`window="30d"})) / (1 - 0.9995) > 0.75`,
				"--collector.windows=1h,24h,7d,30d",
			},
			not: []string{`window="5m"`, "> 6\n"},
		},
		{
			name: "every workbook window",
			args: []string{"--catalog.file", rulesExampleCatalog, "--collector.windows", all},
			want: []string{
				`window="1h"})) / (1 - 0.9995) > 14.4` + "\n          and\n" + `          (1 - min by (service) (nines_service_availability_ratio{service="checkout", window="5m"}))`,
				`window="6h"})) / (1 - 0.9995) > 6` + "\n          and\n",
				`window="24h"})) / (1 - 0.9995) > 3` + "\n          and\n" + `          (1 - min by (service) (nines_service_availability_ratio{service="checkout", window="2h"}))`,
				`window="3d"})) / (1 - 0.9995) > 1` + "\n          and\n",
				"--collector.windows=" + all,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, err := runRules(t, append([]string{"generate"}, tc.args...)...)
			if err != nil {
				t.Fatalf("generate: %v\n%s", err, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, stdout)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(stdout, n) {
					t.Errorf("output has %q:\n%s", n, stdout)
				}
			}
			if promtool, err := exec.LookPath("promtool"); err == nil { // else checked by TestCommittedRulesPassPromtool
				f := filepath.Join(t.TempDir(), "rules.yml")
				if err := os.WriteFile(f, []byte(stdout), 0o644); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.CommandContext(t.Context(), promtool, "check", "rules", f).CombinedOutput(); err != nil {
					t.Errorf("promtool check rules: %v\n%s", err, out)
				}
			}
		})
	}
}

func TestRulesUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		args  []string
		want  string
		usage bool // a usageError (exit code 2)
	}{
		{"no subcommand", nil, "must select a subcommand of 'rules'", true},
		{"unknown subcommand", []string{"check"}, `expected command but got "check"`, true},
		{"no catalog", []string{"generate"}, "--catalog.file is required", true},
		{"unknown flag", []string{"generate", "--catalog", "x"}, "unknown long flag '--catalog'", true},
		{"bad window", []string{"generate", "--catalog.file", rulesExampleCatalog, "--collector.windows", "1h,fortnight"}, `window "fortnight"`, true},
		{"no 30d window", []string{"generate", "--catalog.file", rulesExampleCatalog, "--collector.windows", "1h,7d"}, "need the 30d window", false},
		{"no burn window", []string{"generate", "--catalog.file", rulesExampleCatalog, "--collector.windows", "7d,30d"}, "one of the windows 1h, 6h, 24h", false},
		{"missing catalog", []string{"generate", "--catalog.file", "no/such/catalog.yml"}, "no/such/catalog.yml", false},
		{"unwritable out", []string{"generate", "--catalog.file", rulesExampleCatalog, "--out", "no/such/dir/rules.yml"}, "--out", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := runRules(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("rules %v = %v, want an error containing %q", tc.args, err, tc.want)
			}
			if got := exitCode(err) == 2; got != tc.usage {
				t.Errorf("rules %v: exit code %d, want usage error %v", tc.args, exitCode(err), tc.usage)
			}
		})
	}
}

// TestRulesOutIsReplacedWhole: --out replaces the file, and a failed
// generation leaves the old one alone.
func TestRulesOutIsReplacedWhole(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runRules(t, "generate", "--catalog.file", rulesExampleCatalog, "--collector.windows", "1h", "--out", out); err == nil {
		t.Fatal("generate without the 30d window succeeded")
	}
	if b, _ := os.ReadFile(out); string(b) != "old" {
		t.Fatalf("failed generation changed --out: %q", b)
	}
	stdout, _, err := runRules(t, "generate", "--catalog.file", rulesExampleCatalog)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := runRules(t, "generate", "--catalog.file", rulesExampleCatalog, "--out", out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != stdout {
		t.Errorf("--out holds something else than stdout would")
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Errorf("temporary files left next to --out: %v", entries)
	}
}
