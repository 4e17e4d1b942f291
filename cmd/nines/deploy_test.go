package main

// Tests of the deployment files (Dockerfile, docker-compose.yml and
// deploy/) against nines itself: its flags and their environment names
// (serveFlags, envName), its defaults (the listen port, the shutdown
// timeout) and its routes (routes). Each tool's own checks of these files
// (promtool, amtool, kustomize, systemd-analyze) are in deploy/check.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/ninesops/nines/incidents"
)

// repoFile is the path of a file of the repository, given relative to its
// root with slashes.
func repoFile(p string) string { return filepath.Join("..", "..", filepath.FromSlash(p)) }

func readRepoFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(repoFile(p))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func repoFileExists(p string) bool {
	_, err := os.Stat(repoFile(p))
	return err == nil
}

// decodeYAML decodes a repository YAML file into v.
func decodeYAML(t *testing.T, p string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(readRepoFile(t, p), v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}

// --- nines' side: flags, defaults, routes ---------------------------------

// ninesFlags is what the deployment files must agree with.
type ninesFlags struct {
	flags map[string]*kingpin.FlagModel
	byEnv map[string]string // NINES_… → flag name
}

func serveFlagIndex() ninesFlags {
	return ninesFlags{flags: serveFlagModels(), byEnv: serveFlagsByEnv()}
}

// defaultOf is a flag's default value, as the command line would give it.
func (f ninesFlags) defaultOf(name string) (string, bool) {
	m, ok := f.flags[name]
	if !ok {
		return "", false
	}
	return strings.Join(m.Default, ","), true
}

// defaultListenPort is the port of --web.listen-address's default.
func defaultListenPort(t *testing.T) string {
	t.Helper()
	def, ok := serveFlagIndex().defaultOf("web.listen-address")
	if !ok {
		t.Fatal("serve has no --web.listen-address")
	}
	_, port, err := net.SplitHostPort(def)
	if err != nil {
		t.Fatalf("--web.listen-address default %q: %v", def, err)
	}
	return port
}

// routeProbe serves requests through nines' real routes with stand-ins
// for the webhook and the store, and tells which handler answered.
type routeProbe struct {
	h       http.Handler
	webhook int // calls that reached the webhook handler
	mu      sync.Mutex
}

// newRouteProbe builds the router; ready is what the store's Ping answers.
func newRouteProbe(ready error) *routeProbe {
	p := &routeProbe{}
	p.h = routes(routeDeps{
		log: slog.New(slog.DiscardHandler),
		webhook: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			p.mu.Lock()
			p.webhook++
			p.mu.Unlock()
			w.WriteHeader(http.StatusOK)
		}),
		api:      incidents.NewAPI(nil, nil, nil),
		ready:    func(context.Context) error { return ready },
		gatherer: prometheus.NewRegistry(),
	})
	return p
}

func (p *routeProbe) status(method, path string) int {
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader("{}")))
	return rec.Code
}

// Paths of nines' operational endpoints, as deployment files must use
// them. TestDeployRoutePaths proves them against the router.
const (
	livenessPath  = "/-/healthy"
	readinessPath = "/-/ready"
	metricsPath   = "/metrics"
	webhookPath   = "/api/v1/alerts"
)

// TestDeployRoutePaths checks that the paths deployment files probe,
// scrape and post to are nines' real routes, with the semantics the files
// rely on: liveness answers while ClickHouse is down (a restart would not
// help), readiness does not, and the webhook path reaches the webhook.
func TestDeployRoutePaths(t *testing.T) {
	up, down := newRouteProbe(nil), newRouteProbe(errors.New("clickhouse down"))
	if c := up.status(http.MethodGet, livenessPath); c != http.StatusOK {
		t.Errorf("GET %s = %d, want 200", livenessPath, c)
	}
	if c := down.status(http.MethodGet, livenessPath); c != http.StatusOK {
		t.Errorf("GET %s with ClickHouse down = %d, want 200: liveness must not depend on ClickHouse", livenessPath, c)
	}
	if c := up.status(http.MethodGet, readinessPath); c != http.StatusOK {
		t.Errorf("GET %s = %d, want 200", readinessPath, c)
	}
	if c := down.status(http.MethodGet, readinessPath); c != http.StatusServiceUnavailable {
		t.Errorf("GET %s with ClickHouse down = %d, want 503", readinessPath, c)
	}
	if c := up.status(http.MethodGet, metricsPath); c != http.StatusOK {
		t.Errorf("GET %s = %d, want 200", metricsPath, c)
	}
	if up.status(http.MethodPost, webhookPath); up.webhook != 1 {
		t.Errorf("POST %s did not reach the webhook handler", webhookPath)
	}
	if c := up.status(http.MethodGet, "/-/no-such-path"); c != http.StatusNotFound {
		t.Errorf("an unknown path answers %d, want 404: the checks above prove nothing", c)
	}
}

// checkProbeURL checks a URL a deployment file uses against nines' routes
// and listen port: kind is "liveness", "readiness", "metrics" or
// "webhook".
func checkProbeURL(t *testing.T, where, kind, rawURL, wantHost, wantPort string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Errorf("%s: %s URL %q: %v", where, kind, rawURL, err)
		return
	}
	if wantHost != "" && u.Hostname() != wantHost {
		t.Errorf("%s: %s URL %s: host %q, want %q", where, kind, rawURL, u.Hostname(), wantHost)
	}
	if u.Port() != wantPort {
		t.Errorf("%s: %s URL %s: port %q, want nines' port %s", where, kind, rawURL, u.Port(), wantPort)
	}
	checkRoutePath(t, where, kind, u.Path)
}

// checkRoutePath checks that path is the route of kind, and that the
// router serves it so (TestDeployRoutePaths covers the constants).
func checkRoutePath(t *testing.T, where, kind, p string) {
	t.Helper()
	want := map[string]string{"liveness": livenessPath, "readiness": readinessPath, "metrics": metricsPath, "webhook": webhookPath}[kind]
	if p != want {
		t.Errorf("%s: %s path %q, want %q", where, kind, p, want)
	}
	method := http.MethodGet
	if kind == "webhook" {
		method = http.MethodPost
	}
	probe := newRouteProbe(nil)
	if c := probe.status(method, p); c == http.StatusNotFound || c == http.StatusMethodNotAllowed {
		t.Errorf("%s: %s %s is not one of nines' routes (%d)", where, method, p, c)
	}
}

// --- the deployment files, parsed --------------------------------------

// invocation is how one deployment file runs `nines serve`.
type invocation struct {
	where string
	args  []string          // after the binary: "serve", flags…
	env   map[string]string // NINES_… and others; values may be empty (from a Secret)
}

// flags parses the invocation's flags with nines' own parser and returns
// the set flags' values (command line over environment, as nines does).
func (inv invocation) flags(t *testing.T) map[string]string {
	t.Helper()
	if len(inv.args) == 0 || inv.args[0] != "serve" {
		t.Errorf("%s: runs %q, want `nines serve …`", inv.where, inv.args)
		return nil
	}
	idx := serveFlagIndex()
	env := map[string]string{}
	for k, v := range inv.env {
		if v == "" && idx.byEnv[k] != "" {
			// Set from a Secret: a placeholder of the right type, so that
			// parsing checks the name only.
			v = "(from a secret)"
			if def, _ := idx.defaultOf(idx.byEnv[k]); def != "" {
				v = def
			}
		}
		env[k] = v
	}
	_, set, err := parseServe(inv.args[1:], env)
	if err != nil {
		t.Errorf("%s: nines would refuse its flags: %v", inv.where, err)
		return nil
	}
	return set
}

// listenPort is the port the invocation makes nines listen on.
func (inv invocation) listenPort(t *testing.T) string {
	t.Helper()
	addr := inv.flags(t)["web.listen-address"]
	if addr == "" {
		return defaultListenPort(t)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("%s: --web.listen-address %q: %v", inv.where, addr, err)
	}
	return port
}

// composeFile is the part of docker-compose.yml these tests read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Volumes map[string]any `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	EnvFile     stringList        `yaml:"env_file"`
	Secrets     []string          `yaml:"secrets"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	DependsOn   dependsOn         `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

