package catalog

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Matcher selects alerts by their labels, Prometheus style: an alert
// matches when, for every label the matcher names, the regular expression
// matches the label's whole value (the expression is anchored). A label the
// alert lacks has the empty value, so job: ".*" also matches alerts without
// a job label. The zero Matcher matches nothing.
type Matcher struct {
	labels []labelMatcher // sorted by name
}

type labelMatcher struct {
	name string
	expr string
	re   *regexp.Regexp
}

// NewMatcher compiles a matcher from label names to regular expressions.
// It needs at least one label; names must be valid Prometheus label names.
func NewMatcher(exprs map[string]string) (Matcher, error) {
	if len(exprs) == 0 {
		return Matcher{}, errors.New("needs at least one label")
	}
	names := make([]string, 0, len(exprs))
	for name := range exprs {
		names = append(names, name)
	}
	slices.Sort(names)
	m := Matcher{labels: make([]labelMatcher, 0, len(names))}
	for _, name := range names {
		l, err := compileLabel(name, exprs[name])
		if err != nil {
			return Matcher{}, fmt.Errorf("label %s: %w", name, err)
		}
		m.labels = append(m.labels, l)
	}
	return m, nil
}

func compileLabel(name, expr string) (labelMatcher, error) {
	if !validLabelName(name) {
		return labelMatcher{}, fmt.Errorf("invalid label name %q", name)
	}
	// Compile the expression alone first so that errors quote what the
	// user wrote, not the anchored form.
	if _, err := regexp.Compile(expr); err != nil {
		return labelMatcher{}, fmt.Errorf("invalid regular expression: %w", err)
	}
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		return labelMatcher{}, fmt.Errorf("invalid regular expression: %w", err)
	}
	return labelMatcher{name: name, expr: expr, re: re}, nil
}

// Matches reports whether the labels match every label of the matcher.
func (m Matcher) Matches(labels map[string]string) bool {
	if len(m.labels) == 0 {
		return false
	}
	for _, l := range m.labels {
		if !l.re.MatchString(labels[l.name]) {
			return false
		}
	}
	return true
}

// Labels returns the matcher's label names and their expressions, as
// written in the catalog (unanchored).
func (m Matcher) Labels() map[string]string {
	out := make(map[string]string, len(m.labels))
	for _, l := range m.labels {
		out[l.name] = l.expr
	}
	return out
}

// String renders the matcher in PromQL selector syntax, e.g.
// {job=~"checkout-.*"}.
func (m Matcher) String() string {
	parts := make([]string, len(m.labels))
	for i, l := range m.labels {
		parts[i] = l.name + "=~" + strconv.Quote(l.expr)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// validLabelName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]*.
func validLabelName(s string) bool {
	return isIdent(s)
}
