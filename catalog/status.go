package catalog

import (
	"slices"
	"strconv"
	"strings"
)

// StatusGroup is a group of services on the public status page, as the
// catalog's status_page section declares it.
type StatusGroup struct {
	// Name is the group's public name, shown on the page; unique.
	Name string
	// Services are the services the group holds, in the order declared.
	Services []string
	// ShowTitles shows the incidents' own titles; otherwise an incident
	// appears as its public_title annotation, else as its impact and
	// service ("Outage of checkout").
	ShowTitles bool
	// ShowLabels shows the incidents' labels (never by default).
	ShowLabels bool
}

// fileStatusPage is the catalog's status_page section.
type fileStatusPage struct {
	Groups []fileStatusGroup `yaml:"groups"`
}

type fileStatusGroup struct {
	Name       string   `yaml:"name"`
	Services   []string `yaml:"services"`
	ShowTitles bool     `yaml:"show_titles"`
	ShowLabels bool     `yaml:"show_labels"`
}

// maxStatusName bounds a group's public name.
const maxStatusName = 100

// StatusPage returns the groups of the public status page in the order
// the catalog declares them, and whether the catalog has a status_page
// section at all. Without one, the status page groups services by their
// system.
func (c *Catalog) StatusPage() ([]StatusGroup, bool) {
	if c.status == nil {
		return nil, false
	}
	out := make([]StatusGroup, len(c.status))
	for i, g := range c.status {
		g.Services = slices.Clone(g.Services)
		out[i] = g
	}
	return out, true
}

// addStatusPage validates the status_page section against the services
// known once Backstage is merged.
func (b *builder) addStatusPage(c *Catalog, sp *fileStatusPage, drafts map[string]*draft) {
	if sp == nil {
		return
	}
	if len(sp.Groups) == 0 {
		b.errorf("status_page.groups", "needs at least one group (leave status_page out to group services by their system)")
		return
	}
	c.status = []StatusGroup{}
	first := map[string]string{} // group name -> its path
	for i, g := range sp.Groups {
		p := "status_page.groups[" + strconv.Itoa(i) + "]"
		name := strings.TrimSpace(g.Name)
		switch {
		case name == "":
			b.errorf(p+".name", "a group needs a public name")
		case len(name) > maxStatusName:
			b.errorf(p+".name", "at most %d bytes, got %d", maxStatusName, len(name))
		case first[name] != "":
			b.errorf(p+".name", "duplicate group %q (first defined at line %d)", name, b.ix.line(first[name]))
		default:
			first[name] = p + ".name"
		}
		if len(g.Services) == 0 {
			b.errorf(p+".services", "a group needs at least one service")
		}
		grp := StatusGroup{Name: name, ShowTitles: g.ShowTitles, ShowLabels: g.ShowLabels}
		for j, svc := range g.Services {
			sp := p + ".services[" + strconv.Itoa(j) + "]"
			switch {
			case drafts[svc] == nil:
				b.errorf(sp, "unknown service %q", svc)
			case slices.Contains(grp.Services, svc):
				b.errorf(sp, "duplicate service %q in group %q", svc, name)
			default:
				grp.Services = append(grp.Services, svc)
			}
		}
		c.status = append(c.status, grp)
	}
}
