package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// The types below are Grafana's classic dashboard JSON model (the one
// @grafana/schema describes as raw/dashboard/x and Grafana stores), written
// as plain Go structs so that encoding/json emits exactly the fields
// current Grafana writes, in a stable order. See README.md for why they
// are not github.com/grafana-tools/sdk's types.

// SchemaVersion is the dashboard schemaVersion the generated JSON follows:
// Grafana 12.x's (late 2026). Grafana migrates dashboards with a lower version when it
// loads them; ours need no migration.
const SchemaVersion = 42

// Dashboard is one Grafana dashboard.
type Dashboard struct {
	// ID is always null: IDs belong to one Grafana instance, UIDs identify
	// a dashboard everywhere.
	ID                   *int         `json:"id"`
	UID                  string       `json:"uid"`
	Title                string       `json:"title"`
	Description          string       `json:"description,omitempty"`
	Tags                 []string     `json:"tags"`
	Timezone             string       `json:"timezone"`
	Editable             bool         `json:"editable"`
	GraphTooltip         int          `json:"graphTooltip"`
	FiscalYearStartMonth int          `json:"fiscalYearStartMonth"`
	LiveNow              bool         `json:"liveNow"`
	Refresh              string       `json:"refresh,omitempty"`
	SchemaVersion        int          `json:"schemaVersion"`
	Time                 TimeRange    `json:"time"`
	Timepicker           Timepicker   `json:"timepicker"`
	Templating           Templating   `json:"templating"`
	Annotations          Annotations  `json:"annotations"`
	Links                []Link       `json:"links"`
	Panels               []PanelEntry `json:"panels"`
}

// PanelEntry is an element of a dashboard's panel list: a *Panel or a *Row.
type PanelEntry interface{ panelEntry() }

func (*Panel) panelEntry() {}
func (*Row) panelEntry()   {}

// TimeRange is a dashboard's default time range.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Timepicker configures the time picker.
type Timepicker struct {
	RefreshIntervals []string `json:"refresh_intervals,omitempty"`
}

// Templating holds the dashboard's variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is a dashboard (template) variable.
type Variable struct {
	Type        string           `json:"type"`
	Name        string           `json:"name"`
	Label       string           `json:"label,omitempty"`
	Description string           `json:"description,omitempty"`
	Hide        int              `json:"hide"`
	Datasource  *DataSourceRef   `json:"datasource,omitempty"`
	Query       any              `json:"query"`
	Current     *VariableOption  `json:"current,omitempty"`
	Options     []VariableOption `json:"options"`
	Multi       bool             `json:"multi"`
	IncludeAll  bool             `json:"includeAll"`
	AllValue    string           `json:"allValue,omitempty"`
	Refresh     int              `json:"refresh,omitempty"`
	Regex       string           `json:"regex,omitempty"`
	Sort        int              `json:"sort,omitempty"`
	SkipURLSync bool             `json:"skipUrlSync"`
}

// hideVariable is the Variable.Hide value that hides a variable.
const hideVariable = 2

// Variable.Refresh values.
const refreshOnLoad = 1

// Variable.Sort values.
const sortAlphabetical = 1

// VariableOption is one value of a variable. Text and Value are a string,
// or a []string for multi-value variables.
type VariableOption struct {
	Selected bool `json:"selected"`
	Text     any  `json:"text"`
	Value    any  `json:"value"`
}

// Annotations holds the dashboard's annotation queries.
type Annotations struct {
	List []Annotation `json:"list"`
}

// Annotation is an annotation query: Grafana's built-in one, or a query
// of the ClickHouse datasource (service dashboards mark changes with
// them; incidents are drawn by state-timeline panels instead).
type Annotation struct {
	BuiltIn    int           `json:"builtIn,omitempty"`
	Datasource DataSourceRef `json:"datasource"`
	Enable     bool          `json:"enable"`
	Hide       bool          `json:"hide"`
	IconColor  string        `json:"iconColor"`
	Name       string        `json:"name"`
	// Target is an *AnnotationTarget for the built-in annotations, or a
	// *ClickHouseQuery whose rows are the annotations (columns time,
	// title, text and tags, as Grafana maps them by name).
	Target any    `json:"target,omitempty"`
	Type   string `json:"type,omitempty"`
}

