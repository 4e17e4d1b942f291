package main

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const helmChart = "deploy/helm/nines"

// TestHelmChartFiles: the chart runs the release's image and ships the
// same configuration, catalog, rules and dashboards as the rest of
// deploy/ (files/ links to them; a copy must stay equal).
func TestHelmChartFiles(t *testing.T) {
	var chart struct {
		AppVersion string `yaml:"appVersion"`
		Version    string `yaml:"version"`
	}
	decodeYAML(t, helmChart+"/Chart.yaml", &chart)
	if want := "v" + releaseVersion(t); chart.AppVersion != want {
		t.Errorf("Chart.yaml appVersion %q, want the release's %s (VERSION)", chart.AppVersion, want)
	}
	var values struct {
		Image struct {
			Repository string `yaml:"repository"`
			Tag        string `yaml:"tag"`
		} `yaml:"image"`
	}
	decodeYAML(t, helmChart+"/values.yaml", &values)
	if repo, _ := splitImage(loadCompose(t).Services["nines"].Image); values.Image.Repository != repo || values.Image.Tag != "" {
		t.Errorf("values image %+v: want repository %s and no tag (appVersion)", values.Image, repo)
	}
	same := map[string]string{
		"files/config.yml":                  "deploy/nines/config.yml",
		"files/catalog.yml":                 "deploy/catalog/catalog.yml",
		"files/backstage-catalog-info.yaml": "deploy/catalog/backstage/catalog-info.yaml",
		"files/nines-rules.yml":             "deploy/prometheus/nines-rules.yml",
	}
	dashboards, err := filepath.Glob(repoFile("deploy/grafana/dashboards/*.json"))
	if err != nil || len(dashboards) == 0 {
		t.Fatalf("no dashboards in deploy/grafana/dashboards: %v", err)
	}
	for _, d := range dashboards {
		same["files/dashboards/"+filepath.Base(d)] = "deploy/grafana/dashboards/" + filepath.Base(d)
	}
	for in, orig := range same {
		if !repoFileExists(helmChart + "/" + in) {
			t.Errorf("%s/%s is missing: ln -s to %s", helmChart, in, orig)
		} else if !bytes.Equal(readRepoFile(t, helmChart+"/"+in), readRepoFile(t, orig)) {
			t.Errorf("%s/%s differs from %s", helmChart, in, orig)
		}
	}
}

// helmBinary is helm (NINES_TEST_HELM, else on PATH); `make test` builds
// it from the Go module proxy (deploy/dev/go-tool).
func helmBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NINES_TEST_HELM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	msg := "helm not found: set NINES_TEST_HELM (make test builds it: deploy/dev/go-tool helm)"
	if os.Getenv("NINES_REQUIRE_INTEGRATION") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// helmTemplate renders the chart as release name and returns its objects
// by kind and name.
func helmTemplate(t *testing.T, name string, args ...string) map[string]map[string]map[string]any {
	t.Helper()
	cmd := exec.Command(helmBinary(t), append([]string{"template", name, "../../" + helmChart,
		"--namespace", "monitoring", "--kube-version", "1.31.0"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr.String())
	}
	objs := map[string]map[string]map[string]any{}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o map[string]any
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("helm template output: %v", err)
		}
		if o == nil {
			continue
		}
		kind, _ := o["kind"].(string)
		meta, _ := o["metadata"].(map[string]any)
		n, _ := meta["name"].(string)
		if objs[kind] == nil {
			objs[kind] = map[string]map[string]any{}
		}
		objs[kind][n] = o
	}
	return objs
}

// dig walks nested maps and lists: dig(o, "spec", "template", 0).
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			s, _ := v.([]any)
			if k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