type composeBuild struct {
	Context string `yaml:"context"`
}

// stringList is a YAML string or list of strings.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = []string{n.Value}
		return nil
	}
	return n.Decode((*[]string)(l))
}

// dependsOn is compose's depends_on, a list or a map, as service →
// condition.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, s := range l {
			(*d)[s] = "service_started"
		}
		return nil
	}
	var m map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	for s, c := range m {
		(*d)[s] = c.Condition
	}
	return nil
}

// mount is a bind mount or named volume of a compose service.
type mount struct{ source, target string }

func (s composeService) mounts(t *testing.T, where string) []mount {
	t.Helper()
	var ms []mount
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			t.Errorf("%s: volume %q: want SOURCE:TARGET[:MODE]", where, v)
			continue
		}
		ms = append(ms, mount{source: parts[0], target: parts[1]})
	}
	return ms
}

// healthURL is the http:// URL of the service's healthcheck.
func (s composeService) healthURL() string {
	if s.Healthcheck == nil {
		return ""
	}
	for _, a := range s.Healthcheck.Test {
		if strings.HasPrefix(a, "http://") || strings.HasPrefix(a, "https://") {
			return a
		}
	}
	return ""
}

// containerPorts are the container sides of the published ports.
func (s composeService) containerPorts() []string {
	var out []string
	for _, p := range s.Ports {
		parts := strings.Split(p, ":")
		out = append(out, strings.TrimSuffix(parts[len(parts)-1], "/tcp"))
	}
	return out
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	decodeYAML(t, "docker-compose.yml", &c)
	for _, name := range []string{"clickhouse", "nines", "prometheus", "alertmanager", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("docker-compose.yml: no service %q", name)
		}
	}
	return c
}

// envFileValues reads a KEY=VALUE file, or its .example when the file
// itself (a generated secret) is not there.
func envFileValues(t *testing.T, p string) map[string]string {
	t.Helper()
	if !repoFileExists(p) {
		p += ".example"
	}
	return parseEnvFile(t, p, readRepoFile(t, p))
}

func parseEnvFile(t *testing.T, name string, b []byte) map[string]string {
	t.Helper()
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: %q is not KEY=VALUE", name, line)
			continue
		}
		vals[k] = v
	}
	return vals
}

// composeInvocation is nines' service in docker-compose.yml.
func composeInvocation(t *testing.T, c composeFile) invocation {
	t.Helper()
	s := c.Services["nines"]
	env := map[string]string{}
	for k, v := range s.Environment {
		env[k] = v
	}
	for _, f := range s.EnvFile {
		for k, v := range envFileValues(t, f) {
			env[k] = v
		}
	}
	return invocation{where: "docker-compose.yml (nines)", args: s.Command, env: env}
}

// k8sObject is the part of the Kubernetes manifests these tests read.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		MinAvailable any `yaml:"minAvailable"`
		Template     struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec k8sPodSpec `yaml:"spec"`
		} `yaml:"template"`
		// Service (its selector is a plain map: see serviceSelector)
		Ports []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
		// ServiceMonitor
		Endpoints []struct {
			Port string `yaml:"port"`
			Path string `yaml:"path"`
		} `yaml:"endpoints"`
	} `yaml:"spec"`
	raw map[string]any
}

