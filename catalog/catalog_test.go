package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	_ "time/tzdata" // the maintenance tests need Europe/Stockholm wherever they run
)

// writeFiles writes files (path relative to a fresh temporary directory →
// content) and returns the directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadFiles writes files and loads catalog.yml among them. Errors are
// returned with the directory stripped, so they read "catalog.yml:3: ...".
func loadFiles(t *testing.T, files map[string]string) (*Catalog, error) {
	t.Helper()
	dir := writeFiles(t, files)
	c, err := Load(filepath.Join(dir, "catalog.yml"))
	if err != nil {
		return nil, errors.New(strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""))
	}
	return c, nil
}

func mustLoad(t *testing.T, files map[string]string) *Catalog {
	t.Helper()
	c, err := loadFiles(t, files)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return c
}

func names(services []Service) []string {
	out := make([]string, len(services))
	for i, s := range services {
		out[i] = s.Name
	}
	return out
}

func TestExampleCatalog(t *testing.T) {
	t.Parallel()
	c, err := Load("../deploy/catalog/catalog.yml")
	if err != nil {
		t.Fatalf("example catalog does not load: %v", err)
	}
	want := []string{"checkout", "frontend", "payments-api", "playlist", "recommendations", "search"}
	if got := names(c.Services()); !slices.Equal(got, want) {
		t.Errorf("services = %v, want %v", got, want)
	}
	// The Alertmanager fixtures' services.
	for _, name := range []string{"checkout", "search"} {
		if _, ok := c.Service(name); !ok {
			t.Errorf("fixture service %s missing", name)
		}
	}
	if got := c.Upstream("frontend"); !slices.Equal(got, []string{"checkout", "payments-api", "search"}) {
		t.Errorf("Upstream(frontend) = %v", got)
	}
	if got := c.Location().String(); got != "Europe/Stockholm" {
		t.Errorf("location = %s", got)
	}
	rec, _ := c.Service("recommendations")
	if rec.Owner != "music-core" || rec.Channel != "#music-core" || rec.SLOTarget != 0.9995 ||
		!slices.Equal(rec.Dependencies, []string{"playlist"}) {
		t.Errorf("recommendations from Backstage = %+v", rec)
	}
	search, _ := c.Service("search")
	if search.System != "shop" || search.Description != "Product search." {
		t.Errorf("search merged = %+v", search)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		check func(t *testing.T, c *Catalog)
	}{
		{
			name:  "no services",
			files: map[string]string{"catalog.yml": "services: []\n"},
			check: func(t *testing.T, c *Catalog) {
				if c.Len() != 0 || c.DefaultSLO() != DefaultSLOTarget || c.Location().String() != "UTC" {
					t.Errorf("got %d services, default %v, location %v", c.Len(), c.DefaultSLO(), c.Location())
				}
			},
		},
		{
			name: "defaults and percent to ratio",
			files: map[string]string{"catalog.yml": `
defaults: {slo_target: 99.5, timezone: America/New_York}
services:
  - {name: a, slo_target: 99.95}
  - {name: b}
  - {name: c, slo_target: 90}
`},
			check: func(t *testing.T, c *Catalog) {
				for name, want := range map[string]float64{"a": 0.9995, "b": 0.995, "c": 0.9, "unknown": 0.995} {
					if got := c.SLOTarget(name); got != want {
						t.Errorf("SLOTarget(%s) = %v, want %v", name, got, want)
					}
				}
				if c.DefaultSLO() != 0.995 || c.Location().String() != "America/New_York" {
					t.Errorf("default %v, location %v", c.DefaultSLO(), c.Location())
				}
			},
		},
		{
			name: "all fields and channel resolution",
			files: map[string]string{"catalog.yml": `
squads:
  - {name: payments, channel: "#payments-ops"}
  - {name: quiet}
services:
  - name: checkout
    owner: payments
    tier: 1
    slo_target: 99.95
    channel: "#checkout"
    system: shop
    description: Takes orders.
    dependencies: [payments-api]
    dashboard_url: https://grafana.example.com/d/checkout
    runbook_url: http://runbooks.example.com/checkout
  - {name: payments-api, owner: payments}
  - {name: ledger, owner: quiet}
  - {name: orphan}
`},
			check: func(t *testing.T, c *Catalog) {
				s, ok := c.Service("checkout")
				want := Service{
					Name: "checkout", Owner: "payments", Tier: 1, SLOTarget: 0.9995, Channel: "#checkout",
					System: "shop", Description: "Takes orders.", Dependencies: []string{"payments-api"},
					DashboardURL: "https://grafana.example.com/d/checkout", RunbookURL: "http://runbooks.example.com/checkout",
				}
				if !ok || !equalService(s, want) {
					t.Errorf("checkout = %+v, want %+v", s, want)
				}
				for svc, want := range map[string]string{
					"checkout": "#checkout", "payments-api": "#payments-ops", "ledger": "", "orphan": "", "unknown": "",
				} {
					if got := c.Channel(svc); got != want {
						t.Errorf("Channel(%s) = %q, want %q", svc, got, want)
					}
				}
				if got := c.Squads(); len(got) != 2 || got[0].Name != "payments" || got[1] != (Squad{Name: "quiet"}) {
					t.Errorf("Squads() = %v", got)
				}
				if sq, ok := c.Squad("payments"); !ok || sq.Channel != "#payments-ops" {
					t.Errorf("Squad(payments) = %v, %v", sq, ok)
				}
			},
		},
		{
			name: "owners are free-form when no squads are listed",
			files: map[string]string{"catalog.yml": `
services: [{name: a, owner: anyone}]
`},
			check: func(t *testing.T, c *Catalog) {
				if s, _ := c.Service("a"); s.Owner != "anyone" {
					t.Errorf("owner = %q", s.Owner)
				}
			},
		},
		{
			name: "services sorted by name; copies do not leak",
			files: map[string]string{"catalog.yml": `
services:
  - {name: zeta, dependencies: [alpha]}
  - {name: alpha}
  - {name: mid.dle_1-x}
`},
			check: func(t *testing.T, c *Catalog) {
				if got := names(c.Services()); !slices.Equal(got, []string{"alpha", "mid.dle_1-x", "zeta"}) {
					t.Errorf("order = %v", got)
				}
				s, _ := c.Service("zeta")
				s.Dependencies[0] = "changed"
				if again, _ := c.Service("zeta"); again.Dependencies[0] != "alpha" {
					t.Error("Service returned the catalog's own slice")
				}
			},
		},
		{
			name: "timestamps without offset are read in the window's time zone",
			files: map[string]string{"catalog.yml": `
defaults: {timezone: Europe/Stockholm}
services:
  - name: a
    maintenance:
      - {start: "2026-11-01 02:00", end: 2026-11-01T04:00, reason: upgrade}
      - {start: "2026-11-02T02:00:00", end: "2026-11-02T03:00:00", timezone: UTC}
      - {start: 2026-11-03T02:00:00Z, end: 2026-11-03T04:00:00+01:00}
`},
			check: func(t *testing.T, c *Catalog) {
				s, _ := c.Service("a")
				got := make([]string, len(s.Maintenance))
				for i, w := range s.Maintenance {
					got[i] = w.Start.UTC().Format("01-02 15:04") + "/" + w.End.UTC().Format("01-02 15:04")
				}
				want := []string{"11-01 01:00/11-01 03:00", "11-02 02:00/11-02 03:00", "11-03 02:00/11-03 03:00"}
				if !slices.Equal(got, want) {
					t.Errorf("windows = %v, want %v", got, want)
				}
				if s.Maintenance[0].Reason != "upgrade" {
					t.Errorf("reason = %q", s.Maintenance[0].Reason)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.check(t, mustLoad(t, tc.files))
		})
	}
}

func equalService(a, b Service) bool {
	return a.Name == b.Name && a.Owner == b.Owner && a.Tier == b.Tier && a.SLOTarget == b.SLOTarget &&
		a.Channel == b.Channel && a.System == b.System && a.Description == b.Description &&
		slices.Equal(a.Dependencies, b.Dependencies) && a.DashboardURL == b.DashboardURL &&
		a.RunbookURL == b.RunbookURL && len(a.Maintenance) == len(b.Maintenance) && len(a.Match) == len(b.Match)
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string // catalog.yml and any Backstage files
		want  []string          // the error's lines, in order
	}{
		{
			name: "unknown top-level field",
			files: map[string]string{"catalog.yml": `defaults: {slo_target: 99.9}
servces: []
`},
			want: []string{"catalog.yml:2: servces: unknown field (known fields: defaults, squads, services, backstage, status_page)"},
		},
		{
			name: "unknown service field",
			files: map[string]string{"catalog.yml": `services:
  - name: a
    slo: 99
`},
			want: []string{"catalog.yml:3: services[0].slo: unknown field (known fields: name, owner, tier, slo_target, channel, system, description, dependencies, dashboard_url, runbook_url, match, maintenance)"},
		},
		{
			name: "unknown maintenance field",
			files: map[string]string{"catalog.yml": `services:
  - name: a
    maintenance:
      - {schedule: daily, at: "03:00", duration: 1h, every: 2}
`},
			want: []string{"catalog.yml:4: services[0].maintenance[0].every: unknown field (known fields: start, end, reason, schedule, days, at, duration, timezone)"},
		},
		{
			name: "wrong type",
			files: map[string]string{"catalog.yml": `services:
  - name: a
    slo_target: very high
    tier: first
    dependencies: b
`},
			want: []string{
				"catalog.yml:3: services[0].slo_target: cannot use string \"very high\" as a number",
				"catalog.yml:4: services[0].tier: cannot use string \"first\" as an integer",
				"catalog.yml:5: services[0].dependencies: cannot use string \"b\" as a list",
			},
		},
		{
			name:  "syntax error",
			files: map[string]string{"catalog.yml": "services:\n  - name: a\n    owner: b: c\n"},
			want:  []string{"catalog.yml:3: mapping values are not allowed in this context"},
		},
		{
			name: "duplicate key",
			files: map[string]string{"catalog.yml": `services:
  - name: a
    name: b
`},
			want: []string{`catalog.yml:3: services[0].name: duplicate key (already defined at line 2)`},
		},
		{
			name:  "more than one document",
			files: map[string]string{"catalog.yml": "services: []\n---\nservices: []\n"},
			want:  []string{"catalog.yml:2: more than one YAML document; want exactly one"},
		},
		{
			name: "slo target out of range",
			files: map[string]string{"catalog.yml": `defaults:
  slo_target: 0
services:
  - name: a
  - name: b
  - name: c
    slo_target: 100.5
  - name: d
    slo_target: 99.99999999999999
`},
			want: []string{
				"catalog.yml:2: defaults.slo_target: must be between 0 and 100 (exclusive), got 0",
				"catalog.yml:7: services[2].slo_target: must be between 0 and 100 (exclusive), got 100.5",
				"catalog.yml:9: services[3].slo_target: must be between 0 and 100 (exclusive), got 99.99999999999999",
			},
		},
		{
			name: "time zones",
			files: map[string]string{"catalog.yml": `defaults:
  timezone: Mars/Olympus_Mons
services:
  - name: a
    maintenance:
      - {schedule: daily, at: "03:00", duration: 1h, timezone: Local}
`},
			want: []string{
				`catalog.yml:2: defaults.timezone: unknown time zone "Mars/Olympus_Mons"`,
				"catalog.yml:6: services[0].maintenance[0].timezone: want an IANA time zone name such as Europe/Stockholm, not Local",
			},
		},
		{
			name: "names",
			files: map[string]string{"catalog.yml": `squads:
  - name: Payments
  - name: ok
  - name: ok
services:
  - owner: ok
  - name: Checkout
  - name: -x
  - name: a
  - name: a
`},
			want: []string{
				`catalog.yml:2: squads[0].name: invalid name "Payments": want lowercase letters, digits, '.', '_' and '-', starting with a letter or digit`,
				`catalog.yml:4: squads[2].name: duplicate squad "ok"`,
				"catalog.yml:6: services[0].name: required",
				`catalog.yml:7: services[1].name: invalid name "Checkout": want lowercase letters, digits, '.', '_' and '-', starting with a letter or digit`,
				`catalog.yml:8: services[2].name: invalid name "-x": want lowercase letters, digits, '.', '_' and '-', starting with a letter or digit`,
				`catalog.yml:10: services[4].name: duplicate service "a" (first defined at line 9)`,
			},
		},
		{
			name: "owner must be a listed squad",
			files: map[string]string{"catalog.yml": `squads: [{name: payments}, {name: web}]
services:
  - {name: a, owner: payments}
  - {name: b, owner: paymnets}
`},
			want: []string{`catalog.yml:4: services[1].owner: unknown squad "paymnets" (squads: payments, web)`},
		},
		{
			name: "tier and URLs",
			files: map[string]string{"catalog.yml": `services:
  - name: a
    tier: -1
    dashboard_url: grafana/d/a
    runbook_url: "ftp://x/y"
`},
			want: []string{
				"catalog.yml:3: services[0].tier: must not be negative, got -1",
				`catalog.yml:4: services[0].dashboard_url: want an absolute http or https URL, got "grafana/d/a"`,
				`catalog.yml:5: services[0].runbook_url: want an absolute http or https URL, got "ftp://x/y"`,
			},
		},
		{
			name: "dependencies",
			files: map[string]string{"catalog.yml": `services:
  - name: a
    dependencies:
      - b
      - missing
      - a
      - b
  - name: b
`},
			want: []string{
				`catalog.yml:5: services[0].dependencies[1]: unknown service "missing"`,
				`catalog.yml:6: services[0].dependencies[2]: service "a" depends on itself`,
				`catalog.yml:7: services[0].dependencies[3]: duplicate dependency "b"`,
			},
		},
		{
			name: "dependency cycle",
			files: map[string]string{"catalog.yml": `services:
  - {name: c, dependencies: [a]}
  - {name: b, dependencies: [c]}
  - {name: a, dependencies: [b, d]}
  - {name: d, dependencies: [e]}
  - {name: e, dependencies: [d]}
`},
			want: []string{
				"catalog.yml:4: services[2].dependencies[0]: dependency cycle: a -> b -> c -> a",
				"catalog.yml:5: services[3].dependencies[0]: dependency cycle: d -> e -> d",
			},
		},
		{
			name: "matchers",
			files: map[string]string{"catalog.yml": `services:
  - name: a
    match:
      - {job: "checkout-(", instance: ".*"}
      - {"bad-label": x}
      - {}
`},
			want: []string{
				"catalog.yml:4: services[0].match[0].job: invalid regular expression: error parsing regexp: missing closing ): `checkout-(`",
				`catalog.yml:5: services[0].match[1]["bad-label"]: invalid label name "bad-label"`,
				"catalog.yml:6: services[0].match[2]: needs at least one label",
			},
		},
		{
			name: "one-off maintenance",
			files: map[string]string{"catalog.yml": `services:
  - name: a
    maintenance:
      - start: 2026-11-01T04:00:00+01:00
        end: 2026-11-01T02:00:00+01:00
      - start: 2026-11-01T04:00:00+01:00
      - start: tomorrow
        end: 2026-11-01T02:00:00+01:00
      - start: 2026-11-01T04:00:00+01:00
        end: 2026-11-01T05:00:00+01:00
        duration: 1h
      - reason: nothing else
`},
			want: []string{
				"catalog.yml:5: services[0].maintenance[0].end: must be after start (2026-11-01T04:00:00+01:00), got 2026-11-01T02:00:00+01:00",
				"catalog.yml:6: services[0].maintenance[1].end: required for a one-off window",
				`catalog.yml:7: services[0].maintenance[2].start: want a time like 2026-11-01T02:00:00+01:00 or 2026-11-01 02:00, got "tomorrow"`,
				"catalog.yml:9: services[0].maintenance[3]: want either start and end (one-off) or schedule, at and duration (recurring), not both",
				"catalog.yml:12: services[0].maintenance[4]: empty window: want start and end, or schedule, at and duration",
			},
		},
		{
			name: "recurring maintenance",
			files: map[string]string{"catalog.yml": `services:
  - name: a
    maintenance:
      - {schedule: weekly, days: [sun, funday], at: "3:00", duration: 0s}
      - {schedule: daily, days: [mon], at: "24:00", duration: 169h}
      - {schedule: weekly, at: "03:00", duration: soon}
      - {schedule: monthly, at: "03:00", duration: 1h}
      - {days: [mon], duration: -1h}
`},
			want: []string{
				`catalog.yml:4: services[0].maintenance[0].days[1]: want a day such as mon or monday, got "funday"`,
				`catalog.yml:4: services[0].maintenance[0].at: want HH:MM, got "3:00"`,
				"catalog.yml:4: services[0].maintenance[0].duration: must be positive, got 0s",
				"catalog.yml:5: services[0].maintenance[1].days: only allowed with schedule weekly",
				`catalog.yml:5: services[0].maintenance[1].at: want HH:MM between 00:00 and 23:59, got "24:00"`,
				"catalog.yml:5: services[0].maintenance[1].duration: must be at most 168h0m0s (7 days), got 169h",
				"catalog.yml:6: services[0].maintenance[2].days: required with schedule weekly",
				`catalog.yml:6: services[0].maintenance[2].duration: want a duration such as 1h30m, got "soon"`,
				`catalog.yml:7: services[0].maintenance[3].schedule: want daily or weekly, got "monthly"`,
				"catalog.yml:8: services[0].maintenance[4].schedule: required for a recurring window: daily or weekly",
				"catalog.yml:8: services[0].maintenance[4].at: required for a recurring window",
				"catalog.yml:8: services[0].maintenance[4].duration: must be positive, got -1h",
			},
		},
		{
			name: "backstage file missing",
			files: map[string]string{"catalog.yml": `services: []
backstage:
  - backstage/*.yaml
  - missing.yaml
  - ""
`},
			want: []string{
				"catalog.yml:4: backstage[1]: read backstage file: open missing.yaml: no such file or directory",
				"catalog.yml:5: backstage[2]: empty path",
			},
		},
		{
			name: "backstage problems",
			files: map[string]string{
				"catalog.yml": `services: [{name: a}]
backstage: [bs/*.yaml]
`,
				"bs/one.yaml": `kind: Component
metadata:
  name: b
  annotations:
    nines.io/slo-target: "100"
spec:
  dependsOn: [component:default/a, component:nope, resource:db]
---
kind: Component
metadata:
  name: Bad_Name
---
kind: Component
metadata: {name: a}
spec: {dependsOn: {a: b}}
`,
				"bs/two.yaml": `kind: Component
metadata:
  name: b
`,
				"bs/three.yaml": "kind: Component\nmetadata: [\n",
				"bs/four.yaml":  "just a string\n",
			},
			want: []string{
				"bs/four.yaml:1: document 1: want an entity (a mapping)",
				`bs/one.yaml:5: metadata.annotations["nines.io/slo-target"]: must be between 0 and 100 (exclusive), got 100`,
				`bs/one.yaml:11: metadata.name: invalid name "Bad_Name": want lowercase letters, digits, '.', '_' and '-', starting with a letter or digit`,
				"bs/one.yaml:15: spec.dependsOn: cannot use a mapping as a list",
				"bs/three.yaml:2: did not find expected node content",
			},
		},
		{
			name: "backstage duplicates and dangling dependencies",
			files: map[string]string{
				"catalog.yml": `services: [{name: a}]
backstage: [bs/*.yaml]
`,
				"bs/one.yaml": `kind: Component
metadata:
  name: b
spec:
  dependsOn: [component:default/a, component:nope, resource:db]
`,
				"bs/two.yaml": `kind: Component
metadata:
  name: b
`,
			},
			want: []string{
				`bs/two.yaml:3: metadata.name: component "b" already defined at bs/one.yaml:3`,
				`bs/one.yaml:5: spec.dependsOn[1]: unknown service "nope"`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadFiles(t, tc.files)
			if err == nil {
				t.Fatalf("no error; catalog has %v", names(c.Services()))
			}
			got := strings.Split(err.Error(), "\n")
			if !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestFieldErrorsAreInspectable(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("services:\n  - name: a\n    slo_target: 100.5\n"), "catalog.yml")
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *FieldError", err)
	}
	want := FieldError{File: "catalog.yml", Line: 3, Field: "services[0].slo_target", Msg: "must be between 0 and 100 (exclusive), got 100.5"}
	if *fe != want {
		t.Errorf("got %+v, want %+v", *fe, want)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	c, err := Load("")
	if err != nil || c.Len() != 0 || c.DefaultSLO() != DefaultSLOTarget {
		t.Errorf(`Load("") = %v, %v`, c, err)
	}
	_, err = Load(filepath.Join(t.TempDir(), "nope.yml"))
	if err == nil || !strings.HasPrefix(err.Error(), "read catalog: open ") {
		t.Errorf("missing file: %v", err)
	}
	_, err = Load(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}

func TestEmpty(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want float64
	}{
		{0.99, 0.99},
		{0, DefaultSLOTarget},
		{1, DefaultSLOTarget},
		{99.9, DefaultSLOTarget}, // a percentage by mistake
	}
	for _, tc := range tests {
		c := Empty(tc.in)
		if c.DefaultSLO() != tc.want || c.SLOTarget("any") != tc.want {
			t.Errorf("Empty(%v): default %v, want %v", tc.in, c.DefaultSLO(), tc.want)
		}
		if c.Len() != 0 || c.Services() == nil && len(c.Services()) != 0 || c.Upstream("x") != nil {
			t.Errorf("Empty(%v) is not empty", tc.in)
		}
		if got := c.Uncatalogued([]string{"b", "a", "b"}); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("Uncatalogued = %v", got)
		}
	}
}

func TestBackstageMerge(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"catalog/catalog.yml": `
squads: [{name: payments, channel: "#payments"}, {name: music-core, channel: "#music"}]
services:
  - name: checkout
    owner: payments
    slo_target: 99.95
    description: From nines.
  - name: search
    dependencies: []
  - name: playlist
    owner: music-core
backstage:
  - ../backstage/*.yaml
  - ../other/explicit.yaml
`,
		"backstage/a.yaml": `
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  description: From Backstage.
  annotations:
    nines.io/slo-target: "99.5"
    other: {nested: ok}
  tags: [go]
spec:
  owner: group:default/someone-else
  system: shop
  dependsOn:
    - component:default/search
    - resource:default/checkout-db
    - api:payments
  providesApis: [checkout-api]
---
kind: API
metadata:
  name: checkout-api
spec: {type: openapi, definition: {$text: ./api.yaml}}
---
---
kind: component
metadata:
  name: search
  annotations:
    nines.io/slo-target: 99.99
spec:
  owner: user:jane
  dependsOn: [component:checkout]
`,
		"backstage/ignored.txt": "not yaml: [",
		"other/explicit.yaml": `
kind: Component
metadata:
  name: recommendations
spec:
  owner: group:default/music-core
  dependsOn: [component:playlist, "search"]
`,
	})
	c, err := Load(filepath.Join(dir, "catalog", "catalog.yml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want Service
	}{
		{
			// Catalog fields win; Backstage fills system and dependencies.
			name: "checkout",
			want: Service{
				Name: "checkout", Owner: "payments", SLOTarget: 0.9995, Channel: "#payments", System: "shop",
				Description: "From nines.", Dependencies: []string{"search"},
			},
		},
		{
			// dependencies: [] in the catalog is a value, not a gap.
			name: "search",
			want: Service{Name: "search", Owner: "jane", SLOTarget: 0.9999, Dependencies: []string{}},
		},
		{
			name: "playlist",
			want: Service{Name: "playlist", Owner: "music-core", SLOTarget: 0.999, Channel: "#music"},
		},
		{
			// Backstage only: default SLO, squad channel through the owner.
			name: "recommendations",
			want: Service{
				Name: "recommendations", Owner: "music-core", SLOTarget: 0.999, Channel: "#music",
				Dependencies: []string{"playlist", "search"},
			},
		},
	}
	for _, tc := range tests {
		got, ok := c.Service(tc.name)
		if !ok || !equalService(got, tc.want) {
			t.Errorf("%s = %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
	if got := names(c.Services()); !slices.Equal(got, []string{"checkout", "playlist", "recommendations", "search"}) {
		t.Errorf("services = %v (kind API must be ignored)", got)
	}
}

func TestParseRef(t *testing.T) {
	t.Parallel()
	tests := []struct{ ref, kind, name string }{
		{"component:payments-api", "component", "payments-api"},
		{"component:default/payments-api", "component", "payments-api"},
		{"Component:other/payments-api", "component", "payments-api"},
		{"group:default/music-core", "group", "music-core"},
		{"user:jane", "user", "jane"},
		{"music-core", "", "music-core"},
		{" default/search ", "", "search"},
	}
	for _, tc := range tests {
		if kind, name := parseRef(tc.ref); kind != tc.kind || name != tc.name {
			t.Errorf("parseRef(%q) = %q, %q; want %q, %q", tc.ref, kind, name, tc.kind, tc.name)
		}
	}
}

func TestUpstream(t *testing.T) {
	t.Parallel()
	// A diamond (app → api, web → db) with a tail (db → disk) and a
	// service nothing depends on.
	c := mustLoad(t, map[string]string{"catalog.yml": `
services:
  - {name: app, dependencies: [web, api]}
  - {name: web, dependencies: [db]}
  - {name: api, dependencies: [db, cache]}
  - {name: db, dependencies: [disk]}
  - {name: cache}
  - {name: disk}
  - {name: lonely}
`})
	tests := []struct {
		name       string
		direct     []string
		upstream   []string
		nearest    []string // upstream, nearest first
		downstream []string
	}{
		{"app", []string{"api", "web"}, []string{"api", "cache", "db", "disk", "web"}, []string{"api", "web", "cache", "db", "disk"}, nil},
		{"api", []string{"cache", "db"}, []string{"cache", "db", "disk"}, []string{"cache", "db", "disk"}, []string{"app"}},
		{"db", []string{"disk"}, []string{"disk"}, []string{"disk"}, []string{"api", "app", "web"}},
		{"cache", nil, nil, nil, []string{"api", "app"}},
		{"disk", nil, nil, nil, []string{"api", "app", "db", "web"}},
		{"lonely", nil, nil, nil, nil},
		{"unknown", nil, nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := c.Dependencies(tc.name); !slices.Equal(got, tc.direct) {
				t.Errorf("Dependencies = %v, want %v", got, tc.direct)
			}
			if got := c.Upstream(tc.name); !slices.Equal(got, tc.upstream) {
				t.Errorf("Upstream = %v, want %v", got, tc.upstream)
			}
			if got := c.UpstreamNearestFirst(tc.name); !slices.Equal(got, tc.nearest) {
				t.Errorf("UpstreamNearestFirst = %v, want %v", got, tc.nearest)
			}
			if got := c.Downstream(tc.name); !slices.Equal(got, tc.downstream) {
				t.Errorf("Downstream = %v, want %v", got, tc.downstream)
			}
		})
	}
}

func TestOwner(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, map[string]string{"catalog.yml": `
squads:
  - {name: payments}
services:
  - {name: checkout, owner: payments}
  - {name: orphan}
`})
	for name, want := range map[string]string{"checkout": "payments", "orphan": "", "unknown": ""} {
		if got := c.Owner(name); got != want {
			t.Errorf("Owner(%s) = %q, want %q", name, got, want)
		}
	}
}

func TestUpstreamCycleSafe(t *testing.T) {
	t.Parallel()
	// Validation rejects cycles, so build one by hand.
	c := Empty(0)
	c.services["a"] = &Service{Name: "a", Dependencies: []string{"b"}}
	c.services["b"] = &Service{Name: "b", Dependencies: []string{"a", "c"}}
	c.services["c"] = &Service{Name: "c", Dependencies: []string{"b"}}
	if got := c.Upstream("a"); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("Upstream(a) = %v", got)
	}
	if got := c.Downstream("a"); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("Downstream(a) = %v", got)
	}
}

