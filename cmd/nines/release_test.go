package main

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	promversion "github.com/prometheus/common/version"
)

// goreleaserConfig is the part of .goreleaser.yaml these tests read.
type goreleaserConfig struct {
	Builds []struct {
		ID      string   `yaml:"id"`
		Main    string   `yaml:"main"`
		Binary  string   `yaml:"binary"`
		Env     []string `yaml:"env"`
		Goos    []string `yaml:"goos"`
		Goarch  []string `yaml:"goarch"`
		Ldflags []string `yaml:"ldflags"`
	} `yaml:"builds"`
	DockersV2 []struct {
		IDs        []string `yaml:"ids"`
		Dockerfile string   `yaml:"dockerfile"`
		Images     []string `yaml:"images"`
		Tags       []string `yaml:"tags"`
		Platforms  []string `yaml:"platforms"`
	} `yaml:"dockers_v2"`
}

// releaseTagTemplate is the image tag a release publishes: its git tag,
// vX.Y.Z.
const releaseTagTemplate = "v{{ .Version }}"

// releaseVersion is VERSION: the version the next (or current) release
// is tagged with, which the deployments reference.
func releaseVersion(t *testing.T) string {
	t.Helper()
	v := strings.TrimSpace(string(readRepoFile(t, "VERSION")))
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
		t.Fatalf("VERSION %q: want X.Y.Z (semantic versioning, CHANGELOG.md)", v)
	}
	return v
}

// versionVars are prometheus/common/version's variables that -X may set
// (a reference to each, so that a rename fails to compile).
var versionVars = map[string]*string{
	"Version": &promversion.Version, "Revision": &promversion.Revision, "Branch": &promversion.Branch,
	"BuildUser": &promversion.BuildUser, "BuildDate": &promversion.BuildDate,
}

// TestReleaseConfig: the release builds nines for Linux and macOS on
// amd64 and arm64, static, stamps the version into variables that exist,
// and publishes a multi-arch image under the name the deployments use.
func TestReleaseConfig(t *testing.T) {
	var c goreleaserConfig
	decodeYAML(t, ".goreleaser.yaml", &c)
	if len(c.Builds) != 1 {
		t.Fatalf(".goreleaser.yaml: %d builds, want one (nines)", len(c.Builds))
	}
	b := c.Builds[0]
	if b.Main != "./cmd/nines" || b.Binary != "nines" || !slices.Contains(b.Env, "CGO_ENABLED=0") {
		t.Errorf("build: main %q, binary %q, env %q: want ./cmd/nines, nines, CGO_ENABLED=0", b.Main, b.Binary, b.Env)
	}
	for _, want := range []struct {
		what string
		got  []string
		want []string
	}{
		{"goos", b.Goos, []string{"linux", "darwin"}},
		{"goarch", b.Goarch, []string{"amd64", "arm64"}},
	} {
		for _, w := range want.want {
			if !slices.Contains(want.got, w) {
				t.Errorf("build %s %q: want %s", want.what, want.got, w)
			}
		}
	}

	stamped := map[string]bool{}
	x := regexp.MustCompile(`-X ([\w./-]+)\.(\w+)=`)
	for _, m := range x.FindAllStringSubmatch(strings.Join(b.Ldflags, " "), -1) {
		pkg, name := m[1], m[2]
		switch pkg {
		case "github.com/prometheus/common/version":
			if versionVars[name] == nil {
				t.Errorf("ldflags -X %s.%s: no such variable (want one of %v)", pkg, name, slices.Sorted(maps.Keys(versionVars)))
			}
			stamped[name] = true
		default:
			t.Errorf("ldflags -X %s.%s: want prometheus/common/version's variables", pkg, name)
		}
	}
	for _, name := range []string{"Version", "Revision", "BuildDate"} {
		if !stamped[name] {
			t.Errorf("ldflags do not set github.com/prometheus/common/version.%s", name)
		}
	}

	if len(c.DockersV2) != 1 {
		t.Fatalf(".goreleaser.yaml: %d dockers_v2 images, want one", len(c.DockersV2))
	}
	d := c.DockersV2[0]
	repo, _ := splitImage(loadCompose(t).Services["nines"].Image)
	if !slices.Equal(d.Images, []string{repo}) {
		t.Errorf("dockers_v2 images %q, want the deployments' %s", d.Images, repo)
	}
	if !slices.Contains(d.Tags, releaseTagTemplate) {
		t.Errorf("dockers_v2 tags %q, want %s (the git tag, which the deployments reference)", d.Tags, releaseTagTemplate)
	}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		if !slices.Contains(d.Platforms, p) {
			t.Errorf("dockers_v2 platforms %q: want %s", d.Platforms, p)
		}
	}
	if !slices.Equal(d.IDs, []string{b.ID}) || d.Dockerfile != "Dockerfile.release" {
		t.Errorf("dockers_v2 ids %q, dockerfile %q: want [%s], Dockerfile.release", d.IDs, d.Dockerfile, b.ID)
	}
}