type k8sPodSpec struct {
	SecurityContext struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	TerminationGracePeriodSeconds *int           `yaml:"terminationGracePeriodSeconds"`
	Containers                    []k8sContainer `yaml:"containers"`
	Volumes                       []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name  string    `yaml:"name"`
			Items []k8sItem `yaml:"items"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string    `yaml:"secretName"`
			Items      []k8sItem `yaml:"items"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

type k8sItem struct {
	Key  string `yaml:"key"`
	Path string `yaml:"path"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	StartupProbe    *k8sProbe `yaml:"startupProbe"`
	LivenessProbe   *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe  *k8sProbe `yaml:"readinessProbe"`
	SecurityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// kustomization is the part of a kustomization.yaml these tests read.
type kustomization struct {
	Resources          []string `yaml:"resources"`
	ConfigMapGenerator []struct {
		Name  string   `yaml:"name"`
		Files []string `yaml:"files"`
	} `yaml:"configMapGenerator"`
	Images []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
	Patches []struct {
		Path  string `yaml:"path"`
		Patch string `yaml:"patch"`
	} `yaml:"patches"`
}

const (
	k8sBase    = "deploy/kubernetes/base"
	k8sOverlay = "deploy/kubernetes/overlays/external-clickhouse"
)

// loadK8sBase reads the base's resources, by kind.
func loadK8sBase(t *testing.T) (kustomization, map[string]k8sObject) {
	t.Helper()
	var k kustomization
	decodeYAML(t, k8sBase+"/kustomization.yaml", &k)
	objs := map[string]k8sObject{}
	for _, r := range k.Resources {
		p := k8sBase + "/" + r
		dec := yaml.NewDecoder(bytes.NewReader(readRepoFile(t, p)))
		for {
			var n yaml.Node
			if err := dec.Decode(&n); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			var o k8sObject
			if err := n.Decode(&o); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if err := n.Decode(&o.raw); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if _, dup := objs[o.Kind]; dup {
				t.Fatalf("%s: a second %s; these tests expect one of each kind", p, o.Kind)
			}
			objs[o.Kind] = o
		}
	}
	for _, kind := range []string{"StatefulSet", "Service", "PodDisruptionBudget", "ServiceMonitor"} {
		if _, ok := objs[kind]; !ok {
			t.Fatalf("%s: no %s", k8sBase, kind)
		}
	}
	return k, objs
}

// serviceSelector is a Service's spec.selector (a plain map, unlike the
// matchLabels of the other kinds).
func serviceSelector(o k8sObject) map[string]string {
	spec, _ := o.raw["spec"].(map[string]any)
	sel, _ := spec["selector"].(map[string]any)
	out := map[string]string{}
	for k, v := range sel {
		out[k] = fmt.Sprint(v)
	}
	return out
}

func ninesContainer(t *testing.T, d k8sObject) k8sContainer {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "nines" {
			return c
		}
	}
	t.Fatalf("%s: StatefulSet has no container named nines", k8sBase)
	return k8sContainer{}
}

// k8sInvocations are nines' container in the base and in each overlay
// (with the overlay's patches applied to args and env).
func k8sInvocations(t *testing.T) []invocation {
	t.Helper()
	_, objs := loadK8sBase(t)
	c := ninesContainer(t, objs["StatefulSet"])
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	base := invocation{where: k8sBase, args: c.Args, env: env}

	// The overlay: JSON 6902 patches that add arguments, and strategic
	// merge patches that set env.
	var k kustomization
	decodeYAML(t, k8sOverlay+"/kustomization.yaml", &k)
	over := invocation{where: k8sOverlay, args: slices.Clone(base.args), env: map[string]string{}}
	for name, v := range base.env {
		over.env[name] = v
	}
	for _, p := range k.Patches {
		switch {
		case p.Patch != "":
			var ops []struct {
				Op    string `yaml:"op"`
				Path  string `yaml:"path"`
				Value any    `yaml:"value"`
			}
			if err := yaml.Unmarshal([]byte(p.Patch), &ops); err != nil {
				t.Fatalf("%s: patch: %v", k8sOverlay, err)
			}
			for _, op := range ops {
				if op.Op != "add" || !strings.HasSuffix(op.Path, "/args/-") {
					t.Errorf("%s: patch op %s %s: these tests know only `add …/args/-`", k8sOverlay, op.Op, op.Path)
					continue
				}
				over.args = append(over.args, fmt.Sprint(op.Value))
			}
		case p.Path != "":
			var d k8sObject
			decodeYAML(t, k8sOverlay+"/"+p.Path, &d)
			for _, pc := range d.Spec.Template.Spec.Containers {
				if len(pc.Args) > 0 {
					t.Errorf("%s: %s replaces the args; add to them with a JSON patch", k8sOverlay, p.Path)
				}
				for _, e := range pc.Env {
					over.env[e.Name] = e.Value
				}
			}
		}
	}
	return []invocation{base, over}
}

// systemdUnit reads deploy/systemd/nines.service into its directives, with
// continuation lines joined.
func systemdUnit(t *testing.T) map[string][]string {
	t.Helper()
	unit := map[string][]string{}
	var cont string
	sc := bufio.NewScanner(bytes.NewReader(readRepoFile(t, "deploy/systemd/nines.service")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cont != "" {
			line, cont = cont+" "+line, ""
		}
		if strings.HasSuffix(line, `\`) {
			cont = strings.TrimSuffix(line, `\`)
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("nines.service: %q is not Key=Value", line)
			continue
		}
		unit[k] = append(unit[k], v)
	}
	return unit
}

func systemdInvocation(t *testing.T) invocation {
	t.Helper()
	unit := systemdUnit(t)
	if len(unit["ExecStart"]) != 1 {
		t.Fatalf("nines.service: want one ExecStart, got %q", unit["ExecStart"])
	}
	args := strings.Fields(unit["ExecStart"][0])
	if len(args) == 0 || path.Base(args[0]) != "nines" {
		t.Fatalf("nines.service: ExecStart runs %q, want nines", args)
	}
	env := parseEnvFile(t, "nines.env.example", readRepoFile(t, "deploy/systemd/nines.env.example"))
	return invocation{where: "deploy/systemd/nines.service", args: args[1:], env: env}
}

// allInvocations are every way the deployment files start nines.
func allInvocations(t *testing.T) []invocation {
	t.Helper()
	invs := []invocation{composeInvocation(t, loadCompose(t))}
	invs = append(invs, k8sInvocations(t)...)
	return append(invs, systemdInvocation(t))
}

// --- flags and environment ----------------------------------------------

// TestDeployFlags checks that every flag and NINES_* variable the
// deployment files give nines exists, and that nines' own parser accepts
// them.
func TestDeployFlags(t *testing.T) {
	idx := serveFlagIndex()
	for _, inv := range allInvocations(t) {
		t.Run(inv.where, func(t *testing.T) {
			for _, a := range inv.args[1:] {
				name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
				if _, ok := idx.flags[name]; !strings.HasPrefix(a, "--") || !ok {
					t.Errorf("argument %q: `nines serve` has no such flag", a)
				}
			}
			for k := range inv.env {
				if strings.HasPrefix(k, "NINES_") && idx.byEnv[k] == "" {
					t.Errorf("environment %s is read by no flag of `nines serve` (it reads only %v)", k, slices.Sorted(maps.Keys(idx.byEnv)))
				}
			}
			set := inv.flags(t)
			if set == nil {
				return // nines would not start; reported
			}
			// Every deployment needs ClickHouse and webhook credentials, or
			// nines refuses to start.
			if set["clickhouse.dsn"] == "" {
				t.Errorf("no --clickhouse.dsn (or %s)", envDSN)
			}
			if set["webhook.bearer-token-file"] == "" && set["webhook.basic-auth-file"] == "" {
				t.Errorf("no webhook credentials: --webhook.bearer-token-file or --webhook.basic-auth-file")
			}
			// Services, owners and SLOs come from the catalog.
			if set["catalog.file"] == "" {
				t.Errorf("no --catalog.file")
			}
			if set["webhook.allow-unauthenticated"] == "true" {
				t.Errorf("--webhook.allow-unauthenticated is for development only")
			}
		})
	}
}

// isFileFlag tells flags whose value is a file nines reads.
func isFileFlag(name string) bool { return strings.HasSuffix(name, "file") }

// TestDeployComposeWiring checks docker-compose.yml: nines' port, probes
// and files, the other services' view of nines, secrets and health checks.
func TestDeployComposeWiring(t *testing.T) {
	c := loadCompose(t)
	inv := composeInvocation(t, c)
	port := inv.listenPort(t)
	nines := c.Services["nines"]

	t.Run("ports", func(t *testing.T) {
		if !slices.Contains(nines.containerPorts(), port) {
			t.Errorf("nines publishes container ports %v, want nines' port %s", nines.containerPorts(), port)
		}
		hostPorts := map[string]string{}
		for name, s := range c.Services {
			for _, p := range s.Ports {
				parts := strings.Split(p, ":")
				if len(parts) < 2 {
					t.Errorf("%s: port %q: publish as [IP:]HOST:CONTAINER", name, p)
					continue
				}
				hp := parts[len(parts)-2]
				if other, dup := hostPorts[hp]; dup {
					t.Errorf("host port %s published by %s and %s", hp, other, name)
				}
				hostPorts[hp] = name
			}
		}
		if ps := c.Services["clickhouse"].Ports; len(ps) > 0 {
			t.Errorf("clickhouse publishes %v; it should be reachable from the compose network only", ps)
		}
	})

	t.Run("health", func(t *testing.T) {
		for name, s := range c.Services {
			if s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
				t.Errorf("%s has no healthcheck", name)
			}
		}
		checkProbeURL(t, "docker-compose.yml nines healthcheck", "liveness", nines.healthURL(), "", port)
		if cond := nines.DependsOn["clickhouse"]; cond != "service_healthy" {
			t.Errorf("nines depends on clickhouse with condition %q, want service_healthy", cond)
		}
	})

	t.Run("files", func(t *testing.T) {
		// Every file flag names a file mounted into the container, and that
		// file is in the repository (or, for secrets, its .example).
		for name, val := range inv.flags(t) {
			if isFileFlag(name) {
				checkComposeFile(t, c, "nines", "--"+name, val)
			}
		}
		// The bind mounts of every service exist (Grafana's are checked by
		// TestDeployGrafana, which waits for them).
		for svcName, s := range c.Services {
			for _, m := range s.mounts(t, svcName) {
				if !strings.HasPrefix(m.source, ".") {
					if _, ok := c.Volumes[m.source]; !ok {
						t.Errorf("%s: volume %q is not declared under volumes:", svcName, m.source)
					}
					continue
				}
				if svcName == "grafana" {
					continue
				}
				if !repoFileExists(m.source) {
					t.Errorf("%s: bind mount source %s does not exist", svcName, m.source)
				}
			}
		}
	})

	t.Run("secrets", func(t *testing.T) {
		for name, s := range c.Secrets {
			if s.File == "" {
				t.Errorf("secret %s: want file: under deploy/secrets/", name)
				continue
			}
			if !strings.HasPrefix(s.File, "deploy/secrets/") {
				t.Errorf("secret %s: %s is outside deploy/secrets/, whose .gitignore keeps secrets out of git", name, s.File)
			}
			if !repoFileExists(s.File) && !repoFileExists(s.File+".example") {
				t.Errorf("secret %s: neither %s nor %s.example exists", name, s.File, s.File)
			}
		}
		for svcName, s := range c.Services {
			for _, sec := range s.Secrets {
				if _, ok := c.Secrets[sec]; !ok {
					t.Errorf("%s uses secret %s, which is not declared under secrets:", svcName, sec)
				}
			}
			for _, f := range s.EnvFile {
				if !strings.HasPrefix(f, "deploy/secrets/") {
					t.Errorf("%s: env_file %s is outside deploy/secrets/", svcName, f)
				}
				if !repoFileExists(f) && !repoFileExists(f+".example") {
					t.Errorf("%s: neither env_file %s nor %s.example exists", svcName, f, f)
				}
			}
			// No secret is written in the compose file itself.
			for k, v := range s.Environment {
				if looksSecret(k) && !strings.HasSuffix(k, "_FILE") && v != "" {
					t.Errorf("%s: environment %s has a value in docker-compose.yml; read it from deploy/secrets/", svcName, k)
				}
			}
		}
	})

	t.Run("image", func(t *testing.T) {
		if nines.Build == nil || path.Clean(nines.Build.Context) != "." || !repoFileExists("Dockerfile") {
			t.Errorf("nines: want build: {context: .} with the Dockerfile at the root")
		}
		for name, s := range c.Services {
			repo, tag := splitImage(s.Image)
			if repo == "" || tag == "" || tag == "latest" {
				t.Errorf("%s: image %q: pin a tag", name, s.Image)
			}
		}
	})
}

var secretName = regexp.MustCompile(`(?i)password|token|secret|dsn`)

func looksSecret(envKey string) bool { return secretName.MatchString(envKey) }

// splitImage splits repo[:tag]; a ${VAR:-default} tag counts as its
// default.
func splitImage(image string) (repo, tag string) {
	i := strings.LastIndex(image, ":")
	if j := strings.Index(image, "${"); j >= 0 && (i < 0 || j < i) {
		// repo:${VAR:-tag}
		repo, rest, _ := strings.Cut(image, ":")
		if _, def, ok := strings.Cut(rest, ":-"); ok {
			return repo, strings.TrimSuffix(def, "}")
		}
		return repo, rest
	}
	if i < 0 || strings.Contains(image[i:], "/") {
		return image, ""
	}
	return image[:i], image[i+1:]
}

// checkComposeFile checks that the container path p of service svc is
// mounted, as a bind mount of a file in the repository or as a secret.
func checkComposeFile(t *testing.T, c composeFile, svc, what, p string) {
	t.Helper()
	s := c.Services[svc]
	if name, ok := strings.CutPrefix(p, "/run/secrets/"); ok {
		if !slices.Contains(s.Secrets, name) {
			t.Errorf("%s: %s %s: %s does not list secret %s", "docker-compose.yml", what, p, svc, name)
		}
		return
	}
	for _, m := range s.mounts(t, svc) {
		rest, ok := strings.CutPrefix(p, m.target)
		if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
			continue
		}
		if !strings.HasPrefix(m.source, ".") {
			t.Errorf("docker-compose.yml: %s %s is on volume %s, not a file of the repository", what, p, m.source)
			return
		}
		if src := path.Join(m.source, rest); !repoFileExists(src) {
			t.Errorf("docker-compose.yml: %s %s is mounted from %s, which does not exist", what, p, src)
		}
		return
	}
	t.Errorf("docker-compose.yml: %s %s: no mount of %s holds it", what, p, svc)
}

// TestDeployComposeSecrets runs deploy/secrets/generate and checks that
// it writes every file docker-compose.yml reads, and that the passwords
// agree: the DSN nines gets, the hashes ClickHouse gets, the file Grafana
// gets.
func TestDeployComposeSecrets(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	c := loadCompose(t)
	dir := filepath.Join(t.TempDir(), "secrets")
	gen := func() {
		out, err := exec.Command(repoFile("deploy/secrets/generate"), dir).CombinedOutput()
		if err != nil {
			t.Fatalf("deploy/secrets/generate: %v\n%s", err, out)
		}
	}
	gen()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("generate did not write %s: %v", name, err)
		}
		return string(b)
	}
	for name, s := range c.Secrets {
		if v := read(path.Base(s.File)); strings.TrimSpace(v) == "" {
			t.Errorf("secret %s: %s is empty", name, s.File)
		}
	}
	envs := map[string]map[string]string{}
	for svc, s := range c.Services {
		for _, f := range s.EnvFile {
			envs[svc] = parseEnvFile(t, f, []byte(read(path.Base(f))))
		}
	}
	before := read("webhook-token")
	gen() // again: keeps what exists
	if read("webhook-token") != before {
		t.Error("a second generate replaced an existing secret")
	}

	dsn, err := url.Parse(envs["nines"][envDSN])
	if err != nil || dsn.Scheme != "clickhouse" {
		t.Fatalf("nines' env_file: %s = %q: want clickhouse://…", envDSN, envs["nines"][envDSN])
	}
	checkDSN(t, "generated nines.env", dsn)
	pw, _ := dsn.User.Password()
	users := clickhouseUsers(t)
	if users["nines"] == "" || users["grafana"] == "" {
		t.Fatalf("users.d/nines.xml: want users nines and grafana, got %v", users)
	}
	hashes := envs["clickhouse"]
	if got, want := hashes[users["nines"]], sha256Hex(pw); got != want {
		t.Errorf("ClickHouse gets %s=%q, want the SHA-256 of the DSN's password, %q", users["nines"], got, want)
	}
	if got, want := hashes[users["grafana"]], sha256Hex(read("clickhouse-grafana-password")); got != want {
		t.Errorf("ClickHouse gets %s=%q, want the SHA-256 of clickhouse-grafana-password, %q", users["grafana"], got, want)
	}
	// The committed examples agree the same way.
	exDSN, _ := url.Parse(envFileValues(t, "deploy/secrets/nines.env.example")[envDSN])
	exPW, _ := exDSN.User.Password()
	if got := envFileValues(t, "deploy/secrets/clickhouse.env.example")[users["nines"]]; got != sha256Hex(exPW) {
		t.Errorf("clickhouse.env.example: %s is not the SHA-256 of nines.env.example's password", users["nines"])
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// checkDSN checks a compose DSN against the compose ClickHouse: its
// service name, native port, and the nines user of users.d.
func checkDSN(t *testing.T, where string, dsn *url.URL) {
	t.Helper()
	if dsn.Hostname() != "clickhouse" || dsn.Port() != "9000" {
		t.Errorf("%s: DSN host %s, want the compose service clickhouse on the native port 9000", where, dsn.Host)
	}
	if _, ok := clickhouseUsers(t)[dsn.User.Username()]; !ok {
		t.Errorf("%s: DSN user %q is not a user of deploy/clickhouse/users.d/nines.xml", where, dsn.User.Username())
	}
	if db := strings.TrimPrefix(dsn.Path, "/"); db != "nines" {
		t.Errorf("%s: DSN database %q, want nines", where, db)
	}
}

// clickhouseUsers reads deploy/clickhouse/users.d/nines.xml: user name →
// the environment variable holding its password's hash.
func clickhouseUsers(t *testing.T) map[string]string {
	t.Helper()
	var doc struct {
		XMLName xml.Name
		Users   struct {
			Users []struct {
				XMLName xml.Name
				Hash    struct {
					FromEnv string `xml:"from_env,attr"`
				} `xml:"password_sha256_hex"`
			} `xml:",any"`
		} `xml:"users"`
	}
	if err := xml.Unmarshal(readRepoFile(t, "deploy/clickhouse/users.d/nines.xml"), &doc); err != nil {
		t.Fatalf("users.d/nines.xml: %v", err)
	}
	users := map[string]string{}
	for _, u := range doc.Users.Users {
		if u.Hash.FromEnv == "" {
			t.Errorf("users.d/nines.xml: user %s: want <password_sha256_hex from_env=…/>", u.XMLName.Local)
		}
		users[u.XMLName.Local] = u.Hash.FromEnv
	}
	return users
}

// TestDeployClickHouseConfig checks the ClickHouse snippets: well-formed,
// for current servers, mounted by docker-compose.yml.
func TestDeployClickHouseConfig(t *testing.T) {
	c := loadCompose(t)
	var mounted []string
	for _, m := range c.Services["clickhouse"].mounts(t, "clickhouse") {
		mounted = append(mounted, path.Clean(m.source))
	}
	for _, dir := range []string{"config.d", "users.d"} {
		files, err := filepath.Glob(repoFile("deploy/clickhouse/" + dir + "/*.xml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("deploy/clickhouse/%s: no XML files", dir)
		}
		for _, f := range files {
			rel := "deploy/clickhouse/" + dir + "/" + filepath.Base(f)
			var root struct{ XMLName xml.Name }
			if err := xml.Unmarshal(readRepoFile(t, rel), &root); err != nil {
				t.Errorf("%s: %v", rel, err)
			} else if root.XMLName.Local != "clickhouse" {
				t.Errorf("%s: root element <%s>, want <clickhouse>", rel, root.XMLName.Local)
			}
			if !slices.Contains(mounted, rel) {
				t.Errorf("docker-compose.yml does not mount %s into clickhouse", rel)
			}
		}
	}
	users := clickhouseUsers(t)
	if _, ok := users["nines"]; !ok {
		t.Error("users.d/nines.xml defines no user nines")
	}
	env := envFileValues(t, "deploy/secrets/clickhouse.env")
	for u, v := range users {
		if _, ok := env[v]; !ok {
			t.Errorf("user %s's hash comes from %s, which deploy/secrets/clickhouse.env does not set", u, v)
		}
	}
}

// TestDeployAlertmanagerConfig checks that every Alertmanager file posts
// to nines' webhook path with resolved notifications and a bearer token,
// and that the compose one reaches nines' service and port with the token
// nines reads.
func TestDeployAlertmanagerConfig(t *testing.T) {
	c := loadCompose(t)
	port := composeInvocation(t, c).listenPort(t)
	nines := composeInvocation(t, c).flags(t)
	files, _ := filepath.Glob(repoFile("deploy/alertmanager/*.yml"))
	if len(files) < 2 {
		t.Fatalf("deploy/alertmanager: want alertmanager.yml and receiver-example.yml, found %v", files)
	}
	for _, f := range files {
		rel := "deploy/alertmanager/" + filepath.Base(f)
		t.Run(rel, func(t *testing.T) {
			var cfg amConfig
			decodeYAML(t, rel, &cfg)
			wh := cfg.ninesWebhooks()
			if len(wh) != 1 {
				t.Fatalf("want one webhook receiver for nines, found %d", len(wh))
			}
			w := wh[0]
			wantHost, wantPort := "", defaultListenPort(t)
			if rel == "deploy/alertmanager/alertmanager.yml" {
				wantHost, wantPort = "nines", port
			}
			checkProbeURL(t, rel, "webhook", w.URL, wantHost, wantPort)
			if w.SendResolved == nil || !*w.SendResolved {
				t.Error("send_resolved must be true: nines ends incidents on resolved alerts")
			}
			a := w.HTTPConfig.Authorization
			if a == nil || (a.Type != "" && a.Type != "Bearer") || a.CredentialsFile == "" || a.Credentials != "" {
				t.Error("want http_config.authorization with type Bearer and credentials_file (not credentials)")
			}
			// As in the acceptance test's Alertmanager: one incident per
			// alert name and service.
			route := cfg.routeTo(w.receiver)
			for _, l := range []string{"alertname", "service"} {
				if !slices.Contains(route.GroupBy, l) {
					t.Errorf("the route to %s groups by %v, want %s among them", w.receiver, route.GroupBy, l)
				}
			}
			if rel != "deploy/alertmanager/alertmanager.yml" || a == nil {
				return
			}
			// The token file is the compose secret nines reads.
			sec, ok := strings.CutPrefix(a.CredentialsFile, "/run/secrets/")
			if !ok || !slices.Contains(c.Services["alertmanager"].Secrets, sec) {
				t.Errorf("credentials_file %s: want /run/secrets/<a secret of the alertmanager service>", a.CredentialsFile)
			}
			ninesSec, _ := strings.CutPrefix(nines["webhook.bearer-token-file"], "/run/secrets/")
			if c.Secrets[sec].File == "" || c.Secrets[sec].File != c.Secrets[ninesSec].File {
				t.Errorf("Alertmanager's token (secret %s) and nines' --webhook.bearer-token-file (secret %s) are not the same file", sec, ninesSec)
			}
			// And Alertmanager is mounted where its command says.
			am := c.Services["alertmanager"]
			if !slices.Contains(am.Command, "--config.file=/etc/alertmanager/alertmanager.yml") {
				t.Errorf("alertmanager's command %v does not load /etc/alertmanager/alertmanager.yml", am.Command)
			}
			checkComposeFile(t, c, "alertmanager", "config", "/etc/alertmanager/alertmanager.yml")
		})
	}
}

type amConfig struct {
	Route     amRoute `yaml:"route"`
	Receivers []struct {
		Name           string      `yaml:"name"`
		WebhookConfigs []amWebhook `yaml:"webhook_configs"`
	} `yaml:"receivers"`
}

type amRoute struct {
	Receiver string    `yaml:"receiver"`
	GroupBy  []string  `yaml:"group_by"`
	Routes   []amRoute `yaml:"routes"`
}

type amWebhook struct {
	receiver     string
	URL          string `yaml:"url"`
	SendResolved *bool  `yaml:"send_resolved"`
	HTTPConfig   struct {
		Authorization *struct {
			Type            string `yaml:"type"`
			Credentials     string `yaml:"credentials"`
			CredentialsFile string `yaml:"credentials_file"`
		} `yaml:"authorization"`
	} `yaml:"http_config"`
}

// ninesWebhooks are the webhooks posting to nines' webhook path.
func (c amConfig) ninesWebhooks() []amWebhook {
	var out []amWebhook
	for _, r := range c.Receivers {
		for _, w := range r.WebhookConfigs {
			if strings.Contains(w.URL, webhookPath) || strings.Contains(w.URL, "nines") {
				w.receiver = r.Name
				out = append(out, w)
			}
		}
	}
	return out
}

// routeTo finds the first route to receiver, with group_by inherited.
func (c amConfig) routeTo(receiver string) amRoute {
	var find func(r amRoute, groupBy []string) (amRoute, bool)
	find = func(r amRoute, groupBy []string) (amRoute, bool) {
		if r.GroupBy == nil {
			r.GroupBy = groupBy
		}
		for _, sub := range r.Routes {
			if got, ok := find(sub, r.GroupBy); ok {
				return got, true
			}
		}
		return r, r.Receiver == receiver
	}
	r, _ := find(c.Route, nil)
	return r
}

// TestDeployAlertmanagerDelivers runs a real Alertmanager with the compose
// stack's alertmanager.yml, nines' address swapped for a stand-in: alerts
// arrive on the webhook path with the bearer token, and nines' own alerts
// do not arrive.
func TestDeployAlertmanagerDelivers(t *testing.T) {
	bin := alertmanagerBinary(t)
	const token = "deploy-test-token"
	type delivery struct {
		auth, path string
		body       struct {
			Receiver string `json:"receiver"`
			Alerts   []struct {
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
	}
	got := make(chan delivery, 16)
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := delivery{auth: r.Header.Get("Authorization"), path: r.URL.Path}
		_ = json.NewDecoder(r.Body).Decode(&d.body)
		got <- d
	}))
	defer fake.Close()

	// The compose file, with nines' host:port and the token file swapped.
	var cfg map[string]any
	decodeYAML(t, "deploy/alertmanager/alertmanager.yml", &cfg)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	swapped := 0
	for _, r := range cfg["receivers"].([]any) {
		for _, w := range asSlice(r.(map[string]any)["webhook_configs"]) {
			wm := w.(map[string]any)
			u, err := url.Parse(wm["url"].(string))
			if err != nil {
				t.Fatal(err)
			}
			wm["url"] = fake.URL + u.Path
			auth := wm["http_config"].(map[string]any)["authorization"].(map[string]any)
			auth["credentials_file"] = tokenFile
			swapped++
		}
	}
	if swapped == 0 {
		t.Fatal("alertmanager.yml has no webhook")
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager log:\n%s", logs.String())
		}
	}()

	alerts := []map[string]any{
		{"labels": map[string]string{"alertname": "CheckoutDown", "service": "checkout", "severity": "critical"}},
		{"labels": map[string]string{"alertname": "NinesDown", "service": "nines", "severity": "critical", "instance": "nines:9095"}},
	}
	body, _ := json.Marshal(alerts)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Post("http://"+addr+"/api/v2/alerts", "application/json", bytes.NewReader(body))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager did not take alerts: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// group_wait is 10s: the checkout alert arrives after it; NinesDown,
	// in a group of the same timing, would arrive with it.
	var first delivery
	select {
	case first = <-got:
	case <-time.After(40 * time.Second):
		t.Fatal("no notification reached the stand-in nines within 40s")
	}
	extra := time.After(3 * time.Second)
	all := []delivery{first}
collect:
	for {
		select {
		case d := <-got:
			all = append(all, d)
		case <-extra:
			break collect
		}
	}
	for _, d := range all {
		if d.path != webhookPath {
			t.Errorf("posted to %s, want %s", d.path, webhookPath)
		}
		if d.auth != "Bearer "+token {
			t.Errorf("Authorization %q, want the token file's bearer token", d.auth)
		}
		for _, a := range d.body.Alerts {
			if strings.HasPrefix(a.Labels["alertname"], "Nines") {
				t.Errorf("nines received its own alert %s", a.Labels["alertname"])
			}
		}
	}
	if len(first.body.Alerts) != 1 || first.body.Alerts[0].Labels["alertname"] != "CheckoutDown" || first.body.Receiver != "nines" {
		t.Errorf("first notification: receiver %q, alerts %v; want CheckoutDown to receiver nines", first.body.Receiver, first.body.Alerts)
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// TestDeployPrometheus checks prometheus.yml against the compose stack and
// the rules: it scrapes nines' service on nines' port at /metrics, with the
// job name the rules select, and alerts to the compose Alertmanager.
func TestDeployPrometheus(t *testing.T) {
	c := loadCompose(t)
	port := composeInvocation(t, c).listenPort(t)
	var cfg struct {
		RuleFiles []string `yaml:"rule_files"`
		Alerting  struct {
			Alertmanagers []struct {
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"alertmanagers"`
		} `yaml:"alerting"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	decodeYAML(t, "deploy/prometheus/prometheus.yml", &cfg)

	job := ""
	for _, sc := range cfg.ScrapeConfigs {
		for _, s := range sc.StaticConfigs {
			for _, target := range s.Targets {
				if host, p, _ := net.SplitHostPort(target); host == "nines" {
					job = sc.JobName
					if p != port {
						t.Errorf("scrape target %s: want nines' port %s", target, port)
					}
					mp := sc.MetricsPath
					if mp == "" {
						mp = "/metrics" // Prometheus' default
					}
					checkRoutePath(t, "prometheus.yml", "metrics", mp)
				}
			}
		}
	}
	if job == "" {
		t.Fatal("prometheus.yml does not scrape the compose service nines")
	}
	// The rules select nines by this job; in Kubernetes the ServiceMonitor
	// names the job after the Service.
	rules := string(readRepoFile(t, "deploy/prometheus/nines-rules.yml"))
	for _, m := range regexp.MustCompile(`job="([^"]*)"`).FindAllStringSubmatch(rules, -1) {
		if m[1] != job {
			t.Errorf("nines-rules.yml selects job=%q, but prometheus.yml scrapes nines as job %q", m[1], job)
		}
	}
	_, objs := loadK8sBase(t)
	if svc := objs["Service"].Metadata.Name; svc != job {
		t.Errorf("the Kubernetes Service is %q, so the ServiceMonitor's job label is %q, not %q", svc, svc, job)
	}

	amFound := false
	for _, am := range cfg.Alerting.Alertmanagers {
		for _, s := range am.StaticConfigs {
			for _, target := range s.Targets {
				host, p, _ := net.SplitHostPort(target)
				if _, ok := c.Services[host]; ok && host == "alertmanager" && p == "9093" {
					amFound = true
				}
			}
		}
	}
	if !amFound {
		t.Error("prometheus.yml does not alert to alertmanager:9093")
	}
	if ams := c.Services["alertmanager"].Command; slices.ContainsFunc(ams, func(a string) bool { return strings.HasPrefix(a, "--web.listen-address") }) {
		t.Errorf("alertmanager's command %v moves it off :9093", ams)
	}
	for _, f := range cfg.RuleFiles {
		if !repoFileExists("deploy/prometheus/" + f) {
			t.Errorf("rule file %s does not exist", f)
		}
	}
	checkComposeFile(t, c, "prometheus", "config", "/etc/prometheus/prometheus.yml")
}

