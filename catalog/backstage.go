package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// AnnotationSLOTarget is the Backstage annotation that gives a component's
// SLO target in percent, e.g. "99.95".
const AnnotationSLOTarget = "nines.io/slo-target"

// bsEntity is the part of a Backstage entity nines reads. Backstage files
// are not nines' to police: unknown fields are fine there.
type bsEntity struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name        string         `yaml:"name"`
		Description string         `yaml:"description"`
		Annotations map[string]any `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		Owner     string   `yaml:"owner"`
		System    string   `yaml:"system"`
		DependsOn []string `yaml:"dependsOn"`
	} `yaml:"spec"`
}

// component is a Backstage Component entity, reduced to what becomes a
// service, with where each part came from.
type component struct {
	ix          *posIndex
	name        string
	owner       string
	system      string
	description string
	deps        []string // component names; nil when dependsOn is absent
	depPaths    []string // field path of each dependency
	slo         *float64 // percent
}

// Field paths of a Backstage entity, as posIndex spells them.
const (
	bsNamePath = "metadata.name"
	bsSLOPath  = `metadata.annotations["` + AnnotationSLOTarget + `"]`
)

// parseBackstage reads the Component entities of a multi-document
// catalog-info.yaml file. Entities of other kinds are skipped.
func parseBackstage(file string, data []byte) ([]component, []*FieldError) {
	var comps []component
	var errs []*FieldError
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 1; ; i++ {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if !errors.Is(err, io.EOF) {
				errs = append(errs, syntaxError(file, err))
			}
			break
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue // an empty document, e.g. a trailing ---
		}
		if root.Kind != yaml.MappingNode {
			errs = append(errs, &FieldError{File: file, Line: root.Line, Msg: fmt.Sprintf("document %d: want an entity (a mapping)", i)})
			continue
		}
		if !strings.EqualFold(entityKind(root), "Component") {
			continue
		}
		ix := newPosIndex(file, &doc)
		var e bsEntity
		if fe := ix.decodeNode(&doc, &e); len(fe) > 0 {
			errs = append(errs, fe...)
			continue
		}
		c, fe := newComponent(ix, &e)
		errs = append(errs, fe...)
		if len(fe) == 0 {
			comps = append(comps, c)
		}
	}
	return comps, errs
}

func newComponent(ix *posIndex, e *bsEntity) (component, []*FieldError) {
	var errs []*FieldError
	c := component{
		ix:          ix,
		name:        e.Metadata.Name,
		system:      refName(e.Spec.System),
		description: e.Metadata.Description,
	}
	if msg := checkName(c.name); msg != "" {
		errs = append(errs, ix.errorAt(bsNamePath, "%s", msg))
	}
	if e.Spec.Owner != "" {
		c.owner = refName(e.Spec.Owner)
	}
	if e.Spec.DependsOn != nil {
		c.deps = []string{}
	}
	for j, ref := range e.Spec.DependsOn {
		kind, name := parseRef(ref)
		if kind != "" && kind != "component" {
			continue // resources, APIs and the like are not services
		}
		c.deps = append(c.deps, name)
		c.depPaths = append(c.depPaths, "spec.dependsOn["+strconv.Itoa(j)+"]")
	}
	if v, ok := e.Metadata.Annotations[AnnotationSLOTarget]; ok {
		pct, err := annotationPercent(v)
		if err == nil {
			err = checkPercent(pct)
		}
		if err != nil {
			errs = append(errs, ix.errorAt(bsSLOPath, "%v", err))
		} else {
			c.slo = &pct
		}
	}
	return c, errs
}

func annotationPercent(v any) (float64, error) {
	switch v := v.(type) {
	case string:
		f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), "%"), 64)
		if err != nil {
			return 0, fmt.Errorf("want a percentage like \"99.9\", got %q", v)
		}
		return f, nil
	case int:
		return float64(v), nil
	case float64:
		return v, nil
	}
	return 0, fmt.Errorf("want a percentage like \"99.9\", got %v", v)
}

func entityKind(root *yaml.Node) string {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k, v := root.Content[i], root.Content[i+1]; k.Value == "kind" && v.Kind == yaml.ScalarNode {
			return v.Value
		}
	}
	return ""
}

// parseRef splits a Backstage entity reference, [kind:][namespace/]name,
// into its lower-cased kind and its name. nines' service names are flat,
// so the namespace is dropped.
func parseRef(ref string) (kind, name string) {
	ref = strings.TrimSpace(ref)
	if k, rest, ok := strings.Cut(ref, ":"); ok {
		kind, ref = strings.ToLower(k), rest
	}
	if i := strings.LastIndexByte(ref, '/'); i >= 0 {
		ref = ref[i+1:]
	}
	return kind, ref
}

// refName returns the name of a reference such as group:default/payments.
func refName(ref string) string {
	_, name := parseRef(ref)
	return name
}