// AnnotationTarget is the query of Grafana's built-in annotations.
type AnnotationTarget struct {
	Limit    int      `json:"limit"`
	MatchAny bool     `json:"matchAny"`
	Tags     []string `json:"tags"`
	Type     string   `json:"type"`
}

// Link is a dashboard link: to other dashboards by tag, or to a URL.
type Link struct {
	AsDropdown  bool     `json:"asDropdown"`
	Icon        string   `json:"icon"`
	IncludeVars bool     `json:"includeVars"`
	KeepTime    bool     `json:"keepTime"`
	Tags        []string `json:"tags"`
	TargetBlank bool     `json:"targetBlank"`
	Title       string   `json:"title"`
	Tooltip     string   `json:"tooltip"`
	Type        string   `json:"type"`
	URL         string   `json:"url,omitempty"`
}

// DataSourceRef points at a datasource by plugin type and UID (here a
// datasource variable such as ${ds_clickhouse}).
type DataSourceRef struct {
	Type string `json:"type,omitempty"`
	UID  string `json:"uid,omitempty"`
}

// GridPos places a panel on the 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Row is a row panel: a full-width header that groups the panels below it.
type Row struct {
	Type      string   `json:"type"` // always "row"
	ID        int      `json:"id"`
	Title     string   `json:"title"`
	Collapsed bool     `json:"collapsed"`
	GridPos   GridPos  `json:"gridPos"`
	Panels    []*Panel `json:"panels"` // only for collapsed rows; always [] here
}

// Panel is a visualisation.
type Panel struct {
	ID               int               `json:"id"`
	Type             string            `json:"type"`
	Title            string            `json:"title"`
	Description      string            `json:"description,omitempty"`
	GridPos          GridPos           `json:"gridPos"`
	Datasource       *DataSourceRef    `json:"datasource,omitempty"`
	Targets          []Target          `json:"targets,omitempty"`
	FieldConfig      FieldConfigSource `json:"fieldConfig"`
	Options          map[string]any    `json:"options"`
	Transformations  []Transformation  `json:"transformations,omitempty"`
	Interval         string            `json:"interval,omitempty"`
	MaxDataPoints    int               `json:"maxDataPoints,omitempty"`
	TimeFrom         string            `json:"timeFrom,omitempty"`
	HideTimeOverride bool              `json:"hideTimeOverride,omitempty"`
	Repeat           string            `json:"repeat,omitempty"`
	RepeatDirection  string            `json:"repeatDirection,omitempty"`
	MaxPerRow        int               `json:"maxPerRow,omitempty"`
}

// Target is a panel query: *ClickHouseQuery or *PrometheusQuery.
type Target interface{ target() }

func (*ClickHouseQuery) target() {}
func (*PrometheusQuery) target() {}

// ClickHouse plugin identifiers and the query model of its version 4.
const (
	// ClickHousePluginID is the official Grafana ClickHouse datasource.
	ClickHousePluginID = "grafana-clickhouse-datasource"
	// clickHousePluginVersion is stored in every query: the plugin treats
	// queries without a pluginVersion ≥ 4.0.0 as version 3 ones and
	// migrates them.
	clickHousePluginVersion = "4.20.0"
	// Query formats (numbers in the plugin's model) and query types.
	formatTimeSeries    = 0
	formatTable         = 1
	queryTypeTimeSeries = "timeseries"
	queryTypeTable      = "table"
)

// ClickHouseQuery is a query of the Grafana ClickHouse plugin (version 4
// model): raw SQL with the plugin's macros.
type ClickHouseQuery struct {
	RefID         string         `json:"refId"`
	Datasource    *DataSourceRef `json:"datasource"`
	EditorType    string         `json:"editorType"`
	QueryType     string         `json:"queryType"`
	Format        int            `json:"format"`
	PluginVersion string         `json:"pluginVersion"`
	RawSQL        string         `json:"rawSql"`

	// columns are the result columns the panel expects, in order; tests run
	// the SQL against ClickHouse and compare.
	columns []string
}