// TestDeployKubernetes checks the kustomize base: nines' port and routes
// in the probes, Service and ServiceMonitor; selectors that select; the
// non-root user of the image; the files nines reads.
func TestDeployKubernetes(t *testing.T) {
	k, objs := loadK8sBase(t)
	d, svc, pdb, sm := objs["StatefulSet"], objs["Service"], objs["PodDisruptionBudget"], objs["ServiceMonitor"]
	c := ninesContainer(t, d)
	invs := k8sInvocations(t)
	port := invs[0].listenPort(t)
	podLabels := d.Spec.Template.Metadata.Labels

	t.Run("replicas", func(t *testing.T) {
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
			t.Errorf("replicas %s, want 2", intOrUnset(d.Spec.Replicas))
		}
		if pdb.Spec.MinAvailable == nil {
			t.Error("PodDisruptionBudget has no minAvailable")
		}
	})

	t.Run("selectors", func(t *testing.T) {
		for _, s := range []struct {
			what string
			sel  map[string]string
		}{
			{"StatefulSet", d.Spec.Selector.MatchLabels},
			{"Service", serviceSelector(svc)},
			{"PodDisruptionBudget", pdb.Spec.Selector.MatchLabels},
		} {
			if len(s.sel) == 0 || !selects(s.sel, podLabels) {
				t.Errorf("%s selector %v does not select nines' pods %v", s.what, s.sel, podLabels)
			}
		}
		if sel := sm.Spec.Selector.MatchLabels; len(sel) == 0 || !selects(sel, svc.Metadata.Labels) {
			t.Errorf("ServiceMonitor selector %v does not select the Service %v", sel, svc.Metadata.Labels)
		}
	})

	t.Run("ports and probes", func(t *testing.T) {
		named := map[string]string{}
		for _, p := range c.Ports {
			named[p.Name] = strconv.Itoa(p.ContainerPort)
		}
		resolve := func(v any) string {
			s := fmt.Sprint(v)
			if n, ok := named[s]; ok {
				return n
			}
			return s
		}
		if !slices.Contains(slices.Collect(maps.Values(named)), port) {
			t.Errorf("container ports %v, want nines' port %s", named, port)
		}
		for _, pr := range []struct {
			kind  string
			probe *k8sProbe
		}{
			{"liveness", c.StartupProbe},
			{"liveness", c.LivenessProbe},
			{"readiness", c.ReadinessProbe},
		} {
			if pr.probe == nil || pr.probe.HTTPGet == nil {
				t.Errorf("no httpGet %s probe", pr.kind)
				continue
			}
			if p := resolve(pr.probe.HTTPGet.Port); p != port {
				t.Errorf("%s probe on port %s, want %s", pr.kind, p, port)
			}
			checkRoutePath(t, k8sBase+" probe", pr.kind, pr.probe.HTTPGet.Path)
		}
		svcPorts := map[string]bool{}
		for _, p := range svc.Spec.Ports {
			svcPorts[p.Name] = true
			if tp := resolve(p.TargetPort); tp != port {
				t.Errorf("Service port %s targets %s, want nines' port %s", p.Name, tp, port)
			}
		}
		if len(sm.Spec.Endpoints) == 0 {
			t.Error("ServiceMonitor has no endpoints")
		}
		for _, e := range sm.Spec.Endpoints {
			if !svcPorts[e.Port] {
				t.Errorf("ServiceMonitor scrapes port %q, which the Service does not name", e.Port)
			}
			checkRoutePath(t, k8sBase+" ServiceMonitor", "metrics", e.Path)
		}
		if sm.APIVersion != "monitoring.coreos.com/v1" {
			t.Errorf("ServiceMonitor apiVersion %s, want monitoring.coreos.com/v1", sm.APIVersion)
		}
	})

	t.Run("security", func(t *testing.T) {
		ps := d.Spec.Template.Spec
		sc := c.SecurityContext
		if !isTrue(ps.SecurityContext.RunAsNonRoot) || !isTrue(sc.RunAsNonRoot) {
			t.Error("want runAsNonRoot: true")
		}
		if !isTrue(sc.ReadOnlyRootFilesystem) {
			t.Error("want readOnlyRootFilesystem: true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Error("want allowPrivilegeEscalation: false")
		}
		if uid := dockerfileUser(t); ps.SecurityContext.RunAsUser == nil || strconv.Itoa(*ps.SecurityContext.RunAsUser) != uid {
			t.Errorf("runAsUser %s, want the image's user %s", intOrUnset(ps.SecurityContext.RunAsUser), uid)
		}
		if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
			t.Errorf("want cpu and memory requests and a memory limit, got %+v", c.Resources)
		}
		// Shutdown finishes in-flight webhooks within --web.shutdown-timeout.
		def, _ := serveFlagIndex().defaultOf("web.shutdown-timeout")
		grace := ps.TerminationGracePeriodSeconds
		if want, _ := time.ParseDuration(def); grace == nil || time.Duration(*grace)*time.Second <= want {
			t.Errorf("terminationGracePeriodSeconds %s, want more than --web.shutdown-timeout (%s)", intOrUnset(grace), def)
		}
	})

	t.Run("secrets", func(t *testing.T) {
		if _, ok := objs["Secret"]; ok {
			t.Error("the base holds a Secret: reference secrets, create them outside")
		}
		for _, e := range c.Env {
			if looksSecret(e.Name) && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				t.Errorf("env %s: want valueFrom.secretKeyRef", e.Name)
			}
		}
	})

	t.Run("files", func(t *testing.T) {
		for _, inv := range invs {
			for name, val := range inv.flags(t) {
				if isFileFlag(name) {
					checkK8sFile(t, d, c, "--"+name, val)
				}
			}
		}
		// files/ are copies of the compose stack's configuration.
		copies := map[string]string{
			"files/config.yml":                  "deploy/nines/config.yml",
			"files/catalog.yml":                 "deploy/catalog/catalog.yml",
			"files/backstage/catalog-info.yaml": "deploy/catalog/backstage/catalog-info.yaml",
		}
		for _, g := range k.ConfigMapGenerator {
			for _, f := range g.Files {
				_, src, _ := strings.Cut(f, "=")
				orig, ok := copies[src]
				if !ok {
					continue
				}
				if !bytes.Equal(readRepoFile(t, k8sBase+"/"+src), readRepoFile(t, orig)) {
					t.Errorf("%s/%s differs from %s: cp %s %s/%s", k8sBase, src, orig, orig, k8sBase, src)
				}
				delete(copies, src)
			}
		}
		for src := range copies {
			t.Errorf("the configMapGenerator does not include %s", src)
		}
	})

	t.Run("image", func(t *testing.T) {
		repo, _ := splitImage(loadCompose(t).Services["nines"].Image)
		if c.Image != repo {
			t.Errorf("StatefulSet image %q, want the compose file's %q", c.Image, repo)
		}
		if len(k.Images) != 1 || k.Images[0].Name != repo || k.Images[0].NewTag == "" {
			t.Errorf("kustomization images %+v: want %s with a newTag", k.Images, repo)
		}
	})
}

