package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// clusterXML is the part of deploy/clickhouse/cluster/cluster.xml these
// tests read.
type clusterXML struct {
	RemoteServers struct {
		Clusters []struct {
			XMLName xml.Name
			Shards  []struct {
				InternalReplication bool `xml:"internal_replication"`
				Replicas            []struct {
					Host string `xml:"host"`
					Port string `xml:"port"`
				} `xml:"replica"`
			} `xml:"shard"`
		} `xml:",any"`
	} `xml:"remote_servers"`
	ZooKeeper []struct {
		Host string `xml:"host"`
	} `xml:"zookeeper>node"`
	Macros struct {
		Shard   string `xml:"shard"`
		Replica struct {
			FromEnv string `xml:"from_env,attr"`
		} `xml:"replica"`
	} `xml:"macros"`
}

// TestDeployComposeClusterProfile checks that the `cluster` profile of
// docker-compose.yml fits together: its nines runs with
// --clickhouse.cluster naming the cluster of cluster.xml, its DSN lists
// that cluster's servers in order, those are the profile's ClickHouse
// services, each mounting cluster.xml and nines' user and saying its own
// {replica}, and Keeper is the profile's keeper service.
func TestDeployComposeClusterProfile(t *testing.T) {
	c := loadCompose(t)
	// What composeService leaves out: profiles and host names.
	var extra struct {
		Services map[string]struct {
			Profiles []string `yaml:"profiles"`
			Hostname string   `yaml:"hostname"`
		} `yaml:"services"`
	}
	decodeYAML(t, "docker-compose.yml", &extra)
	var cx clusterXML
	if err := xml.Unmarshal(readRepoFile(t, "deploy/clickhouse/cluster/cluster.xml"), &cx); err != nil {
		t.Fatalf("cluster.xml: %v", err)
	}
	if len(cx.RemoteServers.Clusters) != 1 || len(cx.RemoteServers.Clusters[0].Shards) != 1 {
		t.Fatalf("cluster.xml: want one cluster of one shard, got %+v", cx.RemoteServers)
	}
	cluster := cx.RemoteServers.Clusters[0]
	shard := cluster.Shards[0]
	if !shard.InternalReplication || len(shard.Replicas) < 2 {
		t.Errorf("cluster.xml: want internal_replication and at least two replicas, got %+v", shard)
	}
	var replicas []string
	for _, r := range shard.Replicas {
		replicas = append(replicas, r.Host+":"+r.Port)
	}

	s, ok := c.Services["nines-cluster"]
	if !ok {
		t.Fatal("docker-compose.yml: no service nines-cluster")
	}
	env := map[string]string{}
	for k, v := range s.Environment {
		env[k] = v
	}
	for _, f := range s.EnvFile {
		for k, v := range envFileValues(t, f) {
			env[k] = v
		}
	}
	inv := invocation{where: "docker-compose.yml (nines-cluster)", args: s.Command, env: env}
	set := inv.flags(t)
	if set == nil {
		return
	}
	if got := set["clickhouse.cluster"]; got != cluster.XMLName.Local {
		t.Errorf("nines-cluster runs with --clickhouse.cluster=%q, want cluster.xml's %q", got, cluster.XMLName.Local)
	}
	u, err := url.Parse(set["clickhouse.dsn"])
	if err != nil {
		t.Fatalf("nines-cluster DSN: %v", err)
	}
	if hosts := strings.Split(u.Host, ","); !slices.Equal(hosts, replicas) {
		t.Errorf("nines-cluster DSN lists %v, want cluster.xml's replicas in order %v", hosts, replicas)
	}
	if u.Path != "/nines" {
		t.Errorf("nines-cluster DSN database %q, want /nines", u.Path)
	}

	for _, r := range shard.Replicas {
		ch, ok := c.Services[r.Host]
		if !ok {
			t.Errorf("cluster.xml replica %s is no compose service", r.Host)
			continue
		}
		if !slices.Contains(extra.Services[r.Host].Profiles, "cluster") {
			t.Errorf("%s is not in the cluster profile", r.Host)
		}
		if extra.Services[r.Host].Hostname != r.Host || ch.Environment[cx.Macros.Replica.FromEnv] != r.Host {
			t.Errorf("%s: hostname %q and %s=%q, want both %q (its {replica} and interserver host)",
				r.Host, extra.Services[r.Host].Hostname, cx.Macros.Replica.FromEnv, ch.Environment[cx.Macros.Replica.FromEnv], r.Host)
		}
		var targets []string
		for _, m := range ch.mounts(t, r.Host) {
			targets = append(targets, m.source+"→"+m.target)
		}
		for _, want := range []string{
			"./deploy/clickhouse/cluster/cluster.xml→/etc/clickhouse-server/config.d/cluster.xml",
			"./deploy/clickhouse/users.d/nines.xml→/etc/clickhouse-server/users.d/nines.xml",
		} {
			if !slices.Contains(targets, want) {
				t.Errorf("%s does not mount %s (mounts %v)", r.Host, want, targets)
			}
		}
		if cond := s.DependsOn[r.Host]; cond != "service_healthy" {
			t.Errorf("nines-cluster depends on %s with condition %q, want service_healthy", r.Host, cond)
		}
	}
	if len(cx.ZooKeeper) != 1 {
		t.Fatalf("cluster.xml: want one Keeper node, got %v", cx.ZooKeeper)
	}
	if k, ok := extra.Services[cx.ZooKeeper[0].Host]; !ok || !slices.Contains(k.Profiles, "cluster") {
		t.Errorf("cluster.xml's Keeper %q is no service of the cluster profile", cx.ZooKeeper[0].Host)
	}
}

