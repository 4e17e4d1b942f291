package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yamlDoc is one YAML file parsed into nodes, so that problems found while
// decoding or validating it are reported as FILE:LINE: yaml.path: problem,
// the way people read the file, not the way Go reads it.
type yamlDoc struct {
	file   string
	data   []byte
	lines  map[int]string // line → path of the deepest key or item starting on it
	starts map[string]int // path → its line
}

// parseYAMLDoc parses data (named file in errors) into nodes. A syntax
// error is reported with its line.
func parseYAMLDoc(file string, data []byte) (*yamlDoc, error) {
	d := &yamlDoc{file: file, data: data, lines: map[int]string{}, starts: map[string]int{}}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, d.syntaxError(err)
	}
	d.index(&root, "")
	return d, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func (d *yamlDoc) syntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s:%s: %s", d.file, m[1], m[2])
	}
	return fmt.Errorf("%s: %s", d.file, msg)
}

func (d *yamlDoc) index(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.AliasNode:
		for _, c := range n.Content {
			d.index(c, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			d.at(k.Line, p)
			d.index(v, p)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			d.at(c.Line, p)
			d.index(c, p)
		}
	}
}

// at records that path starts on line; a deeper path on the same line
// (`- name: x` is both the item and its first key) wins.
func (d *yamlDoc) at(line int, path string) {
	if _, ok := d.starts[path]; !ok {
		d.starts[path] = line
	}
	d.lines[line] = path
}

// fieldError reports a problem with the field at path.
func (d *yamlDoc) fieldError(path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	// A missing field is reported on the line of the nearest ancestor.
	for p := path; p != ""; {
		if line, ok := d.starts[p]; ok {
			return fmt.Errorf("%s:%d: %s: %s", d.file, line, path, msg)
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return fmt.Errorf("%s: %s: %s", d.file, path, msg)
}

var (
	yamlUnknownField = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	yamlCannot       = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (\\S+)$")
)

// decodeStrict decodes the document into out; unknown fields are errors,
// each named by its YAML path, with the nearest known field suggested.
func (d *yamlDoc) decodeStrict(out any) error {
	dec := yaml.NewDecoder(bytes.NewReader(d.data))
	dec.KnownFields(true)
	err := dec.Decode(out)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return d.syntaxError(err)
	}
	errs := make([]error, 0, len(te.Errors))
	for _, e := range te.Errors {
		m := yamlLine.FindStringSubmatch(e)
		if m == nil {
			errs = append(errs, fmt.Errorf("%s: %s", d.file, e))
			continue
		}
		line, _ := strconv.Atoi(m[1])
		path, msg := d.lines[line], m[2]
		if u := yamlUnknownField.FindStringSubmatch(msg); u != nil {
			msg = "unknown field"
			if s := nearest(u[1], yamlFields(reflect.TypeOf(out), parentPath(path))); s != "" {
				msg += "; did you mean " + s + "?"
			}
		} else if c := yamlCannot.FindStringSubmatch(msg); c != nil {
			want := c[3]
			if want == "time.Duration" {
				want = "a duration such as 30m"
			}
			msg = fmt.Sprintf("cannot read %s %q as %s", c[1], c[2], want)
		}
		if path == "" {
			errs = append(errs, fmt.Errorf("%s:%d: %s", d.file, line, msg))
			continue
		}
		errs = append(errs, fmt.Errorf("%s:%d: %s: %s", d.file, line, path, msg))
	}
	return errors.Join(errs...)
}

func parentPath(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 && path[i] == '.' {
		return path[:i]
	}
	return ""
}

// yamlFields lists the YAML field names of the struct at path inside t.
func yamlFields(t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if path != "" {
		for _, seg := range strings.Split(path, ".") {
			name, _, _ := strings.Cut(seg, "[")
			f, ok := yamlField(t, name)
			if !ok {
				return nil
			}
			t = f
			for range strings.Count(seg, "[") {
				if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
					return nil
				}
				t = t.Elem()
			}
			for t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
		}
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := range t.NumField() {
		if n := yamlName(t.Field(i)); n != "" && n != "-" {
			names = append(names, n)
		}
	}
	return names
}

func yamlField(t reflect.Type, name string) (reflect.Type, bool) {
	if t.Kind() != reflect.Struct {
		return nil, false
	}
	for i := range t.NumField() {
		if yamlName(t.Field(i)) == name {
			return t.Field(i).Type, true
		}
	}
	return nil, false
}

func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

// nearest returns the candidate closest to s if it is close enough to be
// a typo of it, else "".
func nearest(s string, candidates []string) string {
	best, bestDist := "", len(s)/3+2
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
