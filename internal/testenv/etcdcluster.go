package testenv

import (
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// StartEtcdCluster starts n embedded etcd members forming one cluster on loopback
// ports, for tests of a client moving between members; they stop when the test ends.
// Stop one (or Restart it) to make an outage.
func StartEtcdCluster(t testing.TB, n int) []*Etcd {
	t.Helper()
	members := make([]*Etcd, n)
	var initial []string
	for i := range members {
		cfg := embed.NewConfig()
		cfg.Dir = t.TempDir()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Logger = "zap"
		cfg.LogLevel = "error"
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		client, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)))
		peer, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)))
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
		initial = append(initial, cfg.Name+"="+peer.String())
		members[i] = &Etcd{Endpoint: client.String(), Dir: cfg.Dir, cfg: cfg}
	}
	errs := make(chan error, n)
	for _, m := range members {
		m.cfg.InitialCluster = strings.Join(initial, ",")
		srv, err := embed.StartEtcd(m.cfg)
		if err != nil {
			t.Fatalf("cannot start embedded etcd member %s: %v", m.cfg.Name, err)
		}
		m.e = srv
		t.Cleanup(m.Stop)
		go func() {
			select {
			case <-srv.Server.ReadyNotify():
				errs <- nil
			case <-time.After(30 * time.Second):
				errs <- fmt.Errorf("embedded etcd member %s not ready after 30s", m.cfg.Name)
			}
		}()
	}
	for range members {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return members
}

// EtcdBinary is Debian's etcd (/usr/bin/etcd, 3.4) run as a process, plain http.
type EtcdBinary struct {
	Endpoint string // http://127.0.0.1:PORT
	cmd      *exec.Cmd
	out      *SyncBuffer
	done     chan struct{}
}

// StartEtcdBinary starts Debian's etcd on free loopback ports in a temporary directory,
// without TLS or auth; it stops when the test ends.
func StartEtcdBinary(t testing.TB) *EtcdBinary {
	t.Helper()
	Need(t, "etcd")
	dir := t.TempDir()
	e := &EtcdBinary{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)), out: &SyncBuffer{}, done: make(chan struct{})}
	peer := fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	bin, _ := LookPath("etcd")
	e.cmd = exec.Command(bin,
		"--name", "test", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", e.Endpoint, "--advertise-client-urls", e.Endpoint,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "test="+peer,
		"--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn")
	e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("cannot start etcd: %v", err)
	}
	go func() { e.cmd.Wait(); close(e.done) }()
	t.Cleanup(e.Stop)
	host := strings.TrimPrefix(e.Endpoint, "http://")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", host, 100*time.Millisecond); err == nil {
			c.Close()
			break
		}
		select {
		case <-e.done:
			t.Fatalf("etcd exited: %v\n%s", e.cmd.ProcessState, e.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd on %s not listening after 30s\n%s", e.Endpoint, e.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return e
}

// Stop kills etcd and waits for it.
func (e *EtcdBinary) Stop() {
	if e.cmd != nil && e.cmd.Process != nil {
		e.cmd.Process.Kill()
		<-e.done
	}
}
