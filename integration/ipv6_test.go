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

	"github.com/rundock/rundock/internal/testenv"
)

// TestIPv6_ExplicitHost: a service whose host is an IPv6 address is published on that
// address only ([::1]:PORT, not 127.0.0.1:PORT), announced as AAAA (no A) with its port in
// SRV, and reached through nginx from the [::1]:PORT server rundock upstreams renders.
func TestIPv6_ExplicitHost(t *testing.T) {
	e := newDepEnv(t)
	port := testenv.FreePort(t)
	name := depPrefix + "six"
	e.mustApply(t, "apply", "--name", name, "--image", e.images["v1"],
		"--announce", strconv.Itoa(port), "--port", "8080", "--host", "::1",
		"--announce-name", "six", "--instance", "six", "--ttl", "5",
		"--etcd-endpoints", e.etcd.Endpoint, "--wait-timeout", "20", "--stop-timeout", "5",
		"--sv-dir", e.r.SvDir, "--service-dir", e.r.ServiceDir, "--log-dir", e.r.LogDir, "--bin-dir", e.r.BinDir)

	url6 := fmt.Sprintf("http://[::1]:%d/", port)
	if code, body, err := testenv.HTTPGet(upHTTP, url6); err != nil || code != 200 {
		t.Fatalf("GET %s: %d %q %v", url6, code, body, err)
	}
	if _, _, err := testenv.HTTPGet(upHTTP, fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
		t.Errorf("the container is also published on 127.0.0.1:%d, want [::1] only", port)
	}
	if got := e.dns.Dig(t, "six."+upDomain, "AAAA"); !slices.Equal(got, []string{"::1"}) {
		t.Errorf("AAAA six = %v, want [::1]", got)
	}
	if got := e.dns.Dig(t, "six."+upDomain, "A"); len(got) != 0 {
		t.Errorf("A six = %v, want none", got)
	}
	srv := e.dns.Dig(t, "six."+upDomain, "SRV")
	if want := fmt.Sprintf("%d six.six.%s.", port, upDomain); len(srv) != 1 || !strings.HasSuffix(srv[0], want) {
		t.Errorf("SRV six = %v, want one ending %q", srv, want)
	}

	n := upStartNginx(t, "server {\n    listen 80;\n    location / { proxy_pass http://docker_six; }\n}\n",
		[]byte("upstream docker_six { server 127.0.0.1:1 down; }\n"))
	cfg := filepath.Join(t.TempDir(), "upstreams.yml")
	if err := os.WriteFile(cfg, []byte("services:\n  six: {}\nallow_networks: ['::1/128']\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(e.bin, "upstreams", "--once", "--etcd-endpoints", e.etcd.Endpoint, "--config", cfg,
		"--output", n.Output, "--check-cmd", n.CheckCmd, "--reload-cmd", n.ReloadCmd).CombinedOutput(); err != nil {
		t.Fatalf("rundock upstreams --once: %v\n%s", err, out)
	}
	if conf, want := n.installed(t), fmt.Sprintf("server [::1]:%d", port); !strings.Contains(conf, want) {
		t.Fatalf("upstreams lack %q:\n%s", want, conf)
	}
	testenv.Eventually(t, 10*time.Second, "nginx serving web through [::1]", func() bool {
		code, _, err := testenv.HTTPGet(upHTTP, n.URL("/"))
		return err == nil && code == 200
	})
}

// TestIPv6_DualStack: an instance with an IPv4 host and an IPv6 host6 is published on both
// addresses and announced as both: A and AAAA answer for the service and for the instance
// itself, and SRV lists it once per family with targets that resolve.
func TestIPv6_DualStack(t *testing.T) {
	e := newDepEnv(t)
	e.mustApply(t, e.opts("a", e.images["v1"], "--host6", "::1")...)
	name := "a.dep." + upDomain
	testenv.Eventually(t, 30*time.Second, "AAAA of the instance", func() bool { return len(e.dns.Dig(t, name, "AAAA")) == 1 })
	for _, q := range []struct{ name, qtype, want string }{
		{"dep." + upDomain, "A", "127.0.0.2"}, {"dep." + upDomain, "AAAA", "::1"},
		{name, "A", "127.0.0.2"}, {name, "AAAA", "::1"},
		{"ipv4." + name, "A", "127.0.0.2"}, {"ipv6." + name, "AAAA", "::1"},
	} {
		if got := e.dns.Dig(t, q.name, q.qtype); !slices.Equal(got, []string{q.want}) {
			t.Errorf("%s %s = %v, want [%s]", q.qtype, q.name, got, q.want)
		}
	}
	srv := sorted(e.dns.Dig(t, "dep."+upDomain, "SRV"))
	want := []string{fmt.Sprintf("10 50 %d ipv4.%s.", e.port, name), fmt.Sprintf("10 50 %d ipv6.%s.", e.port, name)}
	if !slices.Equal(srv, want) {
		t.Errorf("SRV dep = %v, want %v", srv, want)
	}
	for _, url := range []string{fmt.Sprintf("http://127.0.0.2:%d/", e.port), fmt.Sprintf("http://[::1]:%d/", e.port)} {
		if code, body, err := testenv.HTTPGet(upHTTP, url); err != nil || code != 200 {
			t.Errorf("GET %s: %d %q %v", url, code, body, err)
		}
	}
	// rundock upstreams --watch (the environment's, default family ipv4) renders the
	// instance once, by its IPv4 record.
	testenv.EventuallyMsg(t, 10*time.Second, func() string { return "upstreams:\n" + e.nginx.installed(t) }, func() bool {
		conf := e.nginx.installed(t)
		return strings.Contains(conf, fmt.Sprintf("server 127.0.0.2:%d", e.port)) && !strings.Contains(conf, "[::1]")
	})
	rec, _ := e.status(t, "a")["record"].(map[string]any)
	if key, _ := rec["key"].(string); !strings.HasSuffix(key, "/dep/a/ipv4") || rec["present"] != true {
		t.Errorf("rundock status record = %v, want the present IPv4 record .../dep/a/ipv4", rec)
	}
}

// TestIPv6_OnlyHost: a host with IPv6 only (a network namespace with one ULA address and
// no IPv4 but loopback's) runs a service and its announcer, which finds the host's private6 address
// itself and reaches etcd over IPv6. CoreDNS answers AAAA and no A, rundock upstreams
// renders [ADDR]:PORT, and nginx on this host reaches the service through it.
//
// The namespace stands for the other host's network only: its service is the echo
// server run directly, with --watch-container=false, since Docker publishes ports in
// its own namespace, not this one; the container side of IPv6 is TestIPv6_ExplicitHost's.
func TestIPv6_OnlyHost(t *testing.T) {
	testenv.Need(t, "nginx", "dig", "ip")
	ns := testenv.StartIPv6Host(t)
	etcd := testenv.StartEtcdAlso(t, ns.Host)
	dns := testenv.StartCoreDNS(t, upDomain, etcd.Endpoint)
	bins := testenv.Binaries(t)

	echo := filepath.Join(t.TempDir(), "echo")
	build := exec.Command("go", "build", "-o", echo, "./examples/images/echo")
	build.Dir, build.Env = testenv.RepoRoot(), append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build echo: %v\n%s", err, out)
	}
	start := func(cmd *exec.Cmd) *strings.Builder {
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("%s:\n%s", cmd.Args, out.String())
			}
		})
		return &out
	}
	srv := ns.Command("env", "PORT=8080", "INSTANCE=v6only", echo)
	start(srv)
	ann := ns.Command(filepath.Join(bins, "announcer"), "--name", "six", "--port", "8080", "--instance", "v6only",
		"--announce-as", "private6", "--watch-container=false", "--ttl", "5", "--etcd-endpoints", etcd.Also[0])
	annLog := start(ann)

	testenv.Eventually(t, 20*time.Second, "AAAA of the IPv6-only host", func() bool {
		return len(dns.Dig(t, "six."+upDomain, "AAAA")) == 1
	})
	if got := dns.Dig(t, "six."+upDomain, "AAAA"); !slices.Equal(got, []string{ns.Addr}) {
		t.Errorf("AAAA six = %v, want [%s] (the namespace's own address, found by private6)", got, ns.Addr)
	}
	if got := dns.Dig(t, "six."+upDomain, "A"); len(got) != 0 {
		t.Errorf("A six = %v, want none: the host has no IPv4", got)
	}
	if !strings.Contains(annLog.String(), "msg=announced") {
		t.Errorf("announcer log lacks the announce:\n%s", annLog.String())
	}

	n := upStartNginx(t, "server {\n    listen 80;\n    location / { proxy_pass http://docker_six; }\n}\n",
		[]byte("upstream docker_six { server 127.0.0.1:1 down; }\n"))
	cfg := filepath.Join(t.TempDir(), "upstreams.yml")
	if err := os.WriteFile(cfg, []byte("services:\n  six: {}\nallow_networks: ['fd00::/8']\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(bins, "rundock"), "upstreams", "--once", "--etcd-endpoints", etcd.Endpoint, "--config", cfg,
		"--output", n.Output, "--check-cmd", n.CheckCmd, "--reload-cmd", n.ReloadCmd).CombinedOutput(); err != nil {
		t.Fatalf("rundock upstreams --once: %v\n%s", err, out)
	}
	if conf, want := n.installed(t), fmt.Sprintf("server [%s]:8080", ns.Addr); !strings.Contains(conf, want) {
		t.Fatalf("upstreams lack %q:\n%s", want, conf)
	}
	var last string
	testenv.EventuallyMsg(t, 10*time.Second, func() string { return "nginx not serving the IPv6-only host: " + last }, func() bool {
		code, body, err := testenv.HTTPGet(upHTTP, n.URL("/"))
		last = fmt.Sprintf("%d %q %v", code, body, err)
		return err == nil && code == 200 && strings.HasPrefix(body, "v6only ")
	})
}

