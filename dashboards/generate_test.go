package dashboards

import (
	"encoding/json"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ninesops/nines/catalog"
)

// TestDashboardStructure checks, for every dashboard of both catalogs,
// what the schema cannot: the ClickHouse plugin's query model, datasource
// references, variables defined before use, unique panel IDs, panels
// within the grid and not overlapping, only nines' metrics in PromQL.
func TestDashboardStructure(t *testing.T) {
	t.Parallel()
	metrics := []string{
		"nines_service_availability_ratio", "nines_service_own_availability_ratio", "nines_service_slo_target_ratio",
		"nines_service_error_budget_remaining_ratio", "nines_service_downtime_seconds", "nines_service_mttr_seconds",
		"nines_service_mtta_seconds", "nines_incidents_open", "nines_incidents_opened_total",
		"nines_webhook_requests_total", "nines_collector_up",
	}
	metricRe := regexp.MustCompile(`\bnines_[a-z_]+\b`)
	varRe := regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)
	for _, file := range []string{testCatalog, exampleCatalog} {
		for _, d := range generateFor(t, file, Options{}) {
			t.Run(d.UID, func(t *testing.T) {
				if d.ID != nil || d.SchemaVersion < 39 || !validUID(d.UID) || !strings.HasPrefix(d.Description, GeneratedMarker) {
					t.Errorf("dashboard header: id %v, schemaVersion %d, uid %q, description %q", d.ID, d.SchemaVersion, d.UID, d.Description)
				}
				defined := map[string]bool{}
				// Variables may use the ones defined before them.
				for _, v := range d.Templating.List {
					if q, ok := v.Query.(*ClickHouseVariableQuery); ok {
						checkVars(t, "variable "+v.Name, q.RawSQL, defined, varRe)
						if v.Datasource == nil || v.Datasource.Type != ClickHousePluginID {
							t.Errorf("variable %s: datasource %+v", v.Name, v.Datasource)
						}
					}
					defined[v.Name] = true
				}
				for _, l := range d.Links {
					checkVars(t, "link "+l.Title, l.URL, defined, varRe)
				}
				ids := map[int]bool{}
				var boxes []GridPos
				for _, e := range d.Panels {
					var id int
					var pos GridPos
					switch p := e.(type) {
					case *Row:
						id, pos = p.ID, p.GridPos
						checkVars(t, "row "+p.Title, p.Title, defined, varRe)
					case *Panel:
						id, pos = p.ID, p.GridPos
						checkPanel(t, p, defined, varRe, metricRe, metrics)
					}
					if ids[id] {
						t.Errorf("panel id %d used twice", id)
					}
					ids[id] = true
					if pos.X < 0 || pos.W <= 0 || pos.H <= 0 || pos.X+pos.W > gridWidth {
						t.Errorf("panel %d outside the grid: %+v", id, pos)
					}
					for _, b := range boxes {
						if pos.X < b.X+b.W && b.X < pos.X+pos.W && pos.Y < b.Y+b.H && b.Y < pos.Y+pos.H {
							t.Errorf("panel %d at %+v overlaps one at %+v", id, pos, b)
						}
					}
					boxes = append(boxes, pos)
				}
			})
		}
	}
}

func checkPanel(t *testing.T, p *Panel, defined map[string]bool, varRe, metricRe *regexp.Regexp, metrics []string) {
	t.Helper()
	checkVars(t, p.String()+" title", p.Title, defined, varRe)
	checkVars(t, p.String()+" timeFrom", p.TimeFrom, defined, varRe)
	if p.Repeat != "" && !defined[p.Repeat] {
		t.Errorf("%v repeats by undefined variable %s", p, p.Repeat)
	}
	if p.Type != "text" && len(p.Targets) == 0 {
		t.Errorf("%v has no query", p)
	}
	for _, tg := range p.Targets {
		switch q := tg.(type) {
		case *ClickHouseQuery:
			ok := q.EditorType == "sql" && q.PluginVersion >= "4" && q.Datasource.Type == ClickHousePluginID &&
				(q.QueryType == queryTypeTimeSeries && q.Format == formatTimeSeries || q.QueryType == queryTypeTable && q.Format == formatTable)
			if !ok || p.Datasource == nil || p.Datasource.Type != ClickHousePluginID {
				t.Errorf("%v: query not in the plugin's v4 model: %+v", p, q)
			}
			if q.QueryType == queryTypeTimeSeries && (len(q.columns) == 0 || q.columns[0] != "time") {
				t.Errorf("%v: time series without a time column first: %v", p, q.columns)
			}
			checkVars(t, p.String()+" SQL", q.RawSQL, defined, varRe)
		case *PrometheusQuery:
			if q.Datasource.Type != "prometheus" || p.Datasource == nil || p.Datasource.Type != "prometheus" {
				t.Errorf("%v: Prometheus query with datasource %+v", p, q.Datasource)
			}
			for _, m := range metricRe.FindAllString(q.Expr, -1) {
				if !slices.Contains(metrics, m) {
					t.Errorf("%v: %s is not one of nines' metrics", p, m)
				}
			}
			checkVars(t, p.String()+" PromQL", q.Expr, defined, varRe)
		}
	}
	data, err := json.Marshal(p.FieldConfig)
	if err != nil {
		t.Fatal(err)
	}
	checkVars(t, p.String()+" field config", string(data), defined, varRe)
}