func TestServiceFor(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, map[string]string{"catalog.yml": `
services:
  - name: zeta
    match:
      - {job: "checkout-.*"}
  - name: checkout
    match:
      - {job: "checkout"}
      - {namespace: "shop", app: "check(out)?"}
  - name: anything-in-lab
    match:
      - {env: "lab", job: ".*"}
  - name: plain
`})
	tests := []struct {
		name   string
		labels map[string]string
		want   string
	}{
		{"exact job", map[string]string{"job": "checkout"}, "checkout"},
		{"anchored: no substring match", map[string]string{"job": "my-checkout"}, ""},
		{"anchored: no prefix match", map[string]string{"job": "checkouts"}, ""},
		{"first service in file order wins", map[string]string{"job": "checkout-worker", "env": "lab"}, "zeta"},
		{"second matcher, all labels", map[string]string{"namespace": "shop", "app": "check"}, "checkout"},
		{"second matcher, one label missing", map[string]string{"namespace": "shop"}, ""},
		{"missing label is empty and .* matches it", map[string]string{"env": "lab"}, "anything-in-lab"},
		{"no labels", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := c.ServiceFor(tc.labels)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("ServiceFor(%v) = %q, %v; want %q", tc.labels, got, ok, tc.want)
			}
		})
	}
	s, _ := c.Service("checkout")
	if got := s.Match[1].String(); got != `{app=~"check(out)?", namespace=~"shop"}` {
		t.Errorf("String() = %s", got)
	}
	if got := s.Match[1].Labels(); got["app"] != "check(out)?" || len(got) != 2 {
		t.Errorf("Labels() = %v", got)
	}
}

func TestNewMatcher(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		exprs   map[string]string
		wantErr string
	}{
		{"ok", map[string]string{"job": "a|b"}, ""},
		{"empty", nil, "needs at least one label"},
		{"bad name", map[string]string{"0job": "a"}, `label 0job: invalid label name "0job"`},
		{"bad regexp", map[string]string{"job": "("}, "label job: invalid regular expression: error parsing regexp: missing closing ): `(`"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewMatcher(tc.exprs)
			if got := errString(err); got != tc.wantErr {
				t.Errorf("err = %q, want %q", got, tc.wantErr)
			}
		})
	}
	var zero Matcher
	if zero.Matches(map[string]string{}) {
		t.Error("zero Matcher matches")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestUncatalogued(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, map[string]string{"catalog.yml": "services: [{name: checkout}, {name: search}]\n"})
	got := c.Uncatalogued([]string{"search", "zeta", "", "checkout", "alpha", "zeta"})
	if !slices.Equal(got, []string{"alpha", "zeta"}) {
		t.Errorf("Uncatalogued = %v", got)
	}
	if got := c.Uncatalogued([]string{"checkout"}); got != nil {
		t.Errorf("Uncatalogued = %v, want nil", got)
	}
}
