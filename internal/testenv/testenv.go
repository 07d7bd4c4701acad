// Package testenv starts the real parts rundock's tests run against: an embedded etcd,
// CoreDNS with its etcd plugin, runit, and the locally built echo image. A part that is
// missing fails the test with the command that installs it; nothing here skips. It is also
// the one home of the helpers the tests share: etcd clients, HTTP GETs, tree snapshots,
// runsv process scans (over package procfs) and polling.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/rundock/rundock/internal/etcd"
)

// Need fails the test unless every command is on PATH (or, for coredns, in GOBIN).
func Need(t testing.TB, commands ...string) {
	t.Helper()
	for _, c := range commands {
		if _, err := LookPath(c); err != nil {
			t.Fatalf("%s is not installed: run 'make setup' (scripts/setup.sh) first", c)
		}
	}
}

// LookPath finds a command on PATH, then in $(go env GOPATH)/bin, where setup.sh
// installs CoreDNS.
func LookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in GOPATH/bin", name)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Etcd is an embedded single-member etcd server.
type Etcd struct {
	Endpoint string   // http://127.0.0.1:PORT
	Also     []string // the endpoints on the other addresses StartEtcdAlso listens on
	Dir      string
	e        *embed.Etcd
	cfg      *embed.Config
}

// StartEtcd starts an embedded etcd on loopback ports; it stops when the test ends.
// The data directory is kept across Stop and Restart so a test can make an outage.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	return StartEtcdAlso(t)
}

// StartEtcdAlso is StartEtcd that also serves clients on each of the IP addresses hosts
// (an IPv6 address unbracketed), each on a port of its own, listed in Also.
func StartEtcdAlso(t testing.TB, hosts ...string) *Etcd {
	t.Helper()
	cfg, client, _ := embedConfig(t, "test")
	var also []string
	for _, h := range hosts {
		u, _ := url.Parse("http://" + net.JoinHostPort(h, strconv.Itoa(FreePort(t))))
		cfg.ListenClientUrls = append(cfg.ListenClientUrls, *u)
		cfg.AdvertiseClientUrls = append(cfg.AdvertiseClientUrls, *u)
		also = append(also, u.String())
	}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e := &Etcd{Endpoint: client.String(), Also: also, Dir: cfg.Dir, cfg: cfg}
	e.start(t)
	t.Cleanup(e.Stop)
	return e
}

// embedConfig is the configuration of one quiet embedded etcd member named name, with its
// data in a temporary directory and a client and a peer URL on free loopback ports.
func embedConfig(t testing.TB, name string) (cfg *embed.Config, client, peer *url.URL) {
	cfg = embed.NewConfig()
	cfg.Dir = t.TempDir()
	cfg.Name = name
	cfg.Logger = "zap"
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	client, _ = url.Parse(fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)))
	peer, _ = url.Parse(fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)))
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	return cfg, client, peer
}

func (e *Etcd) start(t testing.TB) {
	t.Helper()
	srv, err := embed.StartEtcd(e.cfg)
	if err != nil {
		t.Fatalf("cannot start embedded etcd: %v", err)
	}
	select {
	case <-srv.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		srv.Close()
		t.Fatal("embedded etcd not ready after 30s")
	}
	e.e = srv
}

// Stop stops the server; a stopped server stays stopped.
func (e *Etcd) Stop() {
	if e.e != nil {
		e.e.Close()
		e.e = nil
	}
}

// Restart starts a stopped server again on the same ports and data.
func (e *Etcd) Restart(t testing.TB) {
	t.Helper()
	e.Stop()
	e.cfg.ClusterState = embed.ClusterStateFlagExisting
	e.start(t)
}