func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func isTrue(b *bool) bool { return b != nil && *b }

func intOrUnset(n *int) string {
	if n == nil {
		return "unset"
	}
	return strconv.Itoa(*n)
}

// checkK8sFile checks that the container path p is in a volume mounted
// into the container, as one of the volume's items.
func checkK8sFile(t *testing.T, d k8sObject, c k8sContainer, what, p string) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		rest, ok := strings.CutPrefix(p, m.MountPath+"/")
		if !ok {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			var items []k8sItem
			switch {
			case v.ConfigMap != nil:
				items = v.ConfigMap.Items
			case v.Secret != nil:
				items = v.Secret.Items
			}
			if !slices.ContainsFunc(items, func(i k8sItem) bool { return i.Path == rest }) {
				t.Errorf("%s: %s %s: volume %s has no item with path %s", k8sBase, what, p, v.Name, rest)
			}
			return
		}
		t.Errorf("%s: %s %s: volume %s is not declared", k8sBase, what, p, m.Name)
		return
	}
	t.Errorf("%s: %s %s: no volume is mounted there", k8sBase, what, p)
}

// TestDeploySystemd checks the unit: its credentials are loaded, it does
// not run as root, and it waits for nines' shutdown.
func TestDeploySystemd(t *testing.T) {
	unit := systemdUnit(t)
	inv := systemdInvocation(t)
	creds := map[string]bool{}
	for _, lc := range unit["LoadCredential"] {
		name, _, _ := strings.Cut(lc, ":")
		creds[name] = true
	}
	for name, val := range inv.flags(t) {
		if !isFileFlag(name) {
			continue
		}
		if cred, ok := strings.CutPrefix(val, "${CREDENTIALS_DIRECTORY}/"); ok {
			if !creds[cred] {
				t.Errorf("--%s reads credential %s, which no LoadCredential= loads", name, cred)
			}
		} else if !strings.HasPrefix(val, "/etc/nines/") {
			t.Errorf("--%s=%s: want a credential or a file under /etc/nines/", name, val)
		}
	}
	if !slices.Contains(unit["DynamicUser"], "yes") && (len(unit["User"]) == 0 || slices.Contains(unit["User"], "root")) {
		t.Error("the unit runs as root: want DynamicUser=yes or User=nines")
	}
	if !slices.Contains(unit["ProtectSystem"], "strict") {
		t.Error("want ProtectSystem=strict")
	}
	if ef := unit["EnvironmentFile"]; len(ef) != 1 || strings.TrimPrefix(ef[0], "-") != "/etc/nines/env" {
		t.Errorf("EnvironmentFile %q, want /etc/nines/env (deploy/systemd/nines.env.example)", ef)
	}
	def, _ := serveFlagIndex().defaultOf("web.shutdown-timeout")
	want, _ := time.ParseDuration(def)
	stop := unit["TimeoutStopSec"]
	if got, err := time.ParseDuration(strings.Join(stop, "")); err != nil || got <= want {
		t.Errorf("TimeoutStopSec %q, want more than --web.shutdown-timeout (%s)", stop, def)
	}
}