// TestIPv6_Container6: announce_as container6 announces the container's own IPv6 address
// on a Docker network with IPv6, answered as AAAA (no A), with the container port in SRV;
// the address answers HTTP from this host.
func TestIPv6_Container6(t *testing.T) {
	e := newDepEnv(t)
	netw := depPrefix + "net6"
	exec.Command("docker", "network", "rm", netw).Run() // a killed run's
	if out, err := exec.Command("docker", "network", "create", "--ipv6", "--subnet", "fd00:6:c6::/64", netw).CombinedOutput(); err != nil {
		t.Fatalf("docker network create --ipv6: %v\n%s", err, out)
	}
	name := depPrefix + "c6"
	t.Cleanup(func() {
		exec.Command("docker", "rm", "-f", name).Run()
		exec.Command("docker", "network", "rm", netw).Run()
	})
	e.mustApply(t, "apply", "--name", name, "--image", e.images["v1"], "--network", netw,
		"--announce", "8080", "--port", "8080", "--announce-as", "container6",
		"--announce-name", "c6", "--instance", "c6", "--ttl", "5",
		"--etcd-endpoints", e.etcd.Endpoint, "--wait-timeout", "20", "--stop-timeout", "5",
		"--sv-dir", e.r.SvDir, "--service-dir", e.r.ServiceDir, "--log-dir", e.r.LogDir, "--bin-dir", e.r.BinDir)
	ip6 := strings.TrimSpace(annDocker(t, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+netw+"\").GlobalIPv6Address}}", name))
	if !strings.HasPrefix(ip6, "fd00:6:c6:") {
		t.Fatalf("container's IPv6 address %q, want one in fd00:6:c6::/64", ip6)
	}
	if got := e.dns.Dig(t, "c6."+upDomain, "AAAA"); !slices.Equal(got, []string{ip6}) {
		t.Errorf("AAAA c6 = %v, want [%s]", got, ip6)
	}
	if got := e.dns.Dig(t, "c6."+upDomain, "A"); len(got) != 0 {
		t.Errorf("A c6 = %v, want none", got)
	}
	if srv := e.dns.Dig(t, "c6."+upDomain, "SRV"); len(srv) != 1 || !strings.Contains(srv[0], " 8080 c6.c6.") {
		t.Errorf("SRV c6 = %v, want one with the container port 8080", srv)
	}
	url := fmt.Sprintf("http://[%s]:8080/", ip6)
	if code, body, err := testenv.HTTPGet(upHTTP, url); err != nil || code != 200 {
		t.Errorf("GET %s: %d %q %v", url, code, body, err)
	}
}