// TestReleaseImageMatchesDockerfile: the image the release publishes is
// the one `docker build .` makes (the final stage of Dockerfile), with the
// binary GoReleaser built copied in instead of compiled.
func TestReleaseImageMatchesDockerfile(t *testing.T) {
	src, rel := dockerfile(t), dockerfileFinal(t, "Dockerfile.release")
	// FROM alpine:${ALPINE_VERSION} → the ARG's default.
	args := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^ARG (\w+)=(\S+)$`).FindAllStringSubmatch(string(readRepoFile(t, "Dockerfile")), -1) {
		args[m[1]] = m[2]
	}
	from := os.Expand(src["FROM"][0], func(k string) string { return args[k] })
	if !slices.Equal(rel["FROM"], []string{from}) {
		t.Errorf("Dockerfile.release FROM %q, want Dockerfile's %q", rel["FROM"], from)
	}
	copyDest := func(copies []string) string {
		if len(copies) != 1 {
			return ""
		}
		f := strings.Fields(copies[0])
		return f[len(f)-1]
	}
	if d := copyDest(src["COPY"]); d == "" || copyDest(rel["COPY"]) != d || !strings.HasPrefix(rel["COPY"][0], "$TARGETPLATFORM/") {
		t.Errorf("COPY: Dockerfile %q, Dockerfile.release %q: want the binary from $TARGETPLATFORM/ to the same place", src["COPY"], rel["COPY"])
	}
	for _, ins := range []string{"RUN", "VOLUME", "USER", "EXPOSE", "HEALTHCHECK", "ENTRYPOINT", "CMD", "ENV", "WORKDIR", "LABEL"} {
		if !slices.Equal(src[ins], rel[ins]) {
			t.Errorf("%s: Dockerfile %q, Dockerfile.release %q", ins, src[ins], rel[ins])
		}
	}
}

// TestDeployImageIsReleased: compose and kustomize run the image a
// release publishes, ghcr.io/ninesops/nines:vVERSION, not a local tag.
func TestDeployImageIsReleased(t *testing.T) {
	want := strings.ReplaceAll(releaseTagTemplate, "{{ .Version }}", releaseVersion(t))
	if _, tag := splitImage(loadCompose(t).Services["nines"].Image); tag != want {
		t.Errorf("docker-compose.yml: nines image tag %q, want the release's %s", tag, want)
	}
	k, _ := loadK8sBase(t)
	for _, im := range k.Images {
		if im.NewTag != want {
			t.Errorf("%s: image %s newTag %q, want the release's %s", k8sBase, im.Name, im.NewTag, want)
		}
	}
}

// TestDeployToolsMatchCompose: deploy/check checks the shipped files with
// the promtool and amtool of the Prometheus and Alertmanager that
// docker-compose.yml runs (deploy/dev/tools), not only with Debian's.
func TestDeployToolsMatchCompose(t *testing.T) {
	tools := map[string]string{}
	for _, line := range strings.Split(string(readRepoFile(t, "deploy/dev/tools")), "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			tools[f[0]] = f[1]
		}
	}
	c := loadCompose(t)
	for _, tc := range []struct {
		service, tool, module string
		version               func(image string) string // the module version of an image tag
	}{
		// Prometheus 3.x.y is the Go module github.com/prometheus/prometheus v0.3xx.y.
		{"prometheus", "promtool-v3", "github.com/prometheus/prometheus/cmd/promtool", func(tag string) string {
			var major, minor, patch int
			if _, err := fmt.Sscanf(tag, "v%d.%d.%d", &major, &minor, &patch); err != nil {
				return "unparsable " + tag
			}
			return fmt.Sprintf("v0.%d%02d.%d", major, minor, patch)
		}},
		{"alertmanager", "amtool-v0.34", "github.com/prometheus/alertmanager/cmd/amtool", func(tag string) string { return tag }},
	} {
		_, tag := splitImage(c.Services[tc.service].Image)
		if want := tc.module + "@" + tc.version(tag); tools[tc.tool] != want {
			t.Errorf("deploy/dev/tools %s = %q, want %s (compose runs %s)", tc.tool, tools[tc.tool], want, c.Services[tc.service].Image)
		}
	}
}