// dockerfile reads the final stage's instructions of the Dockerfile, with
// continuation lines joined: instruction → arguments.
func dockerfile(t *testing.T) map[string][]string {
	t.Helper()
	return dockerfileFinal(t, "Dockerfile")
}

// dockerfileFinal reads the final stage of the Dockerfile at p.
func dockerfileFinal(t *testing.T, p string) map[string][]string {
	t.Helper()
	var ins map[string][]string
	var cont string
	sc := bufio.NewScanner(bytes.NewReader(readRepoFile(t, p)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cont == "") {
			continue
		}
		line = cont + line
		if strings.HasSuffix(line, `\`) {
			cont = strings.TrimSuffix(line, `\`) + " "
			continue
		}
		cont = ""
		word, args, _ := strings.Cut(line, " ")
		word = strings.ToUpper(word)
		if word == "FROM" {
			ins = map[string][]string{} // a new stage
		}
		if ins != nil {
			ins[word] = append(ins[word], strings.TrimSpace(args))
		}
	}
	return ins
}

// dockerfileUser is the final stage's numeric USER.
func dockerfileUser(t *testing.T) string {
	t.Helper()
	u := dockerfile(t)["USER"]
	if len(u) != 1 {
		t.Fatalf("Dockerfile: want one USER in the final stage, got %q", u)
	}
	uid, _, _ := strings.Cut(u[0], ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Fatalf("Dockerfile: USER %s: want a numeric non-root UID", u[0])
	}
	return uid
}

// TestDeployDockerfile checks the image: nines' port, a health check on
// nines' liveness route, `nines serve` by default as a non-root user, and a
// version stamp into variables that exist.
func TestDeployDockerfile(t *testing.T) {
	port := defaultListenPort(t)
	all := dockerfileAll(t)
	ins := dockerfile(t)
	dockerfileUser(t)
	if got := ins["EXPOSE"]; len(got) != 1 || got[0] != port {
		t.Errorf("EXPOSE %q, want nines' port %s", got, port)
	}
	hc := ins["HEALTHCHECK"]
	if len(hc) != 1 {
		t.Fatalf("want one HEALTHCHECK, got %q", hc)
	}
	_, cmd, _ := strings.Cut(hc[0], "CMD ")
	var argv []string
	if err := json.Unmarshal([]byte(cmd), &argv); err != nil {
		t.Fatalf("HEALTHCHECK CMD %s: want the exec (JSON) form: %v", cmd, err)
	}
	hcURL := ""
	for _, a := range argv {
		if strings.HasPrefix(a, "http") {
			hcURL = a
		}
	}
	checkProbeURL(t, "Dockerfile HEALTHCHECK", "liveness", hcURL, "127.0.0.1", port)
	if got := ins["ENTRYPOINT"]; len(got) != 1 || got[0] != `["nines"]` {
		t.Errorf("ENTRYPOINT %q, want [\"nines\"]", got)
	}
	if got := ins["CMD"]; len(got) != 1 || got[0] != `["serve"]` {
		t.Errorf("CMD %q, want [\"serve\"]", got)
	}

	// -X github.com/prometheus/common/version.NAME=… sets the build
	// information --version prints and nines_build_info carries.
	build := strings.Join(all["GOBUILD"], " ")
	xs := regexp.MustCompile(`-X github\.com/prometheus/common/version\.(\w+)=`).FindAllStringSubmatch(build, -1)
	if len(xs) == 0 || !strings.Contains(build, "CGO_ENABLED=0") {
		t.Errorf("the go build neither stamps the version (-X github.com/prometheus/common/version.Version=…) nor builds static (CGO_ENABLED=0): %s", build)
	}
	known := map[string]bool{"Version": true, "Revision": true, "Branch": true, "BuildUser": true, "BuildDate": true}
	for _, x := range xs {
		if !known[x[1]] {
			t.Errorf("-ldflags -X github.com/prometheus/common/version.%s: no such build variable", x[1])
		}
	}
	if !slices.ContainsFunc(xs, func(x []string) bool { return x[1] == "Version" }) {
		t.Error("the go build does not stamp github.com/prometheus/common/version.Version")
	}
}

// dockerfileAll reads every stage's instructions.
func dockerfileAll(t *testing.T) map[string][]string {
	t.Helper()
	all := map[string][]string{}
	var cont string
	sc := bufio.NewScanner(bytes.NewReader(readRepoFile(t, "Dockerfile")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cont == "") {
			continue
		}
		line = cont + line
		if strings.HasSuffix(line, `\`) {
			cont = strings.TrimSuffix(line, `\`) + " "
			continue
		}
		cont = ""
		word, args, _ := strings.Cut(line, " ")
		if strings.EqualFold(word, "RUN") && strings.Contains(args, "go build") {
			all["GOBUILD"] = append(all["GOBUILD"], args)
		}
	}
	return all
}

// TestDeployGrafana checks Grafana's provisioning against the compose
// file: the directories it mounts exist, the dashboards provider reads a
// mounted directory of dashboards, and the datasources point at the
// compose services with the secrets Grafana has.
func TestDeployGrafana(t *testing.T) {
	c := loadCompose(t)
	g := c.Services["grafana"]
	mounts := g.mounts(t, "grafana")
	for _, m := range mounts {
		if strings.HasPrefix(m.source, ".") && !repoFileExists(m.source) {
			t.Skipf("%s does not exist yet (Grafana provisioning and dashboards come with issue 5); run this test again once it does", m.source)
		}
	}
	var provisioning string
	for _, m := range mounts {
		if m.target == "/etc/grafana/provisioning" {
			provisioning = path.Clean(m.source)
		}
	}
	if provisioning == "" {
		t.Fatal("grafana: nothing mounted at /etc/grafana/provisioning")
	}

	// Dashboards providers read directories that are mounted and hold
	// dashboards.
	providers, _ := filepath.Glob(repoFile(provisioning + "/dashboards/*.y*ml"))
	if len(providers) == 0 {
		t.Errorf("%s/dashboards has no provider file", provisioning)
	}
	for _, f := range providers {
		var p struct {
			Providers []struct {
				Name    string `yaml:"name"`
				Options struct {
					Path string `yaml:"path"`
				} `yaml:"options"`
			} `yaml:"providers"`
		}
		decodeYAML(t, provisioning+"/dashboards/"+filepath.Base(f), &p)
		for _, pr := range p.Providers {
			src := ""
			for _, m := range mounts {
				if rest, ok := strings.CutPrefix(pr.Options.Path, m.target); ok && (rest == "" || strings.HasPrefix(rest, "/")) && strings.HasPrefix(m.source, ".") {
					src = path.Join(m.source, rest)
				}
			}
			if src == "" {
				t.Errorf("dashboards provider %q reads %s, which docker-compose.yml does not mount from the repository", pr.Name, pr.Options.Path)
				continue
			}
			var dashboards []string
			_ = filepath.WalkDir(repoFile(src), func(p string, d fs.DirEntry, err error) error {
				if err == nil && strings.HasSuffix(p, ".json") {
					dashboards = append(dashboards, p)
				}
				return nil
			})
			if len(dashboards) == 0 {
				t.Errorf("dashboards provider %q reads %s (%s in the repository), which holds no dashboard", pr.Name, pr.Options.Path, src)
			}
		}
	}

	// Datasources reach compose services, with secrets Grafana has.
	dsFiles, _ := filepath.Glob(repoFile(provisioning + "/datasources/*.y*ml"))
	if len(dsFiles) == 0 {
		t.Errorf("%s/datasources has no datasource file", provisioning)
	}
	fileRef := regexp.MustCompile(`\$__file\{([^}]*)\}`)
	for _, f := range dsFiles {
		rel := provisioning + "/datasources/" + filepath.Base(f)
		raw := string(readRepoFile(t, rel))
		for _, m := range fileRef.FindAllStringSubmatch(raw, -1) {
			sec, ok := strings.CutPrefix(m[1], "/run/secrets/")
			if !ok || !slices.Contains(g.Secrets, sec) {
				t.Errorf("%s reads %s, which is not one of grafana's secrets %v", rel, m[1], g.Secrets)
			}
		}
		var ds struct {
			Datasources []struct {
				Name     string         `yaml:"name"`
				Type     string         `yaml:"type"`
				URL      string         `yaml:"url"`
				JSONData map[string]any `yaml:"jsonData"`
			} `yaml:"datasources"`
		}
		decodeYAML(t, rel, &ds)
		for _, d := range ds.Datasources {
			host := ""
			switch d.Type {
			case "grafana-clickhouse-datasource":
				host = fmt.Sprint(d.JSONData["host"])
				if h, ok := d.JSONData["server"]; ok && host == "<nil>" {
					host = fmt.Sprint(h)
				}
				if u := fmt.Sprint(d.JSONData["username"]); u != "<nil>" {
					if _, ok := clickhouseUsers(t)[u]; !ok {
						t.Errorf("%s: datasource %q logs in as %q, not a user of users.d/nines.xml", rel, d.Name, u)
					}
				}
			case "prometheus":
				u, err := url.Parse(d.URL)
				if err != nil {
					t.Errorf("%s: datasource %q: url %q: %v", rel, d.Name, d.URL, err)
					continue
				}
				host = u.Hostname()
			default:
				continue
			}
			if _, ok := c.Services[host]; !ok {
				t.Errorf("%s: datasource %q points at %q, not a service of docker-compose.yml", rel, d.Name, host)
			}
		}
	}
}

// TestDeployYAMLParses parses every YAML file under deploy/ and
// docker-compose.yml, every document of each: the tools of deploy/check
// read only some of them.
func TestDeployYAMLParses(t *testing.T) {
	files := []string{repoFile("docker-compose.yml")}
	err := filepath.WalkDir(repoFile("deploy"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "templates" && strings.Contains(filepath.ToSlash(p), "deploy/helm/") {
			return filepath.SkipDir // Helm templates: YAML once rendered (TestHelmRendersTheBase)
		}
		if ext := filepath.Ext(p); !d.IsDir() && (ext == ".yml" || ext == ".yaml") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for i := 1; ; i++ {
			var v any
			if err := dec.Decode(&v); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Errorf("%s (document %d): %v", f, i, err)
				break
			}
		}
	}
	if len(files) < 20 {
		t.Errorf("found only %d YAML files under deploy/: is the walk right?", len(files))
	}
}