const k8sReplicated = "deploy/kubernetes/overlays/replicated-clickhouse"

// TestDeployK8sReplicatedClickHouse checks the overlay that runs a
// replicated ClickHouse beside nines: its copies of the ClickHouse files
// are the repository's, its cluster.xml names the StatefulSet's pods
// (clickhouse-N.clickhouse, one per replica) and Keeper's, the pods give
// the macro and interserver host the config reads, and nines' cluster
// name (from the external-clickhouse overlay it builds on) is the
// cluster's.
func TestDeployK8sReplicatedClickHouse(t *testing.T) {
	copies := map[string]string{
		"files/config.xml": "deploy/clickhouse/config.d/nines.xml",
		"files/users.xml":  "deploy/clickhouse/users.d/nines.xml",
		"files/keeper.xml": "deploy/clickhouse/cluster/keeper.xml",
	}
	for copy, orig := range copies {
		want := string(readRepoFile(t, orig))
		if copy == "files/keeper.xml" {
			want = strings.Replace(want, "<hostname>keeper</hostname>", "<hostname>clickhouse-keeper-0.clickhouse-keeper</hostname>", 1)
		}
		if got := string(readRepoFile(t, k8sReplicated+"/"+copy)); got != want {
			t.Errorf("%s/%s differs from %s: copy it again", k8sReplicated, copy, orig)
		}
	}

	var cx clusterXML
	if err := xml.Unmarshal(readRepoFile(t, k8sReplicated+"/files/cluster.xml"), &cx); err != nil {
		t.Fatalf("cluster.xml: %v", err)
	}
	objs := map[string]map[string]any{} // kind/name → object
	for _, f := range []string{"clickhouse.yaml", "keeper.yaml"} {
		dec := yaml.NewDecoder(bytes.NewReader(readRepoFile(t, k8sReplicated+"/"+f)))
		for {
			var o map[string]any
			if err := dec.Decode(&o); err != nil {
				break
			}
			md, _ := o["metadata"].(map[string]any)
			objs[fmt.Sprint(o["kind"], "/", md["name"])] = o
		}
	}
	get := func(o any, path ...string) any {
		for _, p := range path {
			m, ok := o.(map[string]any)
			if !ok {
				return nil
			}
			o = m[p]
		}
		return o
	}
	ch, ok := objs["StatefulSet/clickhouse"]
	if !ok || objs["Service/clickhouse"] == nil || get(ch, "spec", "serviceName") != "clickhouse" {
		t.Fatalf("%s: want StatefulSet clickhouse with the headless Service clickhouse", k8sReplicated)
	}
	replicas, _ := get(ch, "spec", "replicas").(int)
	if len(cx.RemoteServers.Clusters) != 1 || len(cx.RemoteServers.Clusters[0].Shards) != 1 {
		t.Fatalf("cluster.xml: want one cluster of one shard")
	}
	cluster := cx.RemoteServers.Clusters[0]
	var hosts []string
	for _, r := range cluster.Shards[0].Replicas {
		hosts = append(hosts, r.Host+":"+r.Port)
	}
	var want []string
	for i := range replicas {
		want = append(want, fmt.Sprintf("clickhouse-%d.clickhouse:9000", i))
	}
	if !slices.Equal(hosts, want) || replicas < 2 {
		t.Errorf("cluster.xml replicas %v, want one per pod of the StatefulSet (%d): %v", hosts, replicas, want)
	}
	if len(cx.ZooKeeper) != 1 || cx.ZooKeeper[0].Host != "clickhouse-keeper-0.clickhouse-keeper" ||
		objs["StatefulSet/clickhouse-keeper"] == nil || get(objs["StatefulSet/clickhouse-keeper"], "spec", "serviceName") != "clickhouse-keeper" {
		t.Errorf("cluster.xml's Keeper %v is not the StatefulSet clickhouse-keeper's pod", cx.ZooKeeper)
	}
	containers, _ := get(ch, "spec", "template", "spec", "containers").([]any)
	envs := map[string]bool{}
	for _, c := range containers {
		list, _ := get(c, "env").([]any)
		for _, e := range list {
			envs[fmt.Sprint(get(e, "name"))] = true
		}
	}
	for _, name := range []string{cx.Macros.Replica.FromEnv, "INTERSERVER_HOST"} {
		if !envs[name] {
			t.Errorf("the clickhouse pods do not set %s, which cluster.xml reads", name)
		}
	}

	var k kustomization
	decodeYAML(t, k8sReplicated+"/kustomization.yaml", &k)
	if !slices.Contains(k.Resources, "../external-clickhouse") {
		t.Errorf("%s does not build on ../external-clickhouse (resources %v)", k8sReplicated, k.Resources)
	}
	for _, inv := range k8sInvocations(t) {
		if inv.where != k8sOverlay {
			continue
		}
		if got := inv.flags(t)["clickhouse.cluster"]; got != cluster.XMLName.Local {
			t.Errorf("nines runs with --clickhouse.cluster=%q, want cluster.xml's %q", got, cluster.XMLName.Local)
		}
	}
}
