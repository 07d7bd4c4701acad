package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/rundock/rundock/internal/hostaddr"
	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/testenv"
	"github.com/rundock/rundock/internal/testenv/procfs"
)

// The announcer is tested as runit runs it: the built binary as a process, against an
// embedded etcd, CoreDNS with its etcd plugin, and the local Docker engine.

const (
	annDomain = "s.prod.example.com"
	annName   = "influxdb"
	annTTL    = 5 // --ttl where expiry matters, seconds
)

// annKey is the record's key for instance.
func annKey(t *testing.T, instance string) string {
	t.Helper()
	k, err := skydns.InstanceKey(skydns.DefaultPrefix, annDomain, annName, instance)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// annProc is a running announcer.
type annProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func (p *annProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *annProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// wait waits up to d for the process to exit and returns its exit code, -1 on timeout.
func (p *annProc) wait(d time.Duration) int {
	select {
	case <-p.done:
		if ee, ok := p.err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if p.err != nil {
			return -2
		}
		return 0
	case <-time.After(d):
		return -1
	}
}

// startAnnouncer runs the announcer binary with args; it is killed when the test ends
// and its log is shown when the test failed.
func startAnnouncer(t *testing.T, args ...string) *annProc {
	t.Helper()
	return startAnnouncerEnv(t, nil, args...)
}

// startAnnouncerEnv is startAnnouncer with extra environment variables (KEY=VALUE).
func startAnnouncerEnv(t *testing.T, env []string, args ...string) *annProc {
	t.Helper()
	bin := filepath.Join(testenv.Binaries(t), "announcer")
	p := &annProc{done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("cannot start announcer: %v", err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("announcer %v log:\n%s", args, p.log())
		}
	})
	return p
}

// annGet returns the record at key and its lease; ok is false when there is none.
func annGet(t *testing.T, cli *clientv3.Client, key string) (rec skydns.Record, lease clientv3.LeaseID, ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatalf("cannot get %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return skydns.Record{}, 0, false
	}
	rec, err = skydns.Decode(resp.Kvs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	return rec, clientv3.LeaseID(resp.Kvs[0].Lease), true
}

func annPresent(t *testing.T, cli *clientv3.Client, key string) bool {
	_, _, ok := annGet(t, cli, key)
	return ok
}

// annFigures collects the measured times for one summary line per test.
type annFigures struct {
	t    *testing.T
	what string
	ds   []time.Duration
}

func (f *annFigures) add(d time.Duration) { f.ds = append(f.ds, d) }

func (f *annFigures) report() {
	if len(f.ds) == 0 {
		return
	}
	lo, hi, sum := f.ds[0], f.ds[0], time.Duration(0)
	for _, d := range f.ds {
		lo, hi, sum = min(lo, d), max(hi, d), sum+d
	}
	f.t.Logf("FIGURE %s: n=%d min=%s mean=%s max=%s", f.what, len(f.ds), lo.Round(time.Millisecond),
		(sum / time.Duration(len(f.ds))).Round(time.Millisecond), hi.Round(time.Millisecond))
}

// TestAnnouncer_DNS: the record answers A and SRV through CoreDNS; TERM withdraws it
// (NXDOMAIN) and exits 0 within a second.
func TestAnnouncer_DNS(t *testing.T) {
	testenv.Need(t, "dig", "coredns")
	e := testenv.StartEtcd(t)
	dns := testenv.StartCoreDNS(t, annDomain, e.Endpoint)
	cli := testenv.EtcdClient(t, e.Endpoint)
	key := annKey(t, "node-back-1")

	p := startAnnouncer(t, "--name", annName, "--port", "8086", "--instance", "node-back-1",
		"--host", "127.0.0.10", "--ttl", strconv.Itoa(annTTL), "--priority", "10", "--weight", "50",
		"--watch-container=false", "--etcd-endpoints", e.Endpoint)
	fqdn := annName + "." + annDomain
	d := testenv.Eventually(t, 5*time.Second, "A record for "+fqdn, func() bool {
		a := dns.Dig(t, fqdn, "A")
		return len(a) == 1 && a[0] == "127.0.0.10"
	})
	t.Logf("FIGURE start to A answer: %s", d.Round(time.Millisecond))
	srv := dns.Dig(t, fqdn, "SRV")
	// CoreDNS scales weights within a priority to sum to 100: a lone record answers 100.
	if want := "10 100 8086 node-back-1." + fqdn + "."; len(srv) != 1 || srv[0] != want {
		t.Fatalf("SRV answer %q, want [%q]", srv, want)
	}
	rec, lease, ok := annGet(t, cli, key)
	if want := (skydns.Record{Host: "127.0.0.10", Port: 8086, Priority: 10, Weight: 50, TTL: annTTL, Group: "influxdb"}); !ok || rec != want || lease == 0 {
		t.Fatalf("record %+v lease %x, want %+v under a lease", rec, lease, want)
	}

	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	code := p.wait(time.Second)
	exit := time.Since(start)
	if code != 0 {
		t.Fatalf("after TERM: exit code %d within 1s (-1: still running), want 0", code)
	}
	t.Logf("FIGURE TERM to exit: %s", exit.Round(time.Millisecond))
	if a := dns.Dig(t, fqdn, "A"); len(a) != 0 {
		t.Fatalf("after TERM: A answers %q, want none", a)
	}
	if annPresent(t, cli, key) {
		t.Fatal("after TERM: key still in etcd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ttl, err := cli.TimeToLive(ctx, lease)
	if err != nil || ttl.TTL != -1 {
		t.Fatalf("after TERM: lease %x TTL %v, %v; want revoked (-1)", lease, ttl.TTL, err)
	}
	if log := p.log(); !strings.Contains(log, "msg=announced") || !strings.Contains(log, "withdrawn") {
		t.Fatalf("log lacks the announced/withdrawn lines:\n%s", log)
	}
}

// TestAnnouncer_Kill: a SIGKILLed announcer's record goes with its lease within TTL+1s.
func TestAnnouncer_Kill(t *testing.T) {
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	key := annKey(t, "node-kill")
	p := startAnnouncer(t, "--name", annName, "--port", "8086", "--instance", "node-kill", "--host", "127.0.0.10",
		"--ttl", strconv.Itoa(annTTL), "--watch-container=false", "--etcd-endpoints", e.Endpoint)
	testenv.Eventually(t, 5*time.Second, "record announced", func() bool { return annPresent(t, cli, key) })
	p.cmd.Process.Kill()
	d := testenv.Eventually(t, (annTTL+1)*time.Second, "record gone after SIGKILL within TTL+1s", func() bool {
		return !annPresent(t, cli, key)
	})
	t.Logf("FIGURE SIGKILL to record gone (ttl %ds): %s", annTTL, d.Round(time.Millisecond))
}

// TestAnnouncer_EtcdOutage: etcd down for longer than the TTL; when it comes back the
// announcer grants a new lease and puts the record again within seconds.
func TestAnnouncer_EtcdOutage(t *testing.T) {
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	key := annKey(t, "node-outage")
	p := startAnnouncer(t, "--name", annName, "--port", "8086", "--instance", "node-outage", "--host", "127.0.0.10",
		"--ttl", strconv.Itoa(annTTL), "--watch-container=false", "--etcd-endpoints", e.Endpoint)
	testenv.Eventually(t, 5*time.Second, "record announced", func() bool { return annPresent(t, cli, key) })
	_, oldLease, _ := annGet(t, cli, key)

	e.Stop()
	time.Sleep((annTTL + 1) * time.Second) // the keepalive gives up after one TTL
	e.Restart(t)
	// A fresh client: the first one may sit in gRPC's reconnect backoff for seconds, which is
	// the test's business, not the announcer's.
	cli = testenv.EtcdClient(t, e.Endpoint)
	// etcd restores the old lease with a fresh TTL, so the key alone proves nothing:
	// wait for the key under a new lease that is being renewed.
	d := testenv.Eventually(t, 10*time.Second, "record under a new lease after etcd restart", func() bool {
		_, l, ok := annGet(t, cli, key)
		return ok && l != oldLease
	})
	t.Logf("FIGURE etcd restart to record under a new lease: %s", d.Round(time.Millisecond))
	time.Sleep((annTTL + 1) * time.Second) // the old lease expires; the new one must be renewed
	if _, l, ok := annGet(t, cli, key); !ok || l == oldLease {
		t.Fatalf("record gone or on the old lease %x a TTL after the restart", oldLease)
	}
	if log := p.log(); !strings.Contains(log, "lease lost") {
		t.Fatalf("log lacks the lease lost line:\n%s", log)
	}
}

// annMember is one embedded etcd member; Close may be called more than once.
type annMember struct {
	*embed.Etcd
	once sync.Once
}

func (m *annMember) Close() { m.once.Do(m.Etcd.Close) }

// annCluster starts an n-member embedded etcd cluster on loopback ports.
func annCluster(t *testing.T, n int) ([]*annMember, []string) {
	t.Helper()
	cfgs := make([]*embed.Config, n)
	var initial, endpoints []string
	for i := range cfgs {
		cfg := embed.NewConfig()
		cfg.Dir = t.TempDir()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.LogLevel = "error"
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		c, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)))
		p, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)))
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*c}, []url.URL{*c}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*p}, []url.URL{*p}
		initial = append(initial, cfg.Name+"="+p.String())
		endpoints = append(endpoints, c.String())
		cfgs[i] = cfg
	}
	members := make([]*annMember, n)
	for i, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			t.Fatalf("cannot start etcd member %d: %v", i, err)
		}
		m := &annMember{Etcd: e}
		members[i] = m
		t.Cleanup(m.Close)
	}
	for i, m := range members {
		select {
		case <-m.Server.ReadyNotify():
		case <-time.After(30 * time.Second):
			t.Fatalf("etcd member %d not ready after 30s", i)
		}
	}
	return members, endpoints
}

