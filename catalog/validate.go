package catalog

import (
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// fileConfig is the catalog file. Field names are the YAML keys; every
// optional field has a usable zero value.
type fileConfig struct {
	Defaults  fileDefaults  `yaml:"defaults"`
	Squads    []fileSquad   `yaml:"squads"`
	Services  []fileService `yaml:"services"`
	Backstage []string      `yaml:"backstage"`
	// StatusPage is nil when the section is absent.
	StatusPage *fileStatusPage `yaml:"status_page"`
}

type fileDefaults struct {
	SLOTarget *float64 `yaml:"slo_target"` // percent
	Timezone  string   `yaml:"timezone"`
}

type fileSquad struct {
	Name    string `yaml:"name"`
	Channel string `yaml:"channel"`
}

type fileService struct {
	Name         string              `yaml:"name"`
	Owner        string              `yaml:"owner"`
	Tier         int                 `yaml:"tier"`
	SLOTarget    *float64            `yaml:"slo_target"` // percent
	Channel      string              `yaml:"channel"`
	System       string              `yaml:"system"`
	Description  string              `yaml:"description"`
	Dependencies []string            `yaml:"dependencies"` // nil when absent, empty when []
	DashboardURL string              `yaml:"dashboard_url"`
	RunbookURL   string              `yaml:"runbook_url"`
	Match        []map[string]string `yaml:"match"`
	Maintenance  []fileWindow        `yaml:"maintenance"`
}

// fileWindow is a maintenance window: start and end for a one-off window,
// schedule, days, at and duration for a recurring one. Times are strings,
// parsed here, so that times without an offset can be read in the
// window's time zone and errors can say what was expected.
type fileWindow struct {
	Start    string   `yaml:"start"`
	End      string   `yaml:"end"`
	Reason   string   `yaml:"reason"`
	Schedule string   `yaml:"schedule"`
	Days     []string `yaml:"days"`
	At       string   `yaml:"at"`
	Duration string   `yaml:"duration"`
	Timezone string   `yaml:"timezone"`
}

// loc is where a value came from: a field of a catalog or Backstage file.
type loc struct {
	ix   *posIndex
	path string
}

func (l loc) errorf(format string, args ...any) *FieldError {
	return l.ix.errorAt(l.path, format, args...)
}

// draft is a service being assembled from the catalog file and Backstage.
type draft struct {
	svc     Service
	nameAt  loc
	slo     *float64 // percent
	hasDeps bool     // dependencies were given, possibly as []
	depAt   []loc    // where each of svc.Dependencies came from
}

// builder validates a decoded catalog file, merges Backstage into it, and
// builds the Catalog. It collects every problem rather than stopping at the
// first, so that one run shows everything to fix.
type builder struct {
	file string
	ix   *posIndex
	fs   fileSystem
	errs []*FieldError
}

func (b *builder) errorf(path, format string, args ...any) {
	b.errs = append(b.errs, b.ix.errorAt(path, format, args...))
}

// build validates cfg and returns the catalog; it is only usable when
// b.errs is empty afterwards.
func (b *builder) build(cfg *fileConfig) *Catalog {
	c := &Catalog{
		services:   map[string]*Service{},
		squads:     map[string]Squad{},
		defaultSLO: DefaultSLOTarget,
		loc:        time.UTC,
	}
	if p := cfg.Defaults.SLOTarget; p != nil {
		if err := checkPercent(*p); err != nil {
			b.errorf("defaults.slo_target", "%v", err)
		} else {
			c.defaultSLO = ratio(*p)
		}
	}
	if tz := cfg.Defaults.Timezone; tz != "" {
		l, err := loadLocation(tz)
		if err != nil {
			b.errorf("defaults.timezone", "%v", err)
		} else {
			c.loc = l
		}
	}
	b.addSquads(c, cfg.Squads)
	drafts, order := b.addServices(c, cfg)
	b.addBackstage(c, cfg.Backstage, drafts)
	b.checkGraph(drafts)
	b.addStatusPage(c, cfg.StatusPage, drafts)

	for name, d := range drafts {
		s := d.svc
		s.SLOTarget = c.defaultSLO
		if d.slo != nil {
			s.SLOTarget = ratio(*d.slo)
		}
		if s.Channel == "" {
			s.Channel = c.squads[s.Owner].Channel
		}
		c.services[name] = &s
		c.names = append(c.names, name)
	}
	slices.Sort(c.names)
	for _, name := range order {
		if len(c.services[name].Match) > 0 {
			c.matchOrder = append(c.matchOrder, name)
		}
	}
	return c
}

func (b *builder) addSquads(c *Catalog, squads []fileSquad) {
	for i, sq := range squads {
		p := "squads[" + strconv.Itoa(i) + "]"
		if msg := checkName(sq.Name); msg != "" {
			b.errorf(p+".name", "%s", msg)
			continue
		}
		if _, dup := c.squads[sq.Name]; dup {
			b.errorf(p+".name", "duplicate squad %q", sq.Name)
			continue
		}
		c.squads[sq.Name] = Squad{Name: sq.Name, Channel: sq.Channel}
		c.squadNames = append(c.squadNames, sq.Name)
	}
	slices.Sort(c.squadNames)
}

// addServices validates the file's services and returns them as drafts,
// with their names in declaration order.
func (b *builder) addServices(c *Catalog, cfg *fileConfig) (map[string]*draft, []string) {
	drafts := map[string]*draft{}
	var order []string
	for i, in := range cfg.Services {
		p := "services[" + strconv.Itoa(i) + "]"
		d := &draft{nameAt: loc{b.ix, p + ".name"}, slo: in.SLOTarget}
		d.svc = Service{
			Name:         in.Name,
			Owner:        in.Owner,
			Tier:         in.Tier,
			Channel:      in.Channel,
			System:       in.System,
			Description:  in.Description,
			DashboardURL: in.DashboardURL,
			RunbookURL:   in.RunbookURL,
		}
		ok := true
		if msg := checkName(in.Name); msg != "" {
			b.errorf(p+".name", "%s", msg)
			ok = false
		} else if first, dup := drafts[in.Name]; dup {
			b.errorf(p+".name", "duplicate service %q (first defined at line %d)", in.Name, b.ix.line(first.nameAt.path))
			ok = false
		}
		if in.Owner != "" && len(cfg.Squads) > 0 {
			if _, known := c.squads[in.Owner]; !known {
				b.errorf(p+".owner", "unknown squad %q (squads: %s)", in.Owner, strings.Join(c.squadNames, ", "))
			}
		}
		if in.Tier < 0 {
			b.errorf(p+".tier", "must not be negative, got %d", in.Tier)
		}
		if in.SLOTarget != nil {
			if err := checkPercent(*in.SLOTarget); err != nil {
				b.errorf(p+".slo_target", "%v", err)
			}
		}
		b.checkURL(p+".dashboard_url", in.DashboardURL)
		b.checkURL(p+".runbook_url", in.RunbookURL)
		if in.Dependencies != nil {
			d.hasDeps = true
			d.svc.Dependencies = []string{}
		}
		for j, dep := range in.Dependencies {
			dp := p + ".dependencies[" + strconv.Itoa(j) + "]"
			switch {
			case checkName(dep) != "":
				b.errorf(dp, "%s", checkName(dep))
			case slices.Contains(d.svc.Dependencies, dep):
				b.errorf(dp, "duplicate dependency %q", dep)
			default:
				d.svc.Dependencies = append(d.svc.Dependencies, dep)
				d.depAt = append(d.depAt, loc{b.ix, dp})
			}
		}
		for j, m := range in.Match {
			if mt, ok := b.matcher(p+".match["+strconv.Itoa(j)+"]", m); ok {
				d.svc.Match = append(d.svc.Match, mt)
			}
		}
		for j, fw := range in.Maintenance {
			if w, ok := b.window(p+".maintenance["+strconv.Itoa(j)+"]", fw, c.loc); ok {
				d.svc.Maintenance = append(d.svc.Maintenance, w)
			}
		}
		if ok {
			drafts[in.Name] = d
			order = append(order, in.Name)
		}
	}
	return drafts, order
}

func (b *builder) matcher(p string, exprs map[string]string) (Matcher, bool) {
	if len(exprs) == 0 {
		b.errorf(p, "needs at least one label")
		return Matcher{}, false
	}
	names := make([]string, 0, len(exprs))
	for name := range exprs {
		names = append(names, name)
	}
	slices.Sort(names)
	var m Matcher
	ok := true
	for _, name := range names {
		l, err := compileLabel(name, exprs[name])
		if err != nil {
			b.errorf(joinKey(p, name), "%v", err)
			ok = false
			continue
		}
		m.labels = append(m.labels, l)
	}
	return m, ok
}

func (b *builder) window(p string, fw fileWindow, defaultLoc *time.Location) (Window, bool) {
	before := len(b.errs)
	l := defaultLoc
	if fw.Timezone != "" {
		var err error
		if l, err = loadLocation(fw.Timezone); err != nil {
			b.errorf(p+".timezone", "%v", err)
			return Window{}, false
		}
	}
	w := Window{Reason: fw.Reason}
	oneOff := fw.Start != "" || fw.End != ""
	recurring := fw.Schedule != "" || len(fw.Days) > 0 || fw.At != "" || fw.Duration != ""
	switch {
	case oneOff && recurring:
		b.errorf(p, "want either start and end (one-off) or schedule, at and duration (recurring), not both")
	case oneOff:
		w.Start = b.time(p+".start", fw.Start, l)
		w.End = b.time(p+".end", fw.End, l)
		if len(b.errs) == before && !w.End.After(w.Start) {
			b.errorf(p+".end", "must be after start (%s), got %s", fw.Start, fw.End)
		}
	case recurring:
		w.Location = l
		w.Schedule = Schedule(fw.Schedule)
		switch w.Schedule {
		case ScheduleDaily:
			if len(fw.Days) > 0 {
				b.errorf(p+".days", "only allowed with schedule weekly")
			}
		case ScheduleWeekly:
			if len(fw.Days) == 0 {
				b.errorf(p+".days", "required with schedule weekly")
			}
		case ScheduleOnce:
			b.errorf(p+".schedule", "required for a recurring window: daily or weekly")
		default:
			b.errorf(p+".schedule", "want daily or weekly, got %q", fw.Schedule)
		}
		for k, s := range fw.Days {
			day, ok := parseWeekday(s)
			if !ok {
				b.errorf(p+".days["+strconv.Itoa(k)+"]", "want a day such as mon or monday, got %q", s)
			} else if !slices.Contains(w.Days, day) {
				w.Days = append(w.Days, day)
			}
		}
		if fw.At == "" {
			b.errorf(p+".at", "required for a recurring window")
		} else if h, m, err := parseClock(fw.At); err != nil {
			b.errorf(p+".at", "%v", err)
		} else {
			w.Hour, w.Minute = h, m
		}
		w.Duration = b.duration(p+".duration", fw.Duration)
	default:
		b.errorf(p, "empty window: want start and end, or schedule, at and duration")
	}
	return w, len(b.errs) == before
}

func (b *builder) time(p, s string, l *time.Location) time.Time {
	if s == "" {
		b.errorf(p, "required for a one-off window")
		return time.Time{}
	}
	t, err := parseTime(s, l)
	if err != nil {
		b.errorf(p, "%v", err)
	}
	return t
}

func (b *builder) duration(p, s string) time.Duration {
	if s == "" {
		b.errorf(p, "required for a recurring window")
		return 0
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		b.errorf(p, "want a duration such as 1h30m, got %q", s)
	case d <= 0:
		b.errorf(p, "must be positive, got %s", s)
	case d > MaxWindowDuration:
		b.errorf(p, "must be at most %s (7 days), got %s", MaxWindowDuration, s)
	}
	return d
}

func (b *builder) checkURL(p, s string) {
	if s == "" {
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		b.errorf(p, "want an absolute http or https URL, got %q", s)
	}
}

// addBackstage reads the Backstage files the catalog references and merges
// their components into drafts: for a service in both, the catalog file's
// fields win and Backstage fills the ones it leaves empty; components only
// in Backstage become services.
func (b *builder) addBackstage(c *Catalog, patterns []string, drafts map[string]*draft) {
	dir := filepath.Dir(b.file)
	read := map[string]bool{}
	defined := map[string]loc{} // component name → where Backstage defines it
	for i, pattern := range patterns {
		p := "backstage[" + strconv.Itoa(i) + "]"
		if strings.TrimSpace(pattern) == "" {
			b.errorf(p, "empty path")
			continue
		}
		full := pattern
		if !filepath.IsAbs(full) {
			full = filepath.Join(dir, full)
		}
		c.backstage = append(c.backstage, full)
		files := []string{full}
		if strings.ContainsAny(full, `*?[\`) {
			var err error
			if files, err = b.fs.Glob(full); err != nil {
				b.errorf(p, "invalid pattern %q: %v", pattern, err)
				continue
			}
		}
		for _, f := range files {
			if read[f] {
				continue
			}
			read[f] = true
			data, err := b.fs.ReadFile(f)
			if err != nil {
				b.errorf(p, "read backstage file: %v", err)
				continue
			}
			comps, errs := parseBackstage(f, data)
			b.errs = append(b.errs, errs...)
			for _, comp := range comps {
				at := loc{comp.ix, bsNamePath}
				if first, dup := defined[comp.name]; dup {
					b.errs = append(b.errs, at.errorf("component %q already defined at %s:%d",
						comp.name, first.ix.file, first.ix.line(first.path)))
					continue
				}
				defined[comp.name] = at
				mergeComponent(drafts, comp)
			}
		}
	}
}

func mergeComponent(drafts map[string]*draft, comp component) {
	d, ok := drafts[comp.name]
	if !ok {
		d = &draft{svc: Service{Name: comp.name}, nameAt: loc{comp.ix, bsNamePath}}
		drafts[comp.name] = d
	}
	if d.svc.Owner == "" {
		d.svc.Owner = comp.owner
	}
	if d.svc.System == "" {
		d.svc.System = comp.system
	}
	if d.svc.Description == "" {
		d.svc.Description = comp.description
	}
	if d.slo == nil {
		d.slo = comp.slo
	}
	if !d.hasDeps && comp.deps != nil {
		d.hasDeps = true
		d.svc.Dependencies = []string{}
		for j, dep := range comp.deps {
			if !slices.Contains(d.svc.Dependencies, dep) {
				d.svc.Dependencies = append(d.svc.Dependencies, dep)
				d.depAt = append(d.depAt, loc{comp.ix, comp.depPaths[j]})
			}
		}
	}
}

// checkGraph checks that dependencies name known services other than the
// dependent itself, and that there are no dependency cycles.
func (b *builder) checkGraph(drafts map[string]*draft) {
	names := make([]string, 0, len(drafts))
	for name := range drafts {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		d := drafts[name]
		for j, dep := range d.svc.Dependencies {
			if dep == name {
				b.errs = append(b.errs, d.depAt[j].errorf("service %q depends on itself", name))
			} else if _, ok := drafts[dep]; !ok {
				b.errs = append(b.errs, d.depAt[j].errorf("unknown service %q", dep))
			}
		}
	}

	// Depth-first search; an edge to a service still on the stack closes a
	// cycle. Each cycle is reported once, starting at its smallest name.
	const (
		unvisited = iota
		onStack
		done
	)
	state := map[string]int{}
	var stack []string
	reported := map[string]bool{}
	var visit func(name string)
	visit = func(name string) {
		state[name] = onStack
		stack = append(stack, name)
		for _, dep := range drafts[name].svc.Dependencies {
			if _, ok := drafts[dep]; !ok || dep == name {
				continue
			}
			switch state[dep] {
			case unvisited:
				visit(dep)
			case onStack:
				cycle := slices.Clone(stack[slices.Index(stack, dep):])
				start := slices.Index(cycle, slices.Min(cycle))
				cycle = append(cycle[start:], cycle[:start]...)
				key := strings.Join(cycle, " -> ")
				if reported[key] {
					continue
				}
				reported[key] = true
				first := drafts[cycle[0]]
				at := first.depAt[slices.Index(first.svc.Dependencies, cycle[1%len(cycle)])]
				b.errs = append(b.errs, at.errorf("dependency cycle: %s -> %s", key, cycle[0]))
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
	}
	for _, name := range names {
		if state[name] == unvisited {
			visit(name)
		}
	}
}

// checkName returns what is wrong with a service or squad name, or "".
func checkName(s string) string {
	if s == "" {
		return "required"
	}
	if !validName(s) {
		return fmt.Sprintf("invalid name %q: want lowercase letters, digits, '.', '_' and '-', starting with a letter or digit", s)
	}
	return ""
}

// validName reports whether s matches ^[a-z0-9][a-z0-9._-]*$.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case (r == '.' || r == '_' || r == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ratio converts a percentage to a ratio, rounded to 12 decimal places so
// that 99.9 becomes exactly the float64 nearest 0.999.
func ratio(percent float64) float64 {
	return math.Round(percent*1e10) / 1e12
}

// checkPercent checks an SLO target in percent. The bounds are checked on
// the ratio nines uses, so 99.9999999999999 (which rounds to 100%) fails.
func checkPercent(p float64) error {
	if r := ratio(p); !(r > 0 && r < 1) {
		return fmt.Errorf("must be between 0 and 100 (exclusive), got %v", p)
	}
	return nil
}

// loadLocation loads an IANA time zone. "Local" is refused: it would make
// the catalog mean different things on different machines.
func loadLocation(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, fmt.Errorf("want an IANA time zone name such as Europe/Stockholm, not Local")
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	return l, nil
}