// EtcdClient returns a client on endpoints that gives up dialing after 5 s and logs
// nothing (an outage or leader change a test makes on purpose is not news); it is closed
// when the test ends. It fails the test when the client cannot be made.
func EtcdClient(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("cannot create an etcd client for %v: %v", endpoints, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// WireClient returns rundock's own client (package etcd, the one the announcer and
// rundock use) on endpoints; it is closed when the test ends.
func WireClient(t testing.TB, endpoints ...string) *etcd.Client {
	t.Helper()
	c, err := etcd.New(etcd.Config{Endpoints: endpoints})
	if err != nil {
		t.Fatalf("cannot create an etcd client for %v: %v", endpoints, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// CoreDNS is a running CoreDNS serving the zone from etcd.
type CoreDNS struct {
	Addr string // 127.0.0.1:PORT, UDP and TCP
	cmd  *exec.Cmd
}

// StartCoreDNS starts CoreDNS with the etcd plugin for zone (e.g. s.prod.example.com)
// reading etcdEndpoint under /skydns; it stops when the test ends.
func StartCoreDNS(t testing.TB, zone, etcdEndpoint string) *CoreDNS {
	t.Helper()
	bin, err := LookPath("coredns")
	if err != nil {
		t.Fatalf("coredns is not installed: run 'make setup' (scripts/setup.sh) first")
	}
	port := FreePort(t)
	dir := t.TempDir()
	corefile := fmt.Sprintf("%s:%d {\n\tbind 127.0.0.1\n\tetcd {\n\t\tpath /skydns\n\t\tendpoint %s\n\t}\n}\n", zone, port, etcdEndpoint)
	if err := os.WriteFile(filepath.Join(dir, "Corefile"), []byte(corefile), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-conf", filepath.Join(dir, "Corefile"))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start coredns: %v", err)
	}
	c := &CoreDNS{Addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", c.Addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("coredns not listening on %s after 20s; output:\n%s", c.Addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Dig runs `dig +short` for name and type against the server and returns its lines.
func (c *CoreDNS) Dig(t testing.TB, name, qtype string) []string {
	t.Helper()
	host, port, _ := net.SplitHostPort(c.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dig", "@"+host, "-p", port, "+short", "+tries=1", "+time=2", name, qtype).Output()
	if err != nil {
		t.Fatalf("dig %s %s: %v", name, qtype, err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

var (
	imageOnce sync.Once
	imageErr  error
)

// EchoImage is the tag of the locally built test image (examples/images/echo).
const EchoImage = "rundock-echo:test"

// BuildEchoImage builds EchoImage once per test binary with examples/images/build.sh.
func BuildEchoImage(t testing.TB) string {
	t.Helper()
	Need(t, "docker")
	imageOnce.Do(func() {
		out, err := exec.Command("bash", filepath.Join(RepoRoot(), "examples/images/build.sh"), EchoImage).CombinedOutput()
		if err != nil {
			imageErr = fmt.Errorf("cannot build %s: %v\n%s", EchoImage, err, out)
		}
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return EchoImage
}

// RepoRoot is the repository's top directory, found from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Eventually polls cond every 50ms until it returns true or timeout passes, and returns
// how long it took; it fails the test with msg on timeout.
func Eventually(t testing.TB, timeout time.Duration, msg string, cond func() bool) time.Duration {
	t.Helper()
	return EventuallyMsg(t, timeout, func() string { return msg }, cond)
}

// EventuallyMsg is Eventually with a failure message made at the timeout, for messages that
// describe the state then (arguments to Eventually are evaluated before the wait).
func EventuallyMsg(t testing.TB, timeout time.Duration, msg func() string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("after %s: %s", timeout, msg())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// Binaries builds cmd/rundock, cmd/announcer and cmd/rundock-module once per test binary
// and returns the directory holding them, for tests that drive the real programs.
func Binaries(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		// One directory for every test process, so test runs leave nothing behind; a lock
		// serializes builds, and go build -o replaces a binary by rename, so a test of
		// another process running the old one is not disturbed.
		// One per checkout: two checkouts tested at once must not run each other's build.
		binDir = filepath.Join(os.TempDir(), fmt.Sprintf("rundock-test-bin-%x", crc32.ChecksumIEEE([]byte(RepoRoot()))))
		if binErr = os.MkdirAll(binDir, 0o755); binErr != nil {
			return
		}
		lock, err := os.OpenFile(filepath.Join(binDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			binErr = err
			return
		}
		defer lock.Close()
		if binErr = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); binErr != nil {
			return
		}
		for _, c := range []string{"rundock", "announcer", "rundock-module"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, c), "./cmd/"+c)
			cmd.Dir = RepoRoot()
			if out, err := cmd.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("cannot build %s: %v\n%s", c, err, out)
				return
			}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}
