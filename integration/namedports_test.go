package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/testenv"
)

// TestNamedPorts: two instances of one service, each with a metrics port announced by name
// and tags. Real CoreDNS answers the service's A and SRV queries with the main port only
// (no duplicate from the named-port records below it), the SRV query of
// _metrics._tcp.NAME with every instance's metrics port whose targets resolve to the
// instance (what Prometheus' dns_sd_configs reads), and TXT with each instance's image and
// tags. An etcdctl del of a named-port record is back within a second; maintenance takes
// all of an instance's records away and leaves the other's.
func TestNamedPorts(t *testing.T) {
	testenv.Need(t, "etcdctl")
	e := newDepEnv(t)
	ip := map[string]string{"a": "127.0.0.2", "b": "127.0.0.3"}
	mport := testenv.FreePort(t)
	tags := map[string]string{"a": "canary", "b": "stable"}
	apply := func(inst string, extra ...string) {
		t.Helper()
		e.mustApply(t, e.opts(inst, e.images["v1"], append([]string{
			"--ports", fmt.Sprintf("%s:%d:8080", ip[inst], mport), "--named-ports", "metrics=" + strconv.Itoa(mport),
			"--tags", tags[inst]}, extra...)...)...)
	}
	apply("a")
	apply("b")
	metrics := "_metrics._tcp.dep." + upDomain
	testenv.Eventually(t, 30*time.Second, "both instances' metrics ports in SRV", func() bool {
		return len(e.dns.Dig(t, metrics, "SRV")) == 2
	})

	if got := sorted(e.dns.Dig(t, "dep."+upDomain, "A")); !slices.Equal(got, []string{"127.0.0.2", "127.0.0.3"}) {
		t.Errorf("A dep = %v, want each instance once", got)
	}
	for _, l := range e.dns.Dig(t, "dep."+upDomain, "SRV") {
		if f := strings.Fields(l); len(f) != 4 || f[2] != strconv.Itoa(e.port) {
			t.Errorf("SRV dep answers %q, want only the main port %d", l, e.port)
		}
	}
	if n := len(e.dns.Dig(t, "dep."+upDomain, "SRV")); n != 2 {
		t.Errorf("SRV dep has %d answers, want 2", n)
	}
	// Prometheus' dns_sd_configs (type SRV) scrapes TARGET:PORT of each answer, resolving
	// TARGET with A/AAAA.
	for _, l := range e.dns.Dig(t, metrics, "SRV") {
		f := strings.Fields(l)
		if len(f) != 4 || f[2] != strconv.Itoa(mport) {
			t.Fatalf("SRV %s answers %q, want port %d", metrics, l, mport)
		}
		inst, _, _ := strings.Cut(f[3], ".")
		if got := e.dns.Dig(t, f[3], "A"); !slices.Equal(got, []string{ip[inst]}) {
			t.Errorf("A %s = %v, want [%s]", f[3], got, ip[inst])
		}
		url := fmt.Sprintf("http://%s:%s/", ip[inst], f[2])
		if code, _, err := testenv.HTTPGet(upHTTP, url); err != nil || code != 200 {
			t.Errorf("scrape target %s: %d %v", url, code, err)
		}
	}
	txt := strings.Join(e.dns.Dig(t, "dep."+upDomain, "TXT"), "\n")
	for _, inst := range []string{"a", "b"} {
		want := fmt.Sprintf(`"instance=%s image=%s tags=%s"`, inst, e.images["v1"], tags[inst])
		if !strings.Contains(txt, want) {
			t.Errorf("TXT dep = %s, want %s in it", txt, want)
		}
	}

	// rundock upstreams picks the named port and the tagged instances.
	n := upStartNginx(t, "server {\n    listen 80;\n    location /metrics { proxy_pass http://docker_dep_metrics; }\n"+
		"    location / { proxy_pass http://docker_dep_canary; }\n}\n",
		[]byte("upstream docker_dep_metrics { server 127.0.0.1:1 down; }\nupstream docker_dep_canary { server 127.0.0.1:1 down; }\n"))
	cfg := filepath.Join(t.TempDir(), "upstreams.yml")
	if err := os.WriteFile(cfg, []byte("allow_networks: [127.0.0.0/8]\nservices:\n  dep_metrics: {service: dep, port_name: metrics}\n"+
		"  dep_canary: {service: dep, tags: [canary]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(e.bin, "upstreams", "--once", "--etcd-endpoints", e.etcd.Endpoint, "--config", cfg,
		"--output", n.Output, "--check-cmd", n.CheckCmd, "--reload-cmd", n.ReloadCmd).CombinedOutput(); err != nil {
		t.Fatalf("rundock upstreams --once: %v\n%s", err, out)
	}
	conf := n.installed(t)
	for _, want := range []string{
		fmt.Sprintf("upstream docker_dep_metrics {\n    server 127.0.0.2:%d", mport), fmt.Sprintf("server 127.0.0.3:%d", mport),
		fmt.Sprintf("upstream docker_dep_canary {\n    server 127.0.0.2:%d", e.port),
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("upstreams lack %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, fmt.Sprintf("127.0.0.3:%d", e.port)) {
		t.Errorf("the canary upstream has the untagged instance b:\n%s", conf)
	}
	for _, path := range []string{"/metrics", "/"} {
		testenv.Eventually(t, 10*time.Second, "nginx serving "+path, func() bool {
			code, _, err := testenv.HTTPGet(upHTTP, n.URL(path))
			return err == nil && code == 200
		})
	}

	k, _ := skydns.PortKey(skydns.DefaultPrefix, upDomain, "dep", "metrics", "a")
	var worst time.Duration
	for range 3 {
		del := exec.Command("etcdctl", "--endpoints", e.etcd.Endpoint, "del", k)
		del.Env = append(os.Environ(), "ETCDCTL_API=3")
		if out, err := del.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "1" {
			t.Fatalf("etcdctl del %s: %v %s", k, err, out)
		}
		d := testenv.Eventually(t, 5*time.Second, "named-port record back after etcdctl del", func() bool {
			resp, err := e.cli.Get(t.Context(), k)
			return err == nil && len(resp.Kvs) == 1
		})
		worst = max(worst, d)
	}
	t.Logf("FIGURE etcdctl del of a named-port record -> back: worst of 3 %s", worst.Round(time.Millisecond))

	apply("a", "--maintenance")
	testenv.Eventually(t, 10*time.Second, "instance a's metrics port withdrawn in maintenance", func() bool {
		srv := e.dns.Dig(t, metrics, "SRV")
		return len(srv) == 1 && strings.HasSuffix(srv[0], " b."+metrics+".")
	})
	if got := e.dns.Dig(t, "dep."+upDomain, "A"); !slices.Equal(got, []string{"127.0.0.3"}) {
		t.Errorf("A dep in a's maintenance = %v, want [127.0.0.3]", got)
	}
	if txt := strings.Join(e.dns.Dig(t, "dep."+upDomain, "TXT"), "\n"); strings.Contains(txt, "instance=a") {
		t.Errorf("TXT dep in a's maintenance = %s, want a's gone", txt)
	}
}

func sorted(s []string) []string { slices.Sort(s); return s }
