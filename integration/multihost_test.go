package integration

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rundock/rundock/integration/multihost"
	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/testenv"
)

const (
	mhDomain = "s.prod.example.com"
	mhTTL    = 5 // --ttl of every announcer in the lab, seconds
	// mhExpire is the bound for a dead announcer's record: TTL + 1 s.
	mhExpire = (mhTTL + 1) * time.Second
)

// mhLab is the two-host lab every fault runs on: node-a and node-b each run the echo
// backend (container "backend" on the host's network stack) and its announcer under
// runit; node-a also has a crash-looping "crashy" service, down until its test.
type mhLab struct {
	*multihost.Lab
	dns   *testenv.CoreDNS
	etcd  *clientv3.Client
	hosts map[string]*multihost.Host
	ports map[string]int // backend port of each host
	// announcers lists each host's announcer services (runit names under /service).
	announcers map[string][]string
	// web is true once rundock has applied the "web" service on every host.
	web bool

	mu      sync.Mutex
	figures []string
}

// figure logs a measured time and keeps it for the summary at the end.
func (l *mhLab) figure(t *testing.T, what string, d time.Duration) {
	t.Helper()
	t.Logf("FIGURE %s: %s", what, d.Round(time.Millisecond))
	l.mu.Lock()
	l.figures = append(l.figures, fmt.Sprintf("%-58s %8s", what, d.Round(10*time.Millisecond)))
	l.mu.Unlock()
}

// records returns the backend records in etcd by instance; it fails on a key that is not
// an instance of the service.
func (l *mhLab) records(t *testing.T, svc string) map[string]skydns.Record {
	t.Helper()
	prefix, err := skydns.ServiceKey(skydns.DefaultPrefix, mhDomain, svc)
	if err != nil {
		t.Fatal(err)
	}
	// Short attempts, retried: a request to a member that is cut off hangs, and the next
	// one goes to another member.
	var resp *clientv3.GetResponse
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		resp, err = l.etcd.Get(ctx, prefix+"/", clientv3.WithPrefix())
		cancel()
		if err == nil {
			break
		}
		if attempt == 5 {
			t.Fatalf("cannot read %s from etcd: %v", prefix, err)
		}
	}
	got := map[string]skydns.Record{}
	for _, kv := range resp.Kvs {
		name, instance, ok := skydns.SplitKey(skydns.DefaultPrefix, mhDomain, string(kv.Key))
		if !ok || name != svc {
			t.Fatalf("unexpected key %s under %s", kv.Key, prefix)
		}
		r, err := skydns.Decode(kv.Value)
		if err != nil {
			t.Fatal(err)
		}
		got[instance] = r
	}
	return got
}

