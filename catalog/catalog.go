package catalog

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// DefaultSLOTarget is the SLO target, as a ratio, of services when the
// catalog sets none: 99.9%.
const DefaultSLOTarget = 0.999

// maxFileSize bounds what Load reads from one file: catalogs are small, and
// a path pointing at a device or a huge file should fail, not hang.
const maxFileSize = 16 << 20

// Service is one catalogued service.
type Service struct {
	Name        string
	Owner       string  // the owning squad (or Backstage group or user)
	Tier        int     // 0 when not set; 1 is the most critical by convention
	SLOTarget   float64 // ratio, 0 < SLOTarget < 1
	Channel     string  // chat channel: the service's own, else its squad's, else ""
	System      string
	Description string
	// Dependencies are the services this one calls, as declared.
	Dependencies []string
	DashboardURL string
	RunbookURL   string
	Maintenance  []Window
	// Match maps alerts without a service label to this service: an alert
	// belongs to the service when any one matcher matches its labels.
	Match []Matcher
}

func (s Service) clone() Service {
	s.Dependencies = slices.Clone(s.Dependencies)
	s.Match = slices.Clone(s.Match)
	s.Maintenance = slices.Clone(s.Maintenance)
	for i := range s.Maintenance {
		s.Maintenance[i].Days = slices.Clone(s.Maintenance[i].Days)
	}
	return s
}

// Squad is a team that owns services, with its chat channel.
type Squad struct {
	Name    string
	Channel string
}

// Catalog is a validated service catalog. It is immutable: methods return
// copies and are safe for concurrent use. A nil *Catalog is not valid; use
// Empty for "no catalog".
type Catalog struct {
	services   map[string]*Service
	names      []string // sorted
	matchOrder []string // services with matchers, in declaration order
	squads     map[string]Squad
	squadNames []string // sorted
	defaultSLO float64
	loc        *time.Location
	// backstage lists the Backstage files and globs the catalog read,
	// resolved against the catalog file's directory, for Watcher.
	backstage []string
	// status holds the status_page section's groups; nil without one.
	status []StatusGroup
}

// Empty returns a catalog without services or squads: every service is
// uncatalogued and has the default SLO target defaultSLO, a ratio (a value
// outside (0, 1) means DefaultSLOTarget). Its location is UTC.
func Empty(defaultSLO float64) *Catalog {
	if !(defaultSLO > 0 && defaultSLO < 1) {
		defaultSLO = DefaultSLOTarget
	}
	return &Catalog{
		services:   map[string]*Service{},
		squads:     map[string]Squad{},
		defaultSLO: defaultSLO,
		loc:        time.UTC,
	}
}

// Load reads, parses and validates the catalog file at path, together with
// the Backstage files it references (relative to its directory). An empty
// path means no catalog: Load returns Empty(DefaultSLOTarget).
func Load(path string) (*Catalog, error) {
	if path == "" {
		return Empty(DefaultSLOTarget), nil
	}
	return load(path, osFS{})
}

func load(path string, fsys fileSystem) (*Catalog, error) {
	data, err := fsys.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	return parse(data, path, fsys)
}

// blank reports whether a YAML file holds nothing but blanks, comments and
// document markers.
func blank(data []byte) bool {
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") && line != "---" && line != "..." {
			return false
		}
	}
	return true
}

// Parse parses and validates a catalog. name is the file's path: errors
// name it, and Backstage files the catalog references are read relative to
// its directory. Validation errors are *FieldError values joined with
// errors.Join, one per problem.
func Parse(data []byte, name string) (*Catalog, error) {
	return parse(data, name, osFS{})
}

func parse(data []byte, name string, fsys fileSystem) (*Catalog, error) {
	if blank(data) {
		// What a file being rewritten looks like mid-write, or a
		// truncated one: never a catalog. An empty catalog says so.
		return nil, fmt.Errorf("%s: the catalog is empty or holds only comments; to mean no services, write `services: []`", name)
	}
	var cfg fileConfig
	ix, errs := decodeYAML(name, data, &cfg, true)
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	b := &builder{file: name, ix: ix, fs: fsys}
	c := b.build(&cfg)
	if len(b.errs) > 0 {
		return nil, joinErrors(b.errs)
	}
	return c, nil
}

// Services returns every service, sorted by name.
func (c *Catalog) Services() []Service {
	out := make([]Service, len(c.names))
	for i, name := range c.names {
		out[i] = c.services[name].clone()
	}
	return out
}

// Service returns the named service.
func (c *Catalog) Service(name string) (Service, bool) {
	s, ok := c.services[name]
	if !ok {
		return Service{}, false
	}
	return s.clone(), true
}

// Len returns the number of services.
func (c *Catalog) Len() int { return len(c.names) }

// Squads returns every squad, sorted by name.
func (c *Catalog) Squads() []Squad {
	out := make([]Squad, len(c.squadNames))
	for i, name := range c.squadNames {
		out[i] = c.squads[name]
	}
	return out
}

