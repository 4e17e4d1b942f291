// Package catalog owns nines' service catalog: which services exist, who
// owns them, their SLOs, what they depend on, when they are in maintenance,
// and how alerts map to them.
//
// A catalog is a strict YAML file (unknown fields are errors); see
// deploy/catalog/catalog.yml for an example. Load and Parse validate it and
// return an immutable *Catalog; Watcher keeps the current one and reloads it
// when its files change. Every problem is reported as
//
//	file:line: field: message
//
// and all problems of a file are reported at once.
//
// # Rules
//
//   - SLO targets are written in percent (0 < x < 100) and exposed as ratios.
//   - Names of services and squads match ^[a-z0-9][a-z0-9._-]*$ and are
//     unique.
//   - Dependencies name known services (from the file or Backstage), not
//     the service itself, and form no cycle.
//   - When squads are listed, an owner written in the catalog file must be
//     one of them. Owners that come from Backstage are not checked: they
//     are often groups or users nines has no channel for.
//   - Maintenance windows are one-off (start, end) or recurring (schedule
//     daily or weekly with days, at HH:MM, duration up to 7 days) in
//     timezone, defaults.timezone or UTC. One-off times without an offset
//     are read in that time zone too.
//   - A service's channel is its own, else its owner squad's.
//   - The optional status_page section lists the public status page's
//     groups: a unique public name, the catalogued services each holds
//     (each once per group), and whether incidents show their own titles
//     (show_titles) and labels (show_labels), both off by default.
//     Without the section the status page groups services by system.
//
// # Backstage
//
// The catalog may list Backstage catalog-info.yaml files or globs under
// backstage, relative to its own directory. Only kind Component entities
// are read (metadata.name, metadata.description, spec.owner, spec.system,
// spec.dependsOn and the nines.io/slo-target annotation); other kinds and
// unknown fields are ignored. Entity references lose their kind and
// namespace (group:default/payments becomes payments); dependsOn entries
// of other kinds than component are dropped. A service defined in both
// places takes the catalog file's fields and the ones it leaves empty from
// Backstage; Backstage-only components become services with the default
// SLO target.
//
// # Time zones
//
// The package loads time zones with time.LoadLocation. Programs that may
// run without a system time zone database should import time/tzdata in
// their main package.
package catalog