// instances returns the sorted instance names with a backend record.
func (l *mhLab) instances(t *testing.T) []string {
	t.Helper()
	var names []string
	for n := range l.records(t, "backend") {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// lease returns the lease ID of host's backend record, 0 when there is none.
func (l *mhLab) lease(t *testing.T, host string) clientv3.LeaseID {
	t.Helper()
	key, _ := skydns.InstanceKey(skydns.DefaultPrefix, mhDomain, "backend", host)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := l.etcd.Get(ctx, key)
	if err != nil {
		t.Fatalf("cannot read %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return 0
	}
	return clientv3.LeaseID(resp.Kvs[0].Lease)
}

// digA returns the sorted A answers for NAME.s.prod.example.com.
func (l *mhLab) digA(t *testing.T, name string) []string {
	t.Helper()
	got := l.dns.Dig(t, name+"."+mhDomain, "A")
	sort.Strings(got)
	return got
}

// ips returns the sorted addresses of the named hosts.
func (l *mhLab) ips(hosts ...string) []string {
	var ips []string
	for _, h := range hosts {
		ips = append(ips, l.hosts[h].IP)
	}
	sort.Strings(ips)
	return ips
}

// waitLive waits until exactly the named hosts have a backend record and DNS answers
// exactly their addresses, and returns how long that took. Callers then run check.
func (l *mhLab) waitLive(t *testing.T, timeout time.Duration, hosts ...string) time.Duration {
	t.Helper()
	want := slices.Clone(hosts)
	sort.Strings(want)
	var last string
	start := time.Now()
	for {
		keys := l.instances(t)
		if !slices.Equal(keys, want) {
			last = fmt.Sprintf("backend records for %v", keys)
		} else if got, err := mhDigA(l.dns, "backend."+mhDomain); err != nil {
			last = err.Error() // no answer is "not yet", not a failure
		} else if !slices.Equal(got, l.ips(hosts...)) {
			last = fmt.Sprintf("A answers %v", got)
		} else {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("after %s: want backend records and A answers for exactly %v; last: %s", timeout, want, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// check asserts the invariants every fault must keep. Records: one per announced host
// and none for another (no duplicate, no stale record), each with its own host's address,
// port and the TTL. On each running host (announced or cut off): the backend container
// running and exactly one announcer process per announcer service, the one runit
// supervises (no orphan or doubled process). Of a host that is down: no container left.
func (l *mhLab) check(t *testing.T, announced ...string) {
	t.Helper()
	recs := l.records(t, "backend")
	if len(recs) != len(announced) {
		t.Errorf("backend records %v, want exactly the announced hosts %v", recs, announced)
	}
	seen := map[string]string{}
	for _, h := range announced {
		r, ok := recs[h]
		if !ok {
			t.Errorf("no backend record for live host %s", h)
			continue
		}
		want := skydns.Record{Host: l.hosts[h].IP, Port: l.ports[h], TTL: mhTTL, Group: "backend"}
		if r != want {
			t.Errorf("record of %s = %+v, want %+v", h, r, want)
		}
		addr := fmt.Sprintf("%s:%d", r.Host, r.Port)
		if other, dup := seen[addr]; dup {
			t.Errorf("%s announced by both %s and %s", addr, other, h)
		}
		seen[addr] = h
	}
	if l.web {
		if got, want := l.webRecords(t), l.webWant(t, announced...); !maps.Equal(got, want) {
			t.Errorf("web records %v, want %v", got, want)
		}
	}
	containers := l.Containers(t)
	for name, h := range l.hosts {
		if !slices.Contains(containers, h.Container+" running") {
			for _, c := range containers {
				if strings.HasPrefix(c, h.Container+"-") {
					t.Errorf("orphan container %s of host %s, which is down", c, name)
				}
			}
			continue
		}
		if c := h.ContainerName("backend"); !slices.Contains(containers, c+" running") {
			t.Errorf("container %s not running on host %s (lab containers: %v)", c, name, containers)
		}
		services := l.announcers[name]
		if l.web {
			if c := h.ContainerName("web"); !slices.Contains(containers, c+" running") {
				t.Errorf("rundock's container %s not running on host %s (lab containers: %v)", c, name, containers)
			}
		}
		pids := h.Pidof(t, "announcer")
		if len(pids) != len(services) {
			t.Errorf("%s runs announcer PIDs %v, want one per service %v", name, pids, services)
		}
		for _, s := range services {
			if p := h.ServicePID(t, s); !slices.Contains(pids, p) {
				t.Errorf("%s: runit's %s PID %d is not among the announcers %v", name, s, p, pids)
			}
		}
	}
}

// webRecords returns the web records by instance as "IP:PORT".
func (l *mhLab) webRecords(t *testing.T) map[string]string {
	t.Helper()
	got := map[string]string{}
	for instance, r := range l.records(t, "web") {
		got[instance] = fmt.Sprintf("%s:%d", r.Host, r.Port)
	}
	return got
}

// webWant returns the web records the named hosts should have: their rundock-run
// container's address on the lab network, port 8080.
func (l *mhLab) webWant(t *testing.T, hosts ...string) map[string]string {
	t.Helper()
	want := map[string]string{}
	for _, h := range hosts {
		ip, err := multihost.Docker("inspect", "-f", `{{(index .NetworkSettings.Networks "`+l.Network+`").IPAddress}}`, l.hosts[h].ContainerName("web"))
		if err != nil || ip == "" {
			ip = "(no container address)"
		}
		want[h] = ip + ":8080"
	}
	return want
}

// waitAll is waitLive for the backend and, once rundock has applied it, the web service.
func (l *mhLab) waitAll(t *testing.T, timeout time.Duration, hosts ...string) time.Duration {
	t.Helper()
	start := time.Now()
	l.waitLive(t, timeout, hosts...)
	if l.web {
		var got, want map[string]string
		testenv.Eventually(t, max(timeout-time.Since(start), 0), fmt.Sprintf("want web records for exactly %v", hosts), func() bool {
			got, want = l.webRecords(t), l.webWant(t, hosts...)
			return maps.Equal(got, want)
		})
	}
	return time.Since(start)
}

// applyWeb runs rundock apply of the web service on host h with image (announce_as
// container on the lab network, instance = the host name) and extra flags.
func (l *mhLab) applyWeb(h *multihost.Host, image string, extra ...string) (string, error) {
	args := []string{"rundock", "apply", "--name", h.ContainerName("web"), "--announce-name", "web",
		"--image", image, "--pull", "never", "--announce", "8080", "--announce-as", "container",
		"--network", l.Network, "--env", "INSTANCE=" + h.Name, "--args", h.OwnerLabels(),
		"--ttl", strconv.Itoa(mhTTL), "--service-dir", "/service", "--log=false"}
	for _, e := range l.Endpoints() {
		args = append(args, "--etcd-endpoints", e)
	}
	return h.Exec(append(args, extra...)...)
}

// startMHLab builds the images, starts three etcd members, CoreDNS on all of them, and the
// two hosts.
func startMHLab(t *testing.T) *mhLab {
	testenv.Need(t, "docker", "dig", "coredns")
	image := testenv.BuildEchoImage(t)
	start := time.Now()
	l := &mhLab{Lab: multihost.New(t), hosts: map[string]*multihost.Host{}, ports: map[string]int{"node-a": 8081, "node-b": 8082},
		announcers: map[string][]string{"node-a": {"backend-announcer", "crashy-announcer"}, "node-b": {"backend-announcer"}}}
	l.StartEtcd(t, 3)
	l.dns = testenv.StartCoreDNS(t, mhDomain, strings.Join(l.Endpoints(), " "))
	l.etcd = l.Client(t)
	endpoints := strings.Join(l.Endpoints(), ",")
	announcer := func(svc string, port int) multihost.Service {
		// No --host and no --instance: the announcer finds the host's private address
		// (eth0 of the host) and uses its short host name, as on a real machine.
		return multihost.AnnouncerService(svc+"-announcer", svc, "--name", svc, "--port", strconv.Itoa(port),
			"--ttl", strconv.Itoa(mhTTL), "--etcd-endpoints", endpoints)
	}
	crashy := multihost.EchoService("crashy", image, 8089, "EXIT_CODE=3")
	crashy.Down = true
	l.hosts["node-a"] = l.StartHost(t, "node-a", 1,
		multihost.EchoService("backend", image, l.ports["node-a"]), announcer("backend", l.ports["node-a"]),
		crashy, announcer("crashy", 8089))
	l.hosts["node-b"] = l.StartHost(t, "node-b", 2,
		multihost.EchoService("backend", image, l.ports["node-b"]), announcer("backend", l.ports["node-b"]))
	t.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		t.Logf("multi-host figures (--ttl %d):\n%s", mhTTL, strings.Join(l.figures, "\n"))
	})
	l.figure(t, "lab up (image, 3 etcd members, CoreDNS, 2 hosts started)", time.Since(start))
	return l
}

// TestMultiHost runs the issue 4 fault suite on two hosts sharing a three-member etcd
// cluster. The subtests run in order and each leaves both hosts live, except host loss,
// which runs last.
func TestMultiHost(t *testing.T) {
	l := startMHLab(t)
	a, b := l.hosts["node-a"], l.hosts["node-b"]
	if t.Failed() {
		return
	}

	t.Run("Baseline", func(t *testing.T) {
		start := time.Now()
		l.waitLive(t, 30*time.Second, "node-a", "node-b")
		l.figure(t, "hosts started -> both records in DNS", time.Since(start))
		l.check(t, "node-a", "node-b")
		srv := l.dns.Dig(t, "backend."+mhDomain, "SRV")
		var targets []string
		for _, line := range srv {
			f := strings.Fields(line) // priority weight port target
			if len(f) != 4 {
				t.Fatalf("SRV answer %q: want 4 fields", line)
			}
			targets = append(targets, f[2]+" "+f[3])
		}
		sort.Strings(targets)
		want := []string{"8081 node-a.backend." + mhDomain + ".", "8082 node-b.backend." + mhDomain + "."}
		if !slices.Equal(targets, want) {
			t.Errorf("SRV port+target = %v, want %v (answers %v)", targets, want, srv)
		}
		for _, h := range []*multihost.Host{a, b} {
			if got := l.dns.Dig(t, h.Name+".backend."+mhDomain, "A"); !slices.Equal(got, []string{h.IP}) {
				t.Errorf("A %s.backend = %v, want [%s]", h.Name, got, h.IP)
			}
			body := testenv.MustHTTPBody(t, fmt.Sprintf("http://%s:%d/", h.IP, l.ports[h.Name]), 5*time.Second)
			if !strings.HasPrefix(body, h.Name+" ") {
				t.Errorf("backend on %s answered %q, want its instance %s", h.Name, body, h.Name)
			}
		}
	})

	t.Run("NginxAcrossHosts", func(t *testing.T) {
		// nginx on this machine, upstreams rendered by rundock upstreams from the lab's etcd
		// cluster: requests reach both hosts, at the ports from their records.
		n := upStartNginx(t, "server {\n    listen 80;\n    location / { proxy_pass http://docker_backend; }\n}\n",
			[]byte("upstream docker_backend { server 127.0.0.1:1 down; }\n"))
		cmd := exec.Command(filepath.Join(testenv.Binaries(t), "rundock"), "upstreams", "--once",
			"--etcd-endpoints", strings.Join(l.Endpoints(), ","), "--domain", mhDomain,
			"--output", n.Output, "--check-cmd", n.CheckCmd, "--reload-cmd", n.ReloadCmd)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("rundock upstreams --once: %v\n%s", err, out)
		}
		conf := n.installed(t)
		for _, h := range []*multihost.Host{a, b} {
			if want := fmt.Sprintf("server %s:%d", h.IP, l.ports[h.Name]); !strings.Contains(conf, want) {
				t.Errorf("upstreams lack %q:\n%s", want, conf)
			}
		}
		// nginx -s reload returns before the new workers serve.
		testenv.Eventually(t, 10*time.Second, "nginx serving the rendered upstreams", func() bool {
			code, _, err := testenv.HTTPGet(upHTTP, n.URL("/"))
			return err == nil && code == 200
		})
		hosts := map[string]int{}
		for body, count := range upSeen(t, n.URL("/"), 20) {
			hosts[strings.Fields(body + " !")[0]] += count
		}
		if hosts["!failed"] > 0 || hosts["node-a"] == 0 || hosts["node-b"] == 0 {
			t.Errorf("20 requests through nginx: %v, want both hosts and no failure", hosts)
		}
		t.Logf("through nginx: %v", hosts)
	})

	t.Run("RundockChain", func(t *testing.T) {
		// The real chain on each host: rundock renders and enables a service tree, the
		// host's runsvdir picks it up, its run starts the container on the lab network and
		// its nested announcer service announces the container's address (announce_as
		// container), instance = the host name.
		start := time.Now()
		for _, h := range []*multihost.Host{a, b} {
			out, err := l.applyWeb(h, testenv.EchoImage)
			if err != nil {
				t.Fatalf("rundock apply on %s: %v\n%s", h.Name, err, out)
			}
			t.Logf("%s: %s", h.Name, out)
			l.announcers[h.Name] = append(l.announcers[h.Name], "docker-"+h.ContainerName("web")+".announcer")
		}
		l.web = true
		l.waitAll(t, 60*time.Second, "node-a", "node-b")
		l.figure(t, "rundock apply on both hosts -> web records", time.Since(start))
		want := l.webWant(t, "node-a", "node-b")
		var ips []string
		for _, h := range []*multihost.Host{a, b} {
			addr := want[h.Name]
			ips = append(ips, strings.TrimSuffix(addr, ":8080"))
			if body := testenv.MustHTTPBody(t, "http://"+addr+"/", 5*time.Second); !strings.HasPrefix(body, h.Name+" ") {
				t.Errorf("web on %s (%s) answered %q, want its instance %s", h.Name, addr, body, h.Name)
			}
		}
		sort.Strings(ips)
		if got := l.digA(t, "web"); !slices.Equal(got, ips) {
			t.Errorf("A web = %v, want %v", got, ips)
		}
		var targets []string
		for _, line := range l.dns.Dig(t, "web."+mhDomain, "SRV") {
			if f := strings.Fields(line); len(f) == 4 {
				targets = append(targets, f[2]+" "+f[3])
			}
		}
		sort.Strings(targets)
		if wantT := []string{"8080 node-a.web." + mhDomain + ".", "8080 node-b.web." + mhDomain + "."}; !slices.Equal(targets, wantT) {
			t.Errorf("SRV web port+target = %v, want %v", targets, wantT)
		}
		l.check(t, "node-a", "node-b")
	})

	t.Run("RollingUpdate", func(t *testing.T) {
		// A rolling update of web over both hosts, one host after the other, each host
		// start-first (announce_as container: the new container has an address of its own),
		// under a steady load through nginx whose upstreams rundock upstreams --watch renders
		// from the lab's etcd cluster. It is driven as Ansible's serial: 1 would drive it, by
		// the same sequence of rundock apply calls, stopping at the first failure (the lab's
		// hosts are reached with docker exec; Debian's ansible-core has no docker connection).
		l.waitAll(t, 30*time.Second, "node-a", "node-b")
		images := depBuildImages(t)
		n := upStartNginx(t, strings.ReplaceAll(depSite, "docker_dep", "docker_web"),
			[]byte("upstream docker_web { server 127.0.0.1:1 down; }\n"))
		cfg := filepath.Join(t.TempDir(), "upstreams.yml")
		if err := os.WriteFile(cfg, []byte("services:\n  web: {}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		n.watch(t, filepath.Join(testenv.Binaries(t), "rundock"),
			"--etcd-endpoints", strings.Join(l.Endpoints(), ","), "--domain", mhDomain, "--config", cfg)
		servesBoth := func() bool {
			seen := map[string]bool{}
			for i := 0; i < 8; i++ {
				if code, body, err := testenv.HTTPGet(upHTTP, n.URL("/")); err == nil && code == 200 {
					seen[strings.Fields(body + " !")[0]] = true
				}
			}
			return seen["node-a"] && seen["node-b"]
		}
		testenv.Eventually(t, 20*time.Second, "nginx sending requests to web on both hosts", servesBoth)
		container := func(h *multihost.Host) string {
			out, _ := multihost.Docker("inspect", "-f", "{{.Id}} {{.Config.Image}}", h.ContainerName("web"))
			return strings.TrimSpace(out)
		}
		// roll applies image on each host in turn, as serial: 1 does: the next host only
		// after the previous apply returned with its container serving; the first failure
		// ends the roll.
		roll := func(image string, extra ...string) (failedOn *multihost.Host, out string) {
			for _, h := range []*multihost.Host{a, b} {
				start := time.Now()
				out, err := l.applyWeb(h, image, append([]string{"--update", "start-first"}, extra...)...)
				if err != nil {
					return h, out
				}
				l.figure(t, "rolling update, "+image+" on "+h.Name+" (apply)", time.Since(start))
				if got := container(h); !strings.HasSuffix(got, " "+image) {
					t.Fatalf("after the update %s runs %q, want image %s:\n%s", h.Name, got, image, out)
				}
			}
			return nil, ""
		}

		ld := startLoadAt(n.URL("/"), nil)
		time.Sleep(time.Second)
		start := time.Now()
		if h, out := roll(images["v2"]); h != nil {
			ld.end(t, "rolling update (failed)")
			t.Fatalf("rolling update failed on %s:\n%s", h.Name, out)
		}
		l.figure(t, "rolling update over 2 hosts, start-first each", time.Since(start))
		l.waitAll(t, 30*time.Second, "node-a", "node-b")
		time.Sleep(time.Second)
		if sent, failed, _, _ := ld.end(t, "multi-host rolling update"); sent < 100 || failed != 0 {
			t.Errorf("rolling update: %d of %d requests through nginx failed, want 0 of at least 100 (%v)", failed, sent, ld.errs)
		}
		if !servesBoth() {
			t.Errorf("after the rolling update nginx does not reach both hosts")
		}

		// A broken image: the first host starts it beside its container, which never stops;
		// the roll ends there and the second host is never touched.
		beforeA, beforeB := container(a), container(b)
		ld = startLoadAt(n.URL("/"), nil)
		time.Sleep(time.Second)
		start = time.Now()
		h, out := roll(images["bad"], "--wait-timeout", "8")
		l.figure(t, "rolling update, broken image: apply on the first host failed", time.Since(start))
		if h != a {
			t.Fatalf("the broken image's roll failed on %v, want node-a:\n%s", h, out)
		}
		if !strings.Contains(out, "was not touched and still serves") {
			t.Errorf("the failure on node-a does not say the old container still serves:\n%s", out)
		}
		if got := container(a); got != beforeA {
			t.Errorf("node-a's web container changed from %q to %q", beforeA, got)
		}
		if got := container(b); got != beforeB {
			t.Errorf("node-b's web container changed from %q to %q: the roll went on after a failure", beforeB, got)
		}
		l.waitAll(t, 30*time.Second, "node-a", "node-b")
		time.Sleep(time.Second)
		if sent, failed, _, _ := ld.end(t, "multi-host rolling update, broken image"); sent < 100 || failed != 0 {
			t.Errorf("broken image: %d of %d requests through nginx failed, want 0 of at least 100 (%v)", failed, sent, ld.errs)
		}
		l.check(t, "node-a", "node-b")
	})

	t.Run("CrashLoopNeverAnnounced", func(t *testing.T) {
		l.waitAll(t, 30*time.Second, "node-a", "node-b")
		key, _ := skydns.ServiceKey(skydns.DefaultPrefix, mhDomain, "crashy")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		watch := l.etcd.Watch(ctx, key+"/", clientv3.WithPrefix(), clientv3.WithRev(0))
		type event struct {
			put bool
			at  time.Time
		}
		var mu sync.Mutex
		var events []event
		go func() {
			for resp := range watch {
				for _, ev := range resp.Events {
					mu.Lock()
					events = append(events, event{put: ev.Type == clientv3.EventTypePut, at: time.Now()})
					mu.Unlock()
				}
			}
		}()
		since := time.Now()
		a.Sv(t, "up", "crashy")
		// Sample DNS while runit restarts the crashing container over and over.
		deadline := time.Now().Add(2*mhTTL*time.Second + time.Second)
		samples, answered := 0, 0
		for time.Now().Before(deadline) {
			samples++
			if len(l.digA(t, "crashy")) > 0 {
				answered++
			}
			time.Sleep(100 * time.Millisecond)
		}
		a.Sv(t, "down", "crashy")
		testenv.Eventually(t, 10*time.Second, "crashy container left behind after sv down", func() bool {
			return !slices.ContainsFunc(l.Containers(t), func(c string) bool { return strings.HasPrefix(c, a.ContainerName("crashy")+" ") })
		})
		time.Sleep(500 * time.Millisecond) // the last withdrawal reaches the watch
		until := time.Now()

		// The container's life, from the engine: start and die times.
		out, err := multihost.Docker("events", "--since", strconv.FormatInt(since.Unix()-1, 10), "--until", strconv.FormatInt(until.Unix()+1, 10),
			"--filter", "container="+a.ContainerName("crashy"), "--filter", "event=start", "--filter", "event=die",
			"--format", "{{.Action}} {{.TimeNano}}")
		if err != nil {
			t.Fatal(err)
		}
		type life struct{ start, die time.Time }
		var lives []life
		for _, line := range strings.Split(out, "\n") {
			action, ns, _ := strings.Cut(line, " ")
			n, err := strconv.ParseInt(ns, 10, 64)
			if err != nil {
				continue
			}
			at := time.Unix(0, n)
			switch {
			case action == "start":
				lives = append(lives, life{start: at})
			case action == "die" && len(lives) > 0 && lives[len(lives)-1].die.IsZero():
				lives[len(lives)-1].die = at
			}
		}
		t.Logf("crashy started %d times in %s; DNS answered in %d of %d samples", len(lives), until.Sub(since).Round(time.Second), answered, samples)
		if len(lives) < 3 {
			t.Errorf("crashy started %d times, want a crash loop (>= 3 starts)", len(lives))
		}

		// Never announced while down: every record written must be withdrawn within 1 s
		// of the death of the container run it was written for.
		mu.Lock()
		defer mu.Unlock()
		var worst time.Duration
		puts := 0
		for i, ev := range events {
			if !ev.put {
				continue
			}
			puts++
			withdrawn := until
			if i+1 < len(events) && !events[i+1].put {
				withdrawn = events[i+1].at
			}
			var run *life
			for j := range lives {
				if !lives[j].start.After(ev.at) {
					run = &lives[j]
				}
			}
			switch {
			case run == nil:
				t.Errorf("crashy announced at %s before any start", ev.at.Format(time.StampMilli))
			case run.die.IsZero():
				t.Errorf("crashy announced at %s for a run with no die event", ev.at.Format(time.StampMilli))
			default:
				late := withdrawn.Sub(run.die)
				worst = max(worst, late)
				if late > time.Second {
					t.Errorf("crashy announced at %s, container died at %s, withdrawn only at %s",
						ev.at.Format(time.StampMilli), run.die.Format(time.StampMilli), withdrawn.Format(time.StampMilli))
				}
			}
		}
		t.Logf("crashy records written %d times, each withdrawn at worst %s after its container died", puts, worst.Round(time.Millisecond))
		if puts > 0 {
			l.figure(t, "crash loop: record withdrawn after die (worst)", worst)
		}
		if got := l.records(t, "crashy"); len(got) != 0 {
			t.Errorf("crashy records after the loop: %v", got)
		}
		l.check(t, "node-a", "node-b")
	})

	t.Run("AnnouncerSIGKILL", func(t *testing.T) {
		l.waitAll(t, 30*time.Second, "node-a", "node-b")
		// runit restarts the killed announcer at once: the record is put again with a new
		// lease, and the dead announcer's lease expires within the TTL.
		old := b.ServicePID(t, "backend-announcer")
		oldLease := l.lease(t, "node-b")
		if old == 0 || oldLease == 0 {
			t.Fatalf("announcer PID %d, lease %x: want both", old, oldLease)
		}
		killed := time.Now()
		b.KillProcess(t, old)
		d := testenv.Eventually(t, 10*time.Second, "runit did not restart the announcer", func() bool {
			p := b.ServicePID(t, "backend-announcer")
			return p != 0 && p != old
		})
		l.figure(t, "announcer SIGKILL -> runit restarted it", d)
		testenv.Eventually(t, mhExpire, "no record with a new lease after the restart", func() bool {
			lease := l.lease(t, "node-b")
			return lease != 0 && lease != oldLease
		})
		l.figure(t, "announcer SIGKILL -> record on a new lease", time.Since(killed))
		testenv.Eventually(t, mhExpire-time.Since(killed), "the killed announcer's lease outlived TTL+1s", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			r, err := l.etcd.TimeToLive(ctx, oldLease)
			return err == nil && r.TTL == -1
		})
		l.figure(t, "announcer SIGKILL -> old lease gone", time.Since(killed))
		l.waitLive(t, 5*time.Second, "node-a", "node-b")
		l.check(t, "node-a", "node-b")

		// With runit told not to restart it (sv once), the record itself must go.
		b.Sv(t, "once", "backend-announcer")
		pid := b.ServicePID(t, "backend-announcer")
		killed = time.Now()
		b.KillProcess(t, pid)
		l.waitLive(t, mhExpire, "node-a")
		l.figure(t, "announcer SIGKILL, not restarted -> record gone", time.Since(killed))
		if p := b.ServicePID(t, "backend-announcer"); p != 0 {
			t.Errorf("backend-announcer runs again (PID %d) with runit's restart off", p)
		}
		if pids, want := b.Pidof(t, "announcer"), len(l.announcers["node-b"])-1; len(pids) != want {
			t.Errorf("announcer processes %v on node-b after SIGKILL with runit's restart off, want %d (the other services')", pids, want)
		}
		upAt := time.Now()
		b.Sv(t, "up", "backend-announcer")
		l.waitLive(t, 10*time.Second, "node-a", "node-b")
		l.check(t, "node-a", "node-b")
		l.figure(t, "sv up announcer -> record back", time.Since(upAt))
	})

	t.Run("EtcdMemberLoss", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			pick func(t *testing.T) *multihost.Member
			cut  bool // cut the member off the network instead of killing it
		}{
			// The member node-b's announcers hold their connections to: its keepalive
			// stream must move to another member before the lease runs out.
			{name: "AnnouncersMember", pick: func(t *testing.T) *multihost.Member {
				return l.MemberAt(t, b.EtcdPeer(t))
			}},
			{name: "Leader", pick: func(t *testing.T) *multihost.Member { return l.Leader(t) }},
			// The same member cut off instead: no FIN or RST reaches the announcers, their
			// connections hang until gRPC's keepalive gives up on them.
			{name: "AnnouncersMemberCutOff", cut: true, pick: func(t *testing.T) *multihost.Member {
				return l.MemberAt(t, b.EtcdPeer(t))
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				l.waitAll(t, 30*time.Second, "node-a", "node-b")
				victim := tc.pick(t)
				wasLeader := victim == l.Leader(t)
				if tc.cut {
					victim.Disconnect(t, l.Lab)
				} else {
					victim.Kill(t)
				}
				killed := time.Now()
				defer func() {
					if tc.cut {
						victim.Reconnect(t, l.Lab)
					} else {
						victim.Start(t)
					}
					l.WaitMember(t, victim, 60*time.Second)
				}()
				// Records must stay for two TTLs: the leases are kept alive through the
				// remaining members (the announcers hold every endpoint).
				var missing, dnsFailed []string
				for time.Now().Before(killed.Add(2*mhTTL*time.Second + time.Second)) {
					since := time.Since(killed).Seconds()
					if got := l.instances(t); !slices.Equal(got, []string{"node-a", "node-b"}) {
						missing = append(missing, fmt.Sprintf("%.1fs:%v", since, got))
					} else if got, err := mhDigA(l.dns, "backend."+mhDomain); err != nil {
						dnsFailed = append(dnsFailed, fmt.Sprintf("%.1fs:%v", since, err))
					} else if !slices.Equal(got, l.ips("node-a", "node-b")) {
						missing = append(missing, fmt.Sprintf("%.1fs:A=%v", since, got))
					}
					time.Sleep(250 * time.Millisecond)
				}
				if len(missing) > 0 {
					t.Errorf("after losing etcd member %s (leader: %v, cut off: %v) records were missing in %d samples (time since loss: records): %v",
						victim.Name, wasLeader, tc.cut, len(missing), missing)
				}
				if len(dnsFailed) > 0 {
					// CoreDNS's own etcd client waits on the lost member: a CoreDNS matter,
					// not the records'. Fatal for a killed member, reported for a cut one.
					msg := fmt.Sprintf("CoreDNS did not answer in %d samples after losing %s: %v", len(dnsFailed), victim.Name, dnsFailed)
					if tc.cut {
						t.Log(msg)
					} else {
						t.Error(msg)
					}
				}
				l.waitAll(t, 15*time.Second, "node-a", "node-b")
				l.check(t, "node-a", "node-b")
			})
		}
	})

	t.Run("PartitionFromEtcd", func(t *testing.T) {
		l.waitAll(t, 30*time.Second, "node-a", "node-b")
		l.StableLeader(t, 3*time.Second, 30*time.Second)
		// Timed from when the link is gone: docker network disconnect returned.
		begin := time.Now()
		b.Disconnect(t)
		cut := time.Now()
		healed := false
		t.Cleanup(func() {
			if !healed { // a failure above must not leave node-b cut off for the next fault
				b.Reconnect(t)
			}
		})
		l.figure(t, "docker network disconnect took", cut.Sub(begin))
		l.waitAll(t, mhExpire, "node-a")
		l.figure(t, "node-b partitioned -> its records gone", time.Since(cut))
		l.check(t, "node-a") // node-b still runs its backend and one announcer
		healedAt := time.Now()
		b.Reconnect(t)
		healed = true
		l.waitAll(t, 20*time.Second, "node-a", "node-b")
		l.check(t, "node-a", "node-b")
		l.figure(t, "partition healed -> node-b records back", time.Since(healedAt))
	})

	t.Run("DockerDaemonRestart", func(t *testing.T) {
		// The shared engine cannot be restarted under other tests: this runs a private
		// engine, with runit (on this machine) supervising a container on it and its
		// announcer, which publishes 127.0.0.1 as instance engine-host.
		engine := multihost.StartDockerd(t)
		engine.LoadImage(t, testenv.EchoImage)
		announcerBin := filepath.Join(testenv.Binaries(t), "announcer")
		dockerBin, err := testenv.LookPath("docker")
		if err != nil {
			t.Fatal(err)
		}
		port := testenv.FreePort(t)
		name := l.Prefix + "-restart"
		env := "#!/bin/sh\nexec 2>&1\nexport DOCKER_HOST=" + engine.Host + "\n"
		sup := multihost.StartRunsvdir(t, map[string][2]string{
			"restart": {
				env + fmt.Sprintf("%s rm -f %s >/dev/null 2>&1\nexec %s run --rm --name %s --network host -e PORT=%d -e INSTANCE=engine-host %s\n",
					dockerBin, name, dockerBin, name, port, testenv.EchoImage),
				env + fmt.Sprintf("%s rm -f %s >/dev/null 2>&1\nexit 0\n", dockerBin, name),
			},
			"restart-announcer": {
				env + fmt.Sprintf("exec %s --name restart --port %d --host 127.0.0.1 --instance engine-host --container %s --ttl %d --etcd-endpoints %s\n",
					announcerBin, port, name, mhTTL, strings.Join(l.Endpoints(), ",")),
				"",
			},
		})
		want := skydns.Record{Host: "127.0.0.1", Port: port, TTL: mhTTL, Group: "restart"}
		announced := func() bool {
			recs := l.records(t, "restart")
			return len(recs) == 1 && recs["engine-host"] == want
		}
		withdrawn := func() bool { return len(l.records(t, "restart")) == 0 }
		started := time.Now()
		testenv.Eventually(t, 60*time.Second, "restart record never announced", announced)
		l.figure(t, "private engine: services started -> record", time.Since(started))
		if got := l.digA(t, "restart"); !slices.Equal(got, []string{"127.0.0.1"}) {
			t.Errorf("A restart = %v, want [127.0.0.1]", got)
		}
		if body := testenv.MustHTTPBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 5*time.Second); !strings.HasPrefix(body, "engine-host ") {
			t.Errorf("restart answered %q, want engine-host", body)
		}

		stopped := time.Now()
		engine.Stop(t) // graceful: the engine stops its containers, then exits
		l.figure(t, "dockerd SIGTERM -> exited", time.Since(stopped))
		testenv.Eventually(t, mhExpire, "record of a container stopped by the engine's shutdown outlived TTL+1s", withdrawn)
		l.figure(t, "dockerd SIGTERM -> record gone", time.Since(stopped))
		// While the engine is down, nothing may announce the container again.
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
			if !withdrawn() {
				t.Fatalf("restart announced while its engine is down: %v", l.records(t, "restart"))
			}
		}

		restarted := time.Now()
		engine.Start(t)
		l.figure(t, "dockerd started -> answering", time.Since(restarted))
		testenv.Eventually(t, 60*time.Second, "restart record not back after the engine restart", announced)
		l.figure(t, "dockerd started -> container running and announced", time.Since(restarted))
		out, err := engine.Docker("ps", "-a", "--format", "{{.Names}} {{.State}}")
		if err != nil {
			t.Fatal(err)
		}
		if out != name+" running" {
			t.Errorf("private engine containers %q, want only %q (no orphan, no duplicate)", out, name+" running")
		}
		if n, d := sup.Count("announcer"), sup.Count("docker"); n != 1 || d != 1 {
			t.Errorf("processes under runit: %v; want one announcer and one docker run", sup.Names())
		}
	})

	t.Run("HostLoss", func(t *testing.T) {
		l.waitAll(t, 30*time.Second, "node-a", "node-b")
		l.StableLeader(t, 3*time.Second, 30*time.Second)
		lost := a.Kill(t)
		l.waitAll(t, mhExpire-time.Since(lost), "node-b")
		l.figure(t, "node-a lost -> its records gone, DNS answers node-b only", time.Since(lost))
		if d := time.Since(lost); d < time.Second {
			// A record gone this fast was withdrawn, not expired: the host did not die at once.
			t.Errorf("node-a's record gone %s after the host died: want it to expire with the lease", d)
		}
		// Nothing of the dead host comes back by itself: no runsv survived to restart it.
		time.Sleep(2 * time.Second)
		l.check(t, "node-b")
		if got := l.records(t, "crashy"); len(got) != 0 {
			t.Errorf("crashy records of the lost host: %v", got)
		}
		// The machine boots again: runit starts its services and the record comes back.
		booted := time.Now()
		a.Boot(t)
		l.waitAll(t, 30*time.Second, "node-a", "node-b")
		l.check(t, "node-a", "node-b")
		l.figure(t, "node-a booted again -> record back", time.Since(booted))
	})
}

// mhDigA asks CoreDNS for name's A records and returns them sorted; unlike
// testenv.CoreDNS.Dig, a server that does not answer is an error, not a test failure.
func mhDigA(dns *testenv.CoreDNS, name string) ([]string, error) {
	host, port, _ := net.SplitHostPort(dns.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dig", "@"+host, "-p", port, "+short", "+tries=1", "+time=2", name, "A").Output()
	if err != nil {
		return nil, fmt.Errorf("dig %s: %w", name, err)
	}
	got := strings.Fields(string(out))
	sort.Strings(got)
	return got, nil
}
