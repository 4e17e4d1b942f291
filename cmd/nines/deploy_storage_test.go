package main

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"
)

// stateDirFlags name where `nines serve` keeps state on disk: its spool
// (--spool.dir), or the directory it is kept under (--storage.path).
var stateDirFlags = []string{"storage.path", "spool.dir"}

// stateDirs are the directories the invocation makes nines write to.
func (inv invocation) stateDirs(t *testing.T) []string {
	t.Helper()
	set := inv.flags(t)
	var dirs []string
	for _, f := range stateDirFlags {
		if v := set[f]; v != "" {
			dirs = append(dirs, v)
		}
	}
	if len(dirs) == 0 {
		t.Errorf("%s: no --%s: the spool is off, or in the container's own (lost) filesystem", inv.where, strings.Join(stateDirFlags, " or --"))
	}
	return dirs
}

// under reports whether p is dir or below it.
func under(p, dir string) bool {
	p, dir = path.Clean(p), path.Clean(dir)
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// TestDeployStoragePersistent: every shipped deployment gives nines' spool
// a directory that outlives the process: a named volume in compose, a
// PersistentVolumeClaim per replica in Kubernetes, a StateDirectory= for
// systemd (README: what the spool survives).
func TestDeployStoragePersistent(t *testing.T) {
	t.Run("compose", func(t *testing.T) {
		c := loadCompose(t)
		inv := composeInvocation(t, c)
		for _, dir := range inv.stateDirs(t) {
			var m *mount
			for _, mm := range c.Services["nines"].mounts(t, inv.where) {
				if under(dir, mm.target) && (m == nil || len(mm.target) > len(m.target)) {
					m = &mm
				}
			}
			switch {
			case m == nil:
				t.Errorf("%s: %s is on no volume: the container's filesystem is read-only and lost with it", inv.where, dir)
			case strings.ContainsAny(m.source, "./~"):
				t.Errorf("%s: %s is on the bind mount %s: want a named volume (owned by the image's user)", inv.where, dir, m.source)
			default:
				if _, ok := c.Volumes[m.source]; !ok {
					t.Errorf("%s: volume %s is not declared under volumes:", inv.where, m.source)
				}
				// An empty named volume takes the image directory's owner:
				// the Dockerfile must create it for the user nines runs as.
				if !slices.Contains(dockerfile(t)["VOLUME"], m.target) {
					t.Errorf("Dockerfile: no VOLUME %s (created for USER %s), where compose mounts %s", m.target, dockerfileUser(t), m.source)
				}
				if run := strings.Join(dockerfile(t)["RUN"], "\n"); !strings.Contains(run, "-o "+dockerfileUser(t)) || !strings.Contains(run, m.target) {
					t.Errorf("Dockerfile: %s is not created owned by USER %s", m.target, dockerfileUser(t))
				}
			}
		}
	})

	t.Run("kubernetes", func(t *testing.T) {
		_, objs := loadK8sBase(t)
		sts := objs["StatefulSet"]
		c := ninesContainer(t, sts)
		spec, _ := sts.raw["spec"].(map[string]any)
		claims := map[string]bool{}
		for _, v := range asSlice(spec["volumeClaimTemplates"]) {
			meta, _ := v.(map[string]any)["metadata"].(map[string]any)
			claims[fmt.Sprint(meta["name"])] = true
		}
		for _, inv := range k8sInvocations(t) {
			for _, dir := range inv.stateDirs(t) {
				var vol, at string
				for _, m := range c.VolumeMounts {
					if under(dir, m.MountPath) && len(m.MountPath) > len(at) {
						vol, at = m.Name, m.MountPath
					}
				}
				if vol == "" {
					t.Errorf("%s: %s is on no volume: the root filesystem is read-only", inv.where, dir)
				} else if !claims[vol] {
					t.Errorf("%s: %s is on volume %s, which is no volumeClaimTemplate: an emptyDir is lost with the pod", inv.where, dir, vol)
				}
			}
		}
	})

	t.Run("systemd", func(t *testing.T) {
		unit := systemdUnit(t)
		inv := systemdInvocation(t)
		if !slices.Contains(unit["ProtectSystem"], "strict") {
			t.Error("want ProtectSystem=strict")
		}
		var states []string
		for _, s := range unit["StateDirectory"] {
			for _, d := range strings.Fields(s) {
				states = append(states, "/var/lib/"+d)
			}
		}
		for _, dir := range inv.stateDirs(t) {
			if !slices.ContainsFunc(states, func(s string) bool { return under(dir, s) }) {
				t.Errorf("%s: %s is in no StateDirectory= (%v): ProtectSystem=strict makes it read-only", inv.where, dir, states)
			}
		}
	})
}
