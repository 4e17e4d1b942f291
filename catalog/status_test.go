package catalog

import (
	"slices"
	"strings"
	"testing"
)

func TestStatusPage(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(`services:
  - {name: web, system: shop}
  - {name: api, system: shop}
  - {name: db}
status_page:
  groups:
    - name: Online shop
      services: [web, api]
      show_titles: true
    - name: Data
      services: [db]
      show_labels: true
`), "catalog.yml")
	if err != nil {
		t.Fatal(err)
	}
	groups, ok := c.StatusPage()
	if !ok {
		t.Fatal("StatusPage: no section")
	}
	want := []StatusGroup{
		{Name: "Online shop", Services: []string{"web", "api"}, ShowTitles: true},
		{Name: "Data", Services: []string{"db"}, ShowLabels: true},
	}
	if !slices.EqualFunc(groups, want, func(a, b StatusGroup) bool {
		return a.Name == b.Name && slices.Equal(a.Services, b.Services) && a.ShowTitles == b.ShowTitles && a.ShowLabels == b.ShowLabels
	}) {
		t.Errorf("groups = %+v, want %+v", groups, want)
	}
	groups[0].Services[0] = "changed"
	if again, _ := c.StatusPage(); again[0].Services[0] != "web" {
		t.Error("StatusPage returns the catalog's own slice")
	}

	plain, err := Parse([]byte("services:\n  - {name: web, system: shop}\n"), "catalog.yml")
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := plain.StatusPage(); ok || g != nil {
		t.Errorf("without a section: %v, %v; want none", g, ok)
	}
	if _, ok := Empty(0).StatusPage(); ok {
		t.Error("the empty catalog has a status page section")
	}
}

func TestStatusPageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file string
		want       []string
	}{
		{"unknown and duplicate services", `services:
  - {name: web}
  - {name: api}
status_page:
  groups:
    - name: Shop
      services: [web, checkout, web]
`, []string{
			`catalog.yml:7: status_page.groups[0].services[1]: unknown service "checkout"`,
			`catalog.yml:7: status_page.groups[0].services[2]: duplicate service "web" in group "Shop"`,
		}},
		{"duplicate groups", `services:
  - {name: web}
  - {name: api}
status_page:
  groups:
    - name: Shop
      services: [web]
    - name: Shop
      services: [api]
`, []string{`catalog.yml:8: status_page.groups[1].name: duplicate group "Shop" (first defined at line 6)`}},
		{"a group without a name or services", `services:
  - {name: web}
status_page:
  groups:
    - services: [web]
    - name: Empty
`, []string{
			`catalog.yml:5: status_page.groups[0].name: a group needs a public name`,
			`catalog.yml:6: status_page.groups[1].services: a group needs at least one service`,
		}},
		{"no groups", `services:
  - {name: web}
status_page: {}
`, []string{`catalog.yml:3: status_page.groups: needs at least one group (leave status_page out to group services by their system)`}},
		{"unknown field", `services:
  - {name: web}
status_page:
  groups:
    - {name: Shop, services: [web], labels: true}
`, []string{`catalog.yml:5: status_page.groups[0].labels: unknown field (known fields: name, services, show_titles, show_labels)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.file), "catalog.yml")
			if err == nil {
				t.Fatal("no error")
			}
			if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
