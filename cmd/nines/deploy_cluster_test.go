package main

import (
	"encoding/xml"
	"net/url"
	"slices"
	"strings"
	"testing"
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