// PrometheusQuery is a PromQL query of the Prometheus datasource.
type PrometheusQuery struct {
	RefID        string         `json:"refId"`
	Datasource   *DataSourceRef `json:"datasource"`
	EditorMode   string         `json:"editorMode"`
	Expr         string         `json:"expr"`
	LegendFormat string         `json:"legendFormat,omitempty"`
	Range        bool           `json:"range"`
	Instant      bool           `json:"instant"`
	Format       string         `json:"format,omitempty"`
}

// ClickHouseVariableQuery is the query of a ClickHouse query variable.
type ClickHouseVariableQuery struct {
	RefID      string `json:"refId"`
	EditorType string `json:"editorType"`
	QueryType  string `json:"queryType"` // "sql": the plugin's custom-SQL variable type
	RawSQL     string `json:"rawSql"`

	columns []string
}

// Transformation is a panel data transformation.
type Transformation struct {
	ID      string `json:"id"`
	Options any    `json:"options"`
}

// FieldConfigSource is a panel's field configuration: defaults and
// per-field overrides.
type FieldConfigSource struct {
	Defaults  FieldConfig `json:"defaults"`
	Overrides []Override  `json:"overrides"`
}

// FieldConfig is how fields are displayed.
type FieldConfig struct {
	Unit        string         `json:"unit,omitempty"`
	Decimals    *int           `json:"decimals,omitempty"`
	Min         *float64       `json:"min,omitempty"`
	Max         *float64       `json:"max,omitempty"`
	NoValue     string         `json:"noValue,omitempty"`
	DisplayName string         `json:"displayName,omitempty"`
	Color       *FieldColor    `json:"color,omitempty"`
	Thresholds  *Thresholds    `json:"thresholds,omitempty"`
	Mappings    []ValueMapping `json:"mappings,omitempty"`
	Links       []DataLink     `json:"links,omitempty"`
	Custom      map[string]any `json:"custom,omitempty"`
}

// FieldColor chooses how values are coloured.
type FieldColor struct {
	Mode       string `json:"mode"`
	FixedColor string `json:"fixedColor,omitempty"`
}

// Thresholds colour values by the steps they reach.
type Thresholds struct {
	Mode  string          `json:"mode"`
	Steps []ThresholdStep `json:"steps"`
}

// ThresholdStep is one threshold; the first has a nil (−∞) value.
type ThresholdStep struct {
	Color string   `json:"color"`
	Value *float64 `json:"value"`
}

// ValueMapping maps values to text and colour. Only "value" mappings are
// used: Options maps a value to its result.
type ValueMapping struct {
	Type    string                        `json:"type"`
	Options map[string]ValueMappingResult `json:"options"`
}

// ValueMappingResult is what a mapped value shows.
type ValueMappingResult struct {
	Text  string `json:"text,omitempty"`
	Color string `json:"color,omitempty"`
	Index int    `json:"index"`
}

// DataLink is a link on a field's values.
type DataLink struct {
	Title       string `json:"title"`
	URL         string `json:"url"`
	TargetBlank bool   `json:"targetBlank,omitempty"`
}

// Override changes the config of the fields a matcher selects.
type Override struct {
	Matcher    Matcher    `json:"matcher"`
	Properties []Property `json:"properties"`
}

// Matcher selects fields, e.g. {id: "byName", options: "service"}.
type Matcher struct {
	ID      string `json:"id"`
	Options any    `json:"options"`
}

// Property is one overridden field setting.
type Property struct {
	ID    string `json:"id"`
	Value any    `json:"value"`
}

// JSON encodes the dashboard as Grafana stores it: indented, with HTML
// characters (<, >, &, common in SQL) left as they are, and a final
// newline.
func (d *Dashboard) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("encode dashboard %s: %w", d.UID, err)
	}
	return buf.Bytes(), nil
}
