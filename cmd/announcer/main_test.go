package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/testenv"
)

// syncBuf is the binary's output, written by exec's copier and read by the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestMain_Signals runs the built announcer as runit does and checks what main adds:
// SIGUSR1 (`sv 1`) re-reads the state directory at once and does not kill the process,
// TERM withdraws and exits 0.
func TestMain_Signals(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "announcer")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("cannot build the announcer: %v\n%s", err, out)
	}
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	dir := filepath.Join(t.TempDir(), ".rundock")
	const key = "/skydns/com/example/prod/s/web/n1"
	cmd := exec.Command(bin, "--name", "web", "--port", "80", "--instance", "n1", "--host", "127.0.0.10",
		"--ttl", "5", "--watch-container=false", "--etcd-endpoints", e.Endpoint, "--state-dir", dir)
	out := &syncBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("announcer output:\n%s", out.String())
		}
	})
	present := func() bool {
		resp, err := cli.Get(context.Background(), key)
		return err == nil && len(resp.Kvs) == 1
	}
	testenv.Eventually(t, 5*time.Second, "announced", present)

	// A signal with nothing changed: the announcer lives on, the record stays.
	cmd.Process.Signal(syscall.SIGUSR1)
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-done:
		done <- err
		t.Fatalf("SIGUSR1 ended the announcer: %v", err)
	default:
	}
	if !present() {
		t.Fatal("SIGUSR1 with no state change withdrew the record")
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "maintenance"), []byte("by test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	cmd.Process.Signal(syscall.SIGUSR1)
	for present() {
		if time.Since(begin) > 900*time.Millisecond { // the poll would take up to 1 s
			t.Fatal("record not withdrawn within 900 ms of SIGUSR1")
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("FIGURE SIGUSR1 (real signal, maintenance file) to record gone: %s", time.Since(begin).Round(100*time.Microsecond))

	os.Remove(filepath.Join(dir, "maintenance"))
	cmd.Process.Signal(syscall.SIGUSR1)
	testenv.Eventually(t, 900*time.Millisecond, "record back after the maintenance file went and SIGUSR1", present)

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err != nil {
			t.Fatalf("after TERM: %v, want exit 0", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no exit within 2s of TERM")
	}
	if present() {
		t.Fatal("record still there after TERM")
	}
	if l := out.String(); !strings.Contains(l, "entering maintenance") || !strings.Contains(l, "leaving maintenance") {
		t.Fatalf("log lacks the maintenance transitions:\n%s", l)
	}
}
