package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/template"

	"github.com/prometheus/common/model"

	"github.com/ninesops/nines/catalog"
)

// addCheck declares `nines check config|catalog|rules FILE…`: files
// checked offline, like amtool check-config and promtool check. Every file
// is checked and reported, then the exit code says whether all were good:
// 0 when every file is good, 1 when any is not (each problem named by its
// line and YAML path), 2 when called wrongly.
func (c *cli) addCheck() {
	parent := c.app.Command("check", "Check files offline, like amtool check-config and promtool check.")
	for _, k := range []struct {
		kind, help string
		check      func(string) (string, error)
	}{
		{"config", "nines' configuration file (--config.file).", checkConfigFile},
		{"catalog", "a service catalog (--catalog.file), with the Backstage files it names.", checkCatalogFile},
		{"rules", "Prometheus rule files (deploy/prometheus/, nines rules generate).", checkRulesFile},
	} {
		cmd := parent.Command(k.kind, "Check "+k.help)
		var files []string
		cmd.Arg("file", "The files to check.").Required().StringsVar(&files)
		c.command(cmd, func(ctx context.Context) error { return checkFiles(ctx, k.kind, k.check, files, c.stdout) })
	}
}

func checkFiles(ctx context.Context, kind string, check func(string) (string, error), files []string, stdout io.Writer) error {
	failed := 0
	for _, file := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Checking %s\n", file)
		found, err := check(file)
		if err != nil {
			failed++
			fmt.Fprintln(stdout, "  FAILED:")
			for _, line := range strings.Split(err.Error(), "\n") {
				fmt.Fprintf(stdout, "    %s\n", line)
			}
			continue
		}
		fmt.Fprintf(stdout, "  SUCCESS: %s\n", found)
	}
	if failed > 0 {
		return fmt.Errorf("check %s: %d of %d files have problems", kind, failed, len(files))
	}
	return nil
}

func checkConfigFile(file string) (string, error) {
	if _, err := loadConfig(file); err != nil {
		return "", err
	}
	return "valid nines configuration", nil
}

func checkCatalogFile(file string) (string, error) {
	cat, err := catalog.Load(file)
	if err != nil {
		return "", err
	}
	if groups, ok := cat.StatusPage(); ok {
		return fmt.Sprintf("%d services, %d squads, %d status page groups found", cat.Len(), len(cat.Squads()), len(groups)), nil
	}
	return fmt.Sprintf("%d services, %d squads found", cat.Len(), len(cat.Squads())), nil
}

// ruleFile is a Prometheus rule file, as Prometheus 2 and 3 read it.
type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	Name        string            `yaml:"name"`
	Interval    string            `yaml:"interval"`
	QueryOffset string            `yaml:"query_offset"`
	Limit       int               `yaml:"limit"`
	Labels      map[string]string `yaml:"labels"`
	Rules       []ruleEntry       `yaml:"rules"`
}

type ruleEntry struct {
	Record        string            `yaml:"record"`
	Alert         string            `yaml:"alert"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for"`
	KeepFiringFor string            `yaml:"keep_firing_for"`
	Labels        map[string]string `yaml:"labels"`
	Annotations   map[string]string `yaml:"annotations"`
}

// checkRulesFile checks a rule file the way Prometheus loads one (rulefmt),
// short of parsing PromQL, which deploy/check leaves to promtool: fields,
// group names, one of record or alert, metric and label names valid under
// Prometheus 2's rules (and so 3's), durations, and label and annotation
// templates.
func checkRulesFile(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	doc, err := parseYAMLDoc(file, data)
	if err != nil {
		return "", err
	}
	var rf ruleFile
	if err := doc.decodeStrict(&rf); err != nil {
		return "", err
	}
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, doc.fieldError(path, format, args...)) }
	names := map[string]int{}
	rules := 0
	for gi, g := range rf.Groups {
		gp := fmt.Sprintf("groups[%d]", gi)
		switch prev, dup := names[g.Name]; {
		case g.Name == "":
			bad(gp+".name", "a group needs a name")
		case dup:
			bad(gp+".name", "%q is also the name of groups[%d]", g.Name, prev)
		default:
			names[g.Name] = gi
		}
		checkDuration(bad, gp+".interval", g.Interval)
		checkDuration(bad, gp+".query_offset", g.QueryOffset)
		if g.Limit < 0 {
			bad(gp+".limit", "must not be negative, got %d", g.Limit)
		}
		checkLabels(bad, gp+".labels", g.Labels, false)
		for ri, r := range g.Rules {
			rules++
			checkRule(bad, fmt.Sprintf("%s.rules[%d]", gp, ri), r)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d rules in %d groups found", rules, len(rf.Groups)), nil
}

type reportFunc func(path, format string, args ...any)

func checkRule(bad reportFunc, p string, r ruleEntry) {
	switch {
	case r.Record != "" && r.Alert != "":
		bad(p, "has both record and alert; want one")
	case r.Record == "" && r.Alert == "":
		bad(p, "has neither record nor alert; want one")
	case r.Record != "":
		if !model.LegacyValidation.IsValidMetricName(r.Record) {
			bad(p+".record", "%q is not a valid metric name", r.Record)
		}
		if r.For != "" || r.KeepFiringFor != "" {
			bad(p, "a recording rule has no for or keep_firing_for")
		}
		if len(r.Annotations) > 0 {
			bad(p+".annotations", "a recording rule has no annotations")
		}
	default:
		if !model.LabelValue(r.Alert).IsValid() {
			bad(p+".alert", "%q is not valid UTF-8", r.Alert)
		}
	}
	if strings.TrimSpace(r.Expr) == "" {
		bad(p+".expr", "an expression is required")
	}
	checkDuration(bad, p+".for", r.For)
	checkDuration(bad, p+".keep_firing_for", r.KeepFiringFor)
	checkLabels(bad, p+".labels", r.Labels, r.Alert != "")
	if r.Alert != "" {
		checkLabels(bad, p+".annotations", r.Annotations, true)
	}
}

func checkDuration(bad reportFunc, path, s string) {
	if s == "" {
		return
	}
	if _, err := model.ParseDuration(s); err != nil {
		bad(path, "%v", err)
	}
}

// checkLabels checks label names and, where Prometheus expands them
// (an alert's labels and annotations), their templates.
func checkLabels(bad reportFunc, path string, labels map[string]string, templated bool) {
	for name, v := range labels {
		if !model.LegacyValidation.IsValidLabelName(name) {
			bad(path+"."+name, "%q is not a valid label name", name)
		}
		if templated {
			if err := parseAlertTemplate(v); err != nil {
				bad(path+"."+name, "%v", err)
			}
		}
	}
}

// alertTemplateFuncs are the functions Prometheus offers alert templates;
// only their names matter here, as templates are parsed, not run.
func alertTemplateFuncs() template.FuncMap {
	m := template.FuncMap{}
	for _, name := range strings.Fields(`query first label value strvalue args reReplaceAll safeHtml
		match title toUpper toLower graphLink tableLink sortByLabel humanize humanize1024
		humanizeDuration humanizePercentage humanizeTimestamp toTime toDuration now pathPrefix
		externalURL parseDuration urlQueryEscape stripPort stripDomain`) {
		m[name] = func(...any) any { return nil }
	}
	return m
}

// parseAlertTemplate parses a label or annotation value as Prometheus does,
// with the variables it defines ($labels, $value, …).
func parseAlertTemplate(s string) error {
	const defs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
	_, err := template.New("").Option("missingkey=zero").Funcs(alertTemplateFuncs()).Parse(defs + s)
	return err
}