// Squad returns the named squad.
func (c *Catalog) Squad(name string) (Squad, bool) {
	s, ok := c.squads[name]
	return s, ok
}

// Channel returns the chat channel for a service: its own, else its owning
// squad's, else "" (also for uncatalogued services).
func (c *Catalog) Channel(service string) string {
	if s, ok := c.services[service]; ok {
		return s.Channel
	}
	return ""
}

// ServiceFor returns the first service, in catalog order, one of whose
// matchers matches the labels. It does not look at the service label:
// callers use it when that label is absent.
func (c *Catalog) ServiceFor(labels map[string]string) (string, bool) {
	for _, name := range c.matchOrder {
		for _, m := range c.services[name].Match {
			if m.Matches(labels) {
				return name, true
			}
		}
	}
	return "", false
}

// Dependencies returns the services the named one depends on directly,
// sorted; nil for unknown services.
func (c *Catalog) Dependencies(name string) []string {
	s, ok := c.services[name]
	if !ok || len(s.Dependencies) == 0 {
		return nil
	}
	deps := slices.Clone(s.Dependencies)
	slices.Sort(deps)
	return deps
}

// Upstream returns every service the named one depends on, directly or
// transitively, sorted by name, without duplicates and never name itself.
func (c *Catalog) Upstream(name string) []string {
	out := c.UpstreamNearestFirst(name)
	slices.Sort(out)
	return out
}

// UpstreamNearestFirst returns the same services as Upstream, nearest
// first: name's direct dependencies (by name), then theirs, and so on
// (breadth first). Incidents link to the nearest upstream outage, and
// suspects rank nearer changes first.
func (c *Catalog) UpstreamNearestFirst(name string) []string {
	return walk(name, c.Dependencies)
}

// Downstream returns every catalogued service that depends on the named
// one, directly or transitively, sorted by name, without duplicates and
// never name itself.
func (c *Catalog) Downstream(name string) []string {
	dependents := map[string][]string{}
	for n, s := range c.services {
		for _, dep := range s.Dependencies {
			dependents[dep] = append(dependents[dep], n)
		}
	}
	out := walk(name, func(s string) []string { return dependents[s] })
	slices.Sort(out)
	return out
}

// Owner returns the named service's owner (squad), or "" when the
// service is not catalogued or has none.
func (c *Catalog) Owner(name string) string {
	if s, ok := c.services[name]; ok {
		return s.Owner
	}
	return ""
}

// walk visits the graph that next describes breadth first from name,
// returning each service reached once, in the order reached, without
// name itself. Validation rejects cycles, but the walk is cycle-safe
// anyway.
func walk(name string, next func(string) []string) []string {
	seen := map[string]bool{name: true}
	var out []string
	for queue := []string{name}; len(queue) > 0; queue = queue[1:] {
		for _, s := range next(queue[0]) {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
				queue = append(queue, s)
			}
		}
	}
	return out
}

// DefaultSLO returns the SLO target, as a ratio, of services the catalog
// gives none and of uncatalogued services.
func (c *Catalog) DefaultSLO() float64 { return c.defaultSLO }

// SLOTarget returns the named service's SLO target as a ratio, or the
// default for unknown services.
func (c *Catalog) SLOTarget(name string) float64 {
	if s, ok := c.services[name]; ok {
		return s.SLOTarget
	}
	return c.defaultSLO
}

// Location returns the catalog's time zone (defaults.timezone, else UTC),
// the one calendar periods such as "this month" are meant in.
func (c *Catalog) Location() *time.Location { return c.loc }

// Maintenance returns the named service's maintenance intervals that
// overlap [from, to): clamped to it, overlapping or touching ones merged,
// sorted, in UTC. Recurring windows are expanded in their own time zone
// (see Window). Unknown services have none.
func (c *Catalog) Maintenance(name string, from, to time.Time) []Interval {
	s, ok := c.services[name]
	if !ok {
		return nil
	}
	var all []Interval
	for _, w := range s.Maintenance {
		all = append(all, w.Intervals(from, to)...)
	}
	return mergeIntervals(all)
}

// Uncatalogued returns the names in seen that the catalog does not know,
// sorted and without duplicates or empty names.
func (c *Catalog) Uncatalogued(seen []string) []string {
	var out []string
	for _, name := range seen {
		if _, ok := c.services[name]; !ok && name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// fileSystem is what loading needs from the outside world. Tests and the
// fuzzer use an in-memory one.
type fileSystem interface {
	ReadFile(name string) ([]byte, error)
	Glob(pattern string) ([]string, error)
}

// osFS reads regular files from the operating system, at most maxFileSize
// bytes each.
type osFS struct{}

func (osFS) ReadFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxFileSize)
	}
	return data, nil
}

func (osFS) Glob(pattern string) ([]string, error) {
	return filepath.Glob(pattern)
}
