package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FieldError is one problem found in a catalog file or a Backstage file it
// references. It reads like a compiler message:
//
//	catalog.yml:14: services[2].slo_target: must be between 0 and 100 (exclusive), got 100.5
type FieldError struct {
	File  string // the path as given to Load or Parse, or the Backstage file's path
	Line  int    // 1-based; 0 when the problem has no line
	Field string // e.g. services[2].slo_target; empty for problems with the whole file
	Msg   string
}

// Error implements error.
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	// One problem per line, whatever the message quotes.
	b.WriteString(strings.ReplaceAll(e.Msg, "\n", `\n`))
	return b.String()
}

// joinErrors orders errors by file (in order of first appearance) and line,
// and joins them into one error, one problem per line.
func joinErrors(errs []*FieldError) error {
	if len(errs) == 0 {
		return nil
	}
	rank := map[string]int{}
	for _, e := range errs {
		if _, ok := rank[e.File]; !ok {
			rank[e.File] = len(rank)
		}
	}
	sorted := slices.Clone(errs)
	slices.SortStableFunc(sorted, func(a, b *FieldError) int {
		if c := rank[a.File] - rank[b.File]; c != 0 {
			return c
		}
		return a.Line - b.Line
	})
	out := make([]error, len(sorted))
	for i, e := range sorted {
		out[i] = e
	}
	return errors.Join(out...)
}

// posEntry is one node of a YAML document, addressed by its field path.
type posEntry struct {
	path  string
	key   string // the mapping key that leads to the node; "" for sequence items
	line  int    // the key's line for mapping values, the item's line for sequence items
	kind  yaml.Kind
	value string // scalar value
}

// posIndex maps field paths such as services[2].slo_target to lines of one
// YAML document, so that errors found after decoding can still name a line.
type posIndex struct {
	file    string
	entries []posEntry
	byPath  map[string]int // index into entries
}

func newPosIndex(file string, doc *yaml.Node) *posIndex {
	ix := &posIndex{file: file, byPath: map[string]int{}}
	if doc != nil && doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		ix.walk(doc.Content[0], "")
	}
	return ix
}

func (ix *posIndex) walk(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Value == "<<" {
				continue // merge keys and complex keys have no field path
			}
			p := joinKey(path, k.Value)
			ix.add(posEntry{path: p, key: k.Value, line: k.Line, kind: v.Kind, value: v.Value})
			ix.walk(v, p)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			ix.add(posEntry{path: p, line: item.Line, kind: item.Kind, value: item.Value})
			ix.walk(item, p)
		}
	}
	// Scalars have no children; aliases are not followed, so an alias bomb
	// cannot blow up the index.
}

func (ix *posIndex) add(e posEntry) {
	if _, dup := ix.byPath[e.path]; !dup {
		ix.byPath[e.path] = len(ix.entries)
	}
	ix.entries = append(ix.entries, e)
}

// joinKey appends a mapping key to a field path: .name for plain keys,
// ["nines.io/slo-target"] for others.
func joinKey(path, key string) string {
	if isIdent(key) {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// parentPath drops the last segment of a field path.
func parentPath(p string) string {
	if strings.HasSuffix(p, `"]`) {
		if i := strings.LastIndex(p, `["`); i >= 0 {
			return p[:i]
		}
	}
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// line returns the line of the field, or of its closest ancestor present in
// the document when the field itself is missing.
func (ix *posIndex) line(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if i, ok := ix.byPath[p]; ok {
			return ix.entries[i].line
		}
	}
	return 0
}

// errorAt builds a FieldError for a field of this document.
func (ix *posIndex) errorAt(path, format string, args ...any) *FieldError {
	return &FieldError{File: ix.file, Line: ix.line(path), Field: path, Msg: fmt.Sprintf(format, args...)}
}

// decodeYAML decodes the single YAML document in data into out, rejecting
// unknown fields when strict is set, and returns the document's position
// index. An empty document leaves out untouched. Errors name file, line and
// field.
func decodeYAML(file string, data []byte, out any, strict bool) (*posIndex, []*FieldError) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return newPosIndex(file, nil), nil
		}
		return nil, []*FieldError{syntaxError(file, err)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, []*FieldError{syntaxError(file, err)}
	default:
		return nil, []*FieldError{{File: file, Line: extra.Line, Msg: "more than one YAML document; want exactly one"}}
	}
	ix := newPosIndex(file, &doc)
	return ix, ix.decode(data, out, strict)
}

// decode decodes data (the indexed document) into out. yaml.v3 can only
// reject unknown fields when decoding from bytes, not from a Node, hence
// the second pass over data.
func (ix *posIndex) decode(data []byte, out any, strict bool) []*FieldError {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(strict)
	err := dec.Decode(out)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	return ix.mapDecodeError(err, out)
}

// decodeNode decodes one already parsed document node into out, leniently
// (unknown fields are fine), mapping type errors to fields.
func (ix *posIndex) decodeNode(n *yaml.Node, out any) []*FieldError {
	if err := n.Decode(out); err != nil {
		return ix.mapDecodeError(err, out)
	}
	return nil
}

func (ix *posIndex) mapDecodeError(err error, out any) []*FieldError {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []*FieldError{syntaxError(ix.file, err)}
	}
	errs := make([]*FieldError, 0, len(te.Errors))
	for _, msg := range te.Errors {
		errs = append(errs, ix.typeError(msg, reflect.TypeOf(out)))
	}
	return errs
}