// TestHelmRendersTheBase: what the chart renders runs nines as the
// kustomize base does (the same container: arguments, environment, mounts,
// probes, security), keeps each replica's spool on a claim (an emptyDir
// only when persistence is off), holds nines' rules as a PrometheusRule,
// and one ConfigMap per dashboard for Grafana's sidecar.
func TestHelmRendersTheBase(t *testing.T) {
	_, base := loadK8sBase(t)
	objs := helmTemplate(t, "nines")
	sts := objs["StatefulSet"]["nines"]
	if sts == nil {
		t.Fatalf("no StatefulSet nines among %v", slices.Collect(maps.Keys(objs)))
	}

	t.Run("container", func(t *testing.T) {
		want, _ := dig(base["StatefulSet"].raw, "spec", "template", "spec", "containers", 0).(map[string]any)
		got, _ := dig(sts, "spec", "template", "spec", "containers", 0).(map[string]any)
		if image := got["image"]; image != "ghcr.io/ninesops/nines:v"+releaseVersion(t) {
			t.Errorf("image %v, want the release's", image)
		}
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if k == "image" {
				continue
			}
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("container %s:\n chart %v\n base  %v", k, got[k], want[k])
			}
		}
		for _, k := range []string{"securityContext", "terminationGracePeriodSeconds", "automountServiceAccountToken"} {
			g, w := dig(sts, "spec", "template", "spec", k), dig(base["StatefulSet"].raw, "spec", "template", "spec", k)
			if !reflect.DeepEqual(g, w) {
				t.Errorf("pod %s: chart %v, base %v", k, g, w)
			}
		}
	})

	t.Run("spool on a claim", func(t *testing.T) {
		if c := dig(sts, "spec", "volumeClaimTemplates", 0, "metadata", "name"); c != "data" {
			t.Errorf("volumeClaimTemplates[0] %v, want the claim data (mounted at /var/lib/nines)", c)
		}
		off := helmTemplate(t, "nines", "--set", "persistence.enabled=false")["StatefulSet"]["nines"]
		if dig(off, "spec", "volumeClaimTemplates") != nil {
			t.Error("persistence.enabled=false still has volumeClaimTemplates")
		}
		found := false
		for _, v := range dig(off, "spec", "template", "spec", "volumes").([]any) {
			if dig(v, "name") == "data" && dig(v, "emptyDir") != nil {
				found = true
			}
		}
		if !found {
			t.Error("persistence.enabled=false: no emptyDir volume data")
		}
	})

	t.Run("rules", func(t *testing.T) {
		var want map[string]any
		decodeYAML(t, "deploy/prometheus/nines-rules.yml", &want)
		pr := objs["PrometheusRule"]["nines"]
		if !reflect.DeepEqual(dig(pr, "spec", "groups"), want["groups"]) {
			t.Error("PrometheusRule spec.groups differ from deploy/prometheus/nines-rules.yml")
		}
	})

	t.Run("dashboards", func(t *testing.T) {
		files, _ := filepath.Glob(repoFile("deploy/grafana/dashboards/*.json"))
		got := map[string]string{}
		for _, cm := range objs["ConfigMap"] {
			if dig(cm, "metadata", "labels", "grafana_dashboard") != "1" {
				continue
			}
			for k, v := range dig(cm, "data").(map[string]any) {
				got[k], _ = v.(string)
			}
		}
		for _, f := range files {
			want := strings.TrimRight(string(readRepoFile(t, "deploy/grafana/dashboards/"+filepath.Base(f))), "\n")
			if got[filepath.Base(f)] != want {
				t.Errorf("dashboard %s: not in a ConfigMap labelled grafana_dashboard: \"1\", or different", filepath.Base(f))
			}
		}
		if len(got) != len(files) {
			t.Errorf("%d dashboard ConfigMaps, want %d", len(got), len(files))
		}
	})

	t.Run("job label", func(t *testing.T) {
		// The rules select job="nines": whatever the release's name, the
		// ServiceMonitor names the job after app.kubernetes.io/name.
		other := helmTemplate(t, "monitoring-stack")
		for name, sm := range other["ServiceMonitor"] {
			label, _ := dig(sm, "spec", "jobLabel").(string)
			for _, svc := range other["Service"] {
				if v := dig(svc, "metadata", "labels", label); v != "nines" {
					t.Errorf("ServiceMonitor %s: jobLabel %q gives job %v, want nines", name, label, v)
				}
			}
		}
		if len(other["ServiceMonitor"]) != 1 {
			t.Errorf("%d ServiceMonitors, want 1", len(other["ServiceMonitor"]))
		}
	})
}
