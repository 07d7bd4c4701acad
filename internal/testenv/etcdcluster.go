package testenv

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// StartEtcdCluster starts n embedded etcd members forming one cluster on loopback
// ports, for tests of a client moving between members; they stop when the test ends.
// Stop one (or Restart it) to make an outage.
func StartEtcdCluster(t testing.TB, n int) []*Etcd {
	t.Helper()
	members := make([]*Etcd, n)
	var initial []string
	for i := range members {
		cfg, client, peer := embedConfig(t, fmt.Sprintf("m%d", i))
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
	etcdProcess
}

// StartEtcdBinary starts Debian's etcd on free loopback ports in a temporary directory,
// without TLS or auth; it stops when the test ends.
func StartEtcdBinary(t testing.TB) *EtcdBinary {
	t.Helper()
	Need(t, "etcd")
	dir := t.TempDir()
	e := &EtcdBinary{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))}
	e.start(t, dir, e.Endpoint)
	host := strings.TrimPrefix(e.Endpoint, "http://")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", host, 100*time.Millisecond); err == nil {
			c.Close()
			break
		}
		select {
		case <-e.done:
			t.Fatalf("etcd exited: %v\n%s", e.cmd.ProcessState, e.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd on %s not listening after 30s\n%s", e.Endpoint, e.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return e
}