// typeError turns one of yaml.v3's "line N: ..." decode messages into a
// FieldError naming the field.
func (ix *posIndex) typeError(msg string, root reflect.Type) *FieldError {
	line, rest := cutLine(msg)
	e := &FieldError{File: ix.file, Line: line, Msg: rest}
	if line == 0 {
		return e
	}
	switch {
	case strings.HasPrefix(rest, "field ") && strings.Contains(rest, " not found in type "):
		// "field foo not found in type catalog.fileService"
		name, typ, _ := strings.Cut(strings.TrimPrefix(rest, "field "), " not found in type ")
		e.Field = ix.keyAt(line, name)
		e.Msg = "unknown field"
		if known := knownFields(root, typ); len(known) > 0 {
			e.Msg += " (known fields: " + strings.Join(known, ", ") + ")"
		}
	case strings.HasPrefix(rest, "mapping key "):
		// "mapping key \"name\" already defined at line 3"
		quoted, tail, _ := strings.Cut(strings.TrimPrefix(rest, "mapping key "), " already defined at ")
		if name, err := strconv.Unquote(quoted); err == nil {
			e.Field = ix.keyAt(line, name)
		}
		e.Msg = "duplicate key (already defined at " + tail + ")"
	case strings.HasPrefix(rest, "field ") && strings.Contains(rest, " already set in type "):
		name, _, _ := strings.Cut(strings.TrimPrefix(rest, "field "), " already set in type ")
		e.Field = ix.keyAt(line, name)
		e.Msg = "duplicate field"
	case strings.HasPrefix(rest, "cannot unmarshal "):
		// "cannot unmarshal !!str `abc` into float64"
		what, into, _ := strings.Cut(strings.TrimPrefix(rest, "cannot unmarshal "), " into ")
		tag, value, _ := strings.Cut(what, " ")
		e.Field = ix.valueAt(line, tag, strings.Trim(value, "`"))
		e.Msg = "cannot use " + tagName(tag)
		if value != "" {
			// yaml.v3 quotes in backticks and cuts long values to 7 bytes
			// plus "..."; requote so that newlines stay escaped.
			e.Msg += " " + strconv.Quote(strings.Trim(value, "`"))
		}
		e.Msg += " as " + goTypeName(into)
	default:
		if i := ix.firstAt(line); i >= 0 {
			e.Field = ix.entries[i].path
		}
	}
	return e
}

func cutLine(msg string) (int, string) {
	rest, ok := strings.CutPrefix(msg, "line ")
	if !ok {
		return 0, msg
	}
	num, tail, ok := strings.Cut(rest, ": ")
	if !ok {
		return 0, msg
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, msg
	}
	return n, tail
}

// keyAt finds the path of the mapping key name on the given line.
func (ix *posIndex) keyAt(line int, name string) string {
	for _, e := range ix.entries {
		if e.line == line && e.key == name {
			return e.path
		}
	}
	if i := ix.firstAt(line); i >= 0 {
		return joinKey(ix.entries[i].path, name)
	}
	return name
}

// valueAt finds the path of the value on the given line that yaml.v3
// complained about: a node of the matching kind whose scalar value starts
// with the (possibly truncated) value quoted in the message.
func (ix *posIndex) valueAt(line int, tag, value string) string {
	value = strings.TrimSuffix(value, "...")
	kind := yaml.ScalarNode
	switch tag {
	case "!!seq":
		kind = yaml.SequenceNode
	case "!!map":
		kind = yaml.MappingNode
	}
	// Several nodes can share a line in flow style ({a: {b: c}}); the
	// message has no column, so take the last, innermost candidate.
	for i := len(ix.entries) - 1; i >= 0; i-- {
		if e := ix.entries[i]; e.line == line && e.kind == kind && strings.HasPrefix(e.value, value) {
			return e.path
		}
	}
	if i := ix.firstAt(line); i >= 0 {
		return ix.entries[i].path
	}
	return ""
}

func (ix *posIndex) firstAt(line int) int {
	for i, e := range ix.entries {
		if e.line == line {
			return i
		}
	}
	return -1
}

func tagName(tag string) string {
	switch tag {
	case "!!str":
		return "string"
	case "!!int":
		return "integer"
	case "!!float":
		return "number"
	case "!!bool":
		return "boolean"
	case "!!null":
		return "null"
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	case "!!timestamp":
		return "timestamp"
	}
	return tag
}

// goTypeName describes a Go type from a yaml.v3 message in the catalog's
// terms.
func goTypeName(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "catalog."), strings.HasPrefix(t, "*catalog."):
		return "a mapping"
	case strings.HasPrefix(t, "float"), t == "*float64":
		return "a number"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case t == "string":
		return "a string"
	case t == "bool":
		return "a boolean"
	}
	return t
}

// knownFields lists the YAML field names of the struct type called typ
// (as yaml.v3 prints it, e.g. catalog.fileService) reachable from root.
func knownFields(root reflect.Type, typ string) []string {
	seen := map[reflect.Type]bool{}
	var find func(t reflect.Type) reflect.Type
	find = func(t reflect.Type) reflect.Type {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return nil
		}
		seen[t] = true
		if t.String() == typ {
			return t
		}
		for i := range t.NumField() {
			if found := find(t.Field(i).Type); found != nil {
				return found
			}
		}
		return nil
	}
	t := find(root)
	if t == nil {
		return nil
	}
	var names []string
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			names = append(names, tag)
		}
	}
	return names
}

// syntaxError turns a yaml.v3 parse error ("yaml: line 3: did not find
// expected key") into a FieldError.
func syntaxError(file string, err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line, rest := cutLine(msg)
	return &FieldError{File: file, Line: line, Msg: rest}
}