// checkVars fails on variables that are neither defined nor Grafana's own
// ($__…).
func checkVars(t *testing.T, what, s string, defined map[string]bool, varRe *regexp.Regexp) {
	t.Helper()
	for _, m := range varRe.FindAllStringSubmatch(s, -1) {
		name := m[1] + m[2]
		if !strings.HasPrefix(name, "__") && !defined[name] {
			t.Errorf("%s uses undefined variable %s", what, m[0])
		}
	}
}

func TestDeriveUID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix, name, want string
	}{
		{serviceUIDPfx, "checkout", "nines-svc-checkout"},
		{serviceUIDPfx, "payments-api", "nines-svc-payments-api"},
		{squadUIDPrefix, "music_core", "nines-squad-music_core"},
		// Not valid in a UID: cleaned, and a hash keeps it distinct.
		{serviceUIDPfx, "batch.reports", "nines-svc-batch-reports-fa9f3cfe"},
		// Too long: truncated, with the hash.
		{serviceUIDPfx, "a-service-with-a-rather-long-name-indeed", "nines-svc-a-service-with-a-rath-25d00a3c"},
	}
	for _, tc := range tests {
		got := deriveUID(tc.prefix, tc.name)
		if got != tc.want || !validUID(got) {
			t.Errorf("deriveUID(%q, %q) = %q, want %q", tc.prefix, tc.name, got, tc.want)
		}
	}
	if deriveUID(serviceUIDPfx, "a.b") == deriveUID(serviceUIDPfx, "a-b") {
		t.Error("names that clean up alike share a UID")
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	a, err := Files(generateFor(t, exampleCatalog, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Files(generateFor(t, exampleCatalog, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("%d then %d dashboards", len(a), len(b))
	}
	for i := range a {
		if a[i].Name != b[i].Name || string(a[i].Data) != string(b[i].Data) {
			t.Errorf("%s differs between two runs", a[i].Name)
		}
	}
}

func TestGenerateOptionsAndCatalog(t *testing.T) {
	t.Parallel()
	cat, err := catalog.Load(testCatalog)
	if err != nil {
		t.Fatal(err)
	}
	bad := []Options{
		{ClickHouseUID: "has space"},
		{PrometheusUID: strings.Repeat("x", 41)},
		{NinesURL: "localhost:9095"},
		{NinesURL: "http://nines/$x"},
		{Weights: &Weights{Outage: 1, Degraded: 1.5}},
		{Weights: &Weights{Outage: -0.1}},
		{Weights: &Weights{Outage: 1, None: math.NaN()}},
		{Window: "1y"},
	}
	for _, o := range bad {
		if _, err := Generate(cat, withQueries(o)); err == nil {
			t.Errorf("Generate accepted options %+v", o)
		}
	}
	if _, err := Generate(nil, withQueries(Options{})); err == nil {
		t.Error("Generate accepted a nil catalog")
	}
	if _, err := Generate(cat, Options{}); err == nil {
		t.Error("Generate accepted options without Queries")
	}

	// An empty catalog still gets an overview, of the services seen in
	// incidents.
	ds, err := Generate(catalog.Empty(0.999), withQueries(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].UID != overviewUID {
		t.Errorf("empty catalog: %d dashboards", len(ds))
	}

	// Owners from Backstage that would break queries are refused.
	odd, err := catalog.Parse([]byte("services:\n  - name: x\n    owner: \"we$ird\"\n"), "odd.yml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(odd, withQueries(Options{})); err == nil || !strings.Contains(err.Error(), "we$ird") {
		t.Errorf("owner with $: err = %v", err)
	}
}
