package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheck runs `nines check` on good and bad files: good ones exit 0
// and say SUCCESS, bad ones exit non-zero and name the problem by line
// and YAML path.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		args []string
		code int
		want []string // in the output, in this order
	}{
		{"shipped config", []string{"config", "../../deploy/nines/config.yml"}, 0,
			[]string{"Checking ../../deploy/nines/config.yml", "SUCCESS"}},
		{"empty config is the defaults", []string{"config", write("empty.yml", "# nothing\n")}, 0,
			[]string{"SUCCESS"}},
		{"config: unknown key, with a suggestion", []string{"config", write("typo.yml", "incidents:\n  group_by: []\n  reopen_windw: 30m\n")}, 1,
			[]string{"FAILED", "typo.yml:3: incidents.reopen_windw: unknown field; did you mean reopen_window?"}},
		{"config: unknown section", []string{"config", write("section.yml", "incident:\n  group_by: []\n")}, 1,
			[]string{"section.yml:1: incident: unknown field; did you mean incidents?"}},
		{"config: wrong type", []string{"config", write("type.yml", "incidents:\n  reopen_window: soon\n")}, 1,
			[]string{`type.yml:2: incidents.reopen_window: cannot read str "soon" as a duration such as 30m`}},
		{"config: invalid value", []string{"config", write("value.yml", "availability:\n  windows: [30d, fortnight]\n")}, 1,
			[]string{"availability.windows[1]", "fortnight"}},
		{"config: syntax", []string{"config", write("syntax.yml", "incidents:\n  group_by: [a\n")}, 1,
			[]string{"syntax.yml:"}},
		{"config: one bad file of two fails the run, both are reported", []string{"config", "../../deploy/nines/config.yml", write("typo2.yml", "chat:\n  operations_chanel: x\n")}, 1,
			[]string{"SUCCESS", "typo2.yml:2: chat.operations_chanel: unknown field; did you mean operations_channel?"}},
		{"shipped catalog", []string{"catalog", "../../deploy/catalog/catalog.yml"}, 0,
			[]string{"SUCCESS", "services"}},
		{"catalog: bad SLO", []string{"catalog", write("cat.yml", "services:\n  - name: a\n    slo_target: 120\n")}, 1,
			[]string{"FAILED", "cat.yml:3: services[0].slo_target"}},
		{"catalog: status page groups", []string{"catalog", write("status.yml", "services:\n  - name: a\nstatus_page:\n  groups:\n    - {name: Shop, services: [a]}\n")}, 0,
			[]string{"SUCCESS", "1 services, 0 squads, 1 status page groups found"}},
		{"catalog: status page naming unknown services and a group twice", []string{"catalog", write("status-bad.yml", `services:
  - name: a
status_page:
  groups:
    - {name: Shop, services: [a, b]}
    - {name: Shop, services: [a]}
`)}, 1, []string{"FAILED", `status-bad.yml:5: status_page.groups[0].services[1]: unknown service "b"`,
			`status-bad.yml:6: status_page.groups[1].name: duplicate group "Shop" (first defined at line 5)`}},
		{"shipped rules", []string{"rules", "../../deploy/prometheus/nines-rules.yml", "../../deploy/prometheus/generated/budget-rules.yml"}, 0,
			[]string{"nines-rules.yml", "SUCCESS", "budget-rules.yml", "SUCCESS"}},
		{"rules: empty file", []string{"rules", write("none.yml", "")}, 0,
			[]string{"SUCCESS: 0 rules in 0 groups found"}},
		{"rules: unknown field", []string{"rules", write("r1.yml", "groups:\n- name: a\n  rules:\n  - alert: X\n    exprr: up\n")}, 1,
			[]string{"r1.yml:5: groups[0].rules[0].exprr: unknown field; did you mean expr?"}},
		{"rules: every problem named", []string{"rules", write("r2.yml", `groups:
- name: a
  rules:
  - alert: X
    expr: up
    for: 5x
    labels: {"bad-name": x}
    annotations: {summary: "{{ $labels.x "}
  - record: "bad name"
    expr: up
  - record: ok
    alert: Y
    expr: up
  - alert: Z
- name: a
  rules: []
`)}, 1, []string{
			`r2.yml:6: groups[0].rules[0].for: unknown unit "x"`,
			`r2.yml:7: groups[0].rules[0].labels.bad-name: "bad-name" is not a valid label name`,
			`r2.yml:8: groups[0].rules[0].annotations.summary:`,
			`r2.yml:9: groups[0].rules[1].record: "bad name" is not a valid metric name`,
			`r2.yml:11: groups[0].rules[2]: has both record and alert`,
			`r2.yml:14: groups[0].rules[3].expr: an expression is required`,
			`r2.yml:15: groups[1].name: "a" is also the name of groups[0]`,
		}},
		{"rules: a promtool test file is not a rule file", []string{"rules", "../../deploy/prometheus/nines-rules.test.yml"}, 1,
			[]string{"rule_files: unknown field"}},
		{"missing file", []string{"rules", filepath.Join(dir, "nope.yml")}, 1,
			[]string{"FAILED", "nope.yml"}},
		{"no file", []string{"config"}, 2, nil},
		{"unknown kind", []string{"alertmanager", "x.yml"}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"check"}, tt.args...), &stdout, &stderr, nil)
			code := 0
			if err != nil {
				code = exitCode(err)
			}
			if code != tt.code {
				t.Errorf("exit code %d, want %d (error %v)\nstdout:\n%s\nstderr:\n%s", code, tt.code, err, &stdout, &stderr)
			}
			out := stdout.String()
			for _, w := range tt.want {
				i := strings.Index(out, w)
				if i < 0 {
					t.Errorf("output lacks %q:\n%s", w, stdout.String())
					continue
				}
				out = out[i+len(w):]
			}
		})
	}
}