// TestAnnouncer_LeaderLoss: a three-member cluster loses its leader; the record stays in
// etcd (read from the remaining members) and resolvable through CoreDNS throughout.
func TestAnnouncer_LeaderLoss(t *testing.T) {
	testenv.Need(t, "dig", "coredns")
	members, endpoints := annCluster(t, 3)
	key := annKey(t, "node-leader")
	startAnnouncer(t, "--name", annName, "--port", "8086", "--instance", "node-leader", "--host", "127.0.0.12",
		"--ttl", strconv.Itoa(annTTL), "--watch-container=false", "--etcd-endpoints", strings.Join(endpoints, ","))
	leader := -1
	for i, m := range members {
		if m.Server.MemberID() == m.Server.Leader() {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no leader among the members")
	}
	var rest []string
	for i, ep := range endpoints {
		if i != leader {
			rest = append(rest, ep)
		}
	}
	cli := testenv.EtcdClient(t, rest...)
	dns := testenv.StartCoreDNS(t, annDomain, strings.Join(rest, " "))
	fqdn := annName + "." + annDomain
	testenv.Eventually(t, 5*time.Second, "record announced", func() bool { return annPresent(t, cli, key) })
	testenv.Eventually(t, 5*time.Second, "A answer", func() bool { return len(dns.Dig(t, fqdn, "A")) == 1 })

	members[leader].Close()
	t.Logf("closed leader m%d", leader)
	end := time.Now().Add(3 * annTTL * time.Second)
	checks, servfails, inARow := 0, 0, 0
	for time.Now().Before(end) {
		if !annPresent(t, cli, key) {
			t.Fatalf("record missing from the remaining members %s after %d checks", rest, checks)
		}
		a := dns.Dig(t, fqdn, "A")
		switch {
		case len(a) == 1 && a[0] == "127.0.0.12":
			inARow = 0
		case len(a) > 0 && strings.HasPrefix(a[0], ";;"):
			// No answer at all: CoreDNS's own etcd read failed while the members elected a
			// new leader (the record is in etcd, checked above). A resolver retries; a second
			// of it in a row would be an outage.
			servfails++
			if inARow++; inARow > 5 {
				t.Fatalf("CoreDNS failed %d queries in a row after the leader loss: %q", inARow, a)
			}
		default:
			t.Fatalf("A answer %q after leader loss, want [127.0.0.12]", a)
		}
		checks++
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("record present in etcd at each of %d checks over %ds after the leader closed; DNS answered it at %d (CoreDNS failed the others while etcd elected)",
		checks, 3*annTTL, checks-servfails)
}

// annDocker runs docker with args and returns its trimmed output.
func annDocker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// annContainerName returns a unique container name removed when the test ends.
func annContainerName(t *testing.T) string {
	name := fmt.Sprintf("rdtest-ann-%d-%x", os.Getpid(), rand.Uint32())
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
	return name
}

// annNetwork creates a Docker bridge network of the test's own, removed when the test
// ends: the containers do not depend on the shared default bridge.
func annNetwork(t *testing.T) string {
	name := fmt.Sprintf("rdtest-ann-net-%d-%x", os.Getpid(), rand.Uint32())
	annDocker(t, "network", "create", name)
	t.Cleanup(func() { exec.Command("docker", "network", "rm", name).Run() })
	return name
}

// annProcStats returns the resident memory (kB) and CPU ticks (utime+stime) of pid.
func annProcStats(t *testing.T, pid int) (rssKB, ticks int) {
	t.Helper()
	rss, err := procfs.RSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	cpu, err := procfs.CPU(pid, false)
	if err != nil {
		t.Fatal(err)
	}
	return int(rss / 1024), int(cpu)
}

// TestAnnouncer_Container follows a real container by name: announced only while it
// runs, withdrawn in under a second on docker stop, back on docker start. It also
// measures the announcer's memory and idle CPU.
func TestAnnouncer_Container(t *testing.T) {
	image := testenv.BuildEchoImage(t)
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	netw := annNetwork(t)
	name := annContainerName(t)
	key := annKey(t, "node-ctr")
	// Started before the container exists, as runit starts both services at once.
	p := startAnnouncer(t, "--name", annName, "--container", name, "--port", "8086", "--instance", "node-ctr",
		"--ttl", strconv.Itoa(annTTL), "--etcd-endpoints", e.Endpoint)
	time.Sleep(500 * time.Millisecond)
	if annPresent(t, cli, key) {
		t.Fatal("announced before the container exists")
	}

	up := annFigures{t: t, what: "container start to record present"}
	down := annFigures{t: t, what: "docker stop to record gone"}
	start := time.Now()
	annDocker(t, "run", "-d", "--init", "--network", netw, "--name", name, image)
	testenv.Eventually(t, 5*time.Second, "record after docker run", func() bool { return annPresent(t, cli, key) })
	up.add(time.Since(start))
	rec, _, _ := annGet(t, cli, key)
	priv, err := hostaddr.Private("")
	if err != nil {
		t.Fatal(err)
	}
	if want := (skydns.Record{Host: priv.String(), Port: 8086, TTL: annTTL, Group: "influxdb"}); rec != want {
		t.Fatalf("record %+v, want %+v (default --announce-as private)", rec, want)
	}
	lag := annFigures{t: t, what: "container StartedAt (docker's clock) to record seen (50 ms polls)"}
	for i := 0; i < 3; i++ {
		start := time.Now()
		stop := exec.Command("docker", "stop", name)
		if err := stop.Start(); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, time.Second, "record gone within 1s of docker stop", func() bool { return !annPresent(t, cli, key) })
		down.add(time.Since(start))
		if err := stop.Wait(); err != nil {
			t.Fatalf("docker stop: %v", err)
		}
		start = time.Now()
		annDocker(t, "start", name)
		testenv.Eventually(t, 5*time.Second, "record back after docker start", func() bool { return annPresent(t, cli, key) })
		up.add(time.Since(start))
		seen := time.Now()
		started, err := time.Parse(time.RFC3339Nano, annDocker(t, "inspect", "-f", "{{.State.StartedAt}}", name))
		if err != nil {
			t.Fatal(err)
		}
		lag.add(seen.Sub(started))
	}
	up.report()
	down.report()
	lag.report()

	// Docker's event filter matches name prefixes: a sibling named NAME-x stopping must
	// not withdraw NAME's record.
	sibling := name + "-x"
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", sibling).Run() })
	annDocker(t, "run", "-d", "--init", "--network", netw, "--name", sibling, image)
	annDocker(t, "stop", sibling)
	time.Sleep(300 * time.Millisecond)
	if !annPresent(t, cli, key) {
		t.Fatalf("record withdrawn when %s (not %s) stopped", sibling, name)
	}

	rss, before := annProcStats(t, p.cmd.Process.Pid)
	const idle = 20 * time.Second
	time.Sleep(idle)
	_, after := annProcStats(t, p.cmd.Process.Pid)
	if !annPresent(t, cli, key) {
		t.Fatal("record lost while idle")
	}
	t.Logf("FIGURE announcer VmRSS %d kB; idle CPU %d ticks (1/100 s) over %s = %.2f%% of one core (ttl %ds)",
		rss, after-before, idle, float64(after-before)/idle.Seconds(), annTTL)

	// Docker removes the container: withdrawn, and not announced again.
	annDocker(t, "rm", "-f", name)
	testenv.Eventually(t, time.Second, "record gone after docker rm -f", func() bool { return !annPresent(t, cli, key) })
}

// TestAnnouncer_Health: a container whose health check fails is never announced; one
// that turns unhealthy is withdrawn; announce-as container announces the container IP.
func TestAnnouncer_Health(t *testing.T) {
	image := testenv.BuildEchoImage(t)
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	netw := annNetwork(t)

	t.Run("failing", func(t *testing.T) {
		name := annContainerName(t)
		key := annKey(t, "node-sick")
		p := startAnnouncer(t, "--name", annName, "--container", name, "--port", "8086", "--instance", "node-sick",
			"--host", "127.0.0.13", "--ttl", strconv.Itoa(annTTL), "--etcd-endpoints", e.Endpoint)
		annDocker(t, "run", "-d", "--init", "--network", netw, "--name", name, "--health-cmd", "exit 1",
			"--health-interval", "1s", "--health-retries", "1", image)
		deadline := time.Now().Add(15 * time.Second)
		for {
			if annPresent(t, cli, key) {
				t.Fatal("a container with a failing health check was announced")
			}
			if annDocker(t, "inspect", "-f", "{{.State.Health.Status}}", name) == "unhealthy" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("container not unhealthy after 15s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("unhealthy after %s", time.Until(deadline.Add(-15*time.Second)).Abs().Round(time.Millisecond))
		time.Sleep(time.Second)
		if annPresent(t, cli, key) {
			t.Fatal("an unhealthy container was announced")
		}
		// The announcer did follow the container: it saw it start and turn unhealthy.
		if log := p.log(); !strings.Contains(log, "health_status: unhealthy") || strings.Contains(log, "msg=announced") {
			t.Fatalf("log does not show the container followed and never announced:\n%s", log)
		}
	})

	t.Run("turns_unhealthy", func(t *testing.T) {
		name := annContainerName(t)
		key := annKey(t, "node-turns")
		startAnnouncer(t, "--name", annName, "--container", name, "--port", "8086", "--instance", "node-turns",
			"--announce-as", "container", "--ttl", strconv.Itoa(annTTL), "--etcd-endpoints", e.Endpoint)
		annDocker(t, "run", "-d", "--init", "--network", netw, "--name", name, "-e", "UNHEALTHY_FILE=/tmp/sick",
			"--health-cmd", "/echo -check", "--health-interval", "1s", "--health-retries", "1", image)
		if annPresent(t, cli, key) {
			t.Fatal("announced before the first health check passed")
		}
		d := testenv.Eventually(t, 10*time.Second, "announced once healthy", func() bool { return annPresent(t, cli, key) })
		t.Logf("FIGURE docker run to record present (health interval 1s): %s", d.Round(time.Millisecond))
		rec, _, _ := annGet(t, cli, key)
		ip := annDocker(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name)
		if rec.Host != ip {
			t.Fatalf("announce-as container: host %q, want the container IP %q", rec.Host, ip)
		}
		annDocker(t, "exec", name, "sh", "-c", ": > /tmp/sick")
		d = testenv.Eventually(t, 10*time.Second, "withdrawn once unhealthy", func() bool { return !annPresent(t, cli, key) })
		t.Logf("FIGURE unhealthy file to record gone (health interval 1s): %s", d.Round(time.Millisecond))
		annDocker(t, "exec", name, "sh", "-c", "rm -f /tmp/sick || mv /tmp/sick /tmp/well")
		testenv.Eventually(t, 10*time.Second, "announced again once healthy", func() bool { return annPresent(t, cli, key) })
	})
}

// annDockerProxy forwards a unix socket to the real Docker socket and can cut every
// connection, which the announcer sees as a daemon restart: its events stream breaks
// and it cannot reach Docker until the proxy resumes.
type annDockerProxy struct {
	path  string
	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

func startDockerProxy(t *testing.T) *annDockerProxy {
	t.Helper()
	p := &annDockerProxy{path: filepath.Join(t.TempDir(), "docker.sock")}
	p.resume(t)
	t.Cleanup(p.cut)
	return p
}

func (p *annDockerProxy) resume(t *testing.T) {
	t.Helper()
	os.Remove(p.path)
	ln, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("unix", "/var/run/docker.sock")
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, d)
			p.mu.Unlock()
			go func() { io.Copy(d, c); d.Close() }()
			go func() { io.Copy(c, d); c.Close() }()
		}
	}()
}

func (p *annDockerProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestAnnouncer_DockerReconnect: the announcer loses Docker (events stream and API) while
// the container stops; on reconnect it inspects again and withdraws the record, then
// follows the container's next start.
func TestAnnouncer_DockerReconnect(t *testing.T) {
	image := testenv.BuildEchoImage(t)
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	proxy := startDockerProxy(t)
	netw := annNetwork(t) // before the container: cleanups run last-first
	name := annContainerName(t)
	key := annKey(t, "node-reconnect")
	annDocker(t, "run", "-d", "--init", "--network", netw, "--name", name, image)

	p := startAnnouncerEnv(t, []string{"DOCKER_HOST=unix://" + proxy.path}, "--name", annName, "--container", name, "--port", "8086", "--instance", "node-reconnect",
		"--host", "127.0.0.14", "--ttl", strconv.Itoa(annTTL), "--etcd-endpoints", e.Endpoint)
	testenv.Eventually(t, 5*time.Second, "announced through the proxy", func() bool { return annPresent(t, cli, key) })

	proxy.cut()
	annDocker(t, "stop", name) // unseen by the announcer
	time.Sleep(time.Second)
	proxy.resume(t)
	d := testenv.Eventually(t, 8*time.Second, "withdrawn after reconnect and inspect", func() bool { return !annPresent(t, cli, key) })
	t.Logf("FIGURE docker reachable again to stale record withdrawn: %s", d.Round(time.Millisecond))
	annDocker(t, "start", name)
	testenv.Eventually(t, 5*time.Second, "announced after start on the new stream", func() bool { return annPresent(t, cli, key) })
	if log := p.log(); !strings.Contains(log, "docker events stream lost") {
		t.Fatalf("log lacks the stream lost line:\n%s", log)
	}
}

// TestAnnouncer_TermEtcdDown: with etcd gone, TERM still exits 0 within a second (the
// cleanup gives up and the lease expires the record); a second TERM exits at once.
func TestAnnouncer_TermEtcdDown(t *testing.T) {
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	start := func(instance string) *annProc {
		p := startAnnouncer(t, "--name", annName, "--port", "8086", "--instance", instance, "--host", "127.0.0.15",
			"--ttl", strconv.Itoa(annTTL), "--watch-container=false", "--etcd-endpoints", e.Endpoint)
		key := annKey(t, instance)
		testenv.Eventually(t, 5*time.Second, "record announced", func() bool { return annPresent(t, cli, key) })
		return p
	}
	once, twice := start("node-term-1"), start("node-term-2")
	e.Stop()

	begin := time.Now()
	once.cmd.Process.Signal(syscall.SIGTERM)
	if code := once.wait(time.Second); code != 0 {
		t.Fatalf("one TERM with etcd down: exit code %d within 1s (-1: still running), want 0", code)
	}
	t.Logf("FIGURE TERM to exit with etcd down: %s", time.Since(begin).Round(time.Millisecond))
	if !strings.Contains(once.log(), "cannot withdraw") {
		t.Fatalf("log does not say the withdrawal failed:\n%s", once.log())
	}

	begin = time.Now()
	twice.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(50 * time.Millisecond)
	twice.cmd.Process.Signal(syscall.SIGTERM)
	if code := twice.wait(300 * time.Millisecond); code != 1 {
		t.Fatalf("two TERMs: exit code %d within 350ms (-1: still running), want 1", code)
	}
	t.Logf("FIGURE second TERM to exit: %s", time.Since(begin).Round(time.Millisecond))
}
