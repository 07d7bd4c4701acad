package multihost

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/testenv"
)

// Dockerd is a private Docker engine (a second dockerd with its own data, exec root,
// socket and containerd) that a test may stop and start: restarting the shared engine would
// break every other test running on it. It uses the vfs storage driver, a bridge of its
// own (never --bridge=none, which deletes the shared engine's docker0) and no iptables or
// masquerading, so it touches nothing of the shared engine's networking; its containers
// run with --network host.
type Dockerd struct {
	Dir  string // data, exec root, socket and log
	Host string // DOCKER_HOST value: unix://DIR/docker.sock
	cmd  *exec.Cmd
	log  *os.File
}

// StartDockerd starts a private engine and registers its removal (containers, daemon,
// mounts, files) in t.Cleanup.
func StartDockerd(t testing.TB) *Dockerd {
	t.Helper()
	testenv.Need(t, "dockerd", "containerd", "docker")
	dir, err := os.MkdirTemp("", "rdtest-mh-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	d := &Dockerd{Dir: dir, Host: "unix://" + filepath.Join(dir, "docker.sock")}
	t.Cleanup(d.remove)
	// An empty config file: the machine's /etc/docker/daemon.json sets a storage driver
	// and data root that must not apply here.
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Start(t)
	return d
}

// Start starts the daemon (again) and waits until it answers.
func (d *Dockerd) Start(t testing.TB) {
	t.Helper()
	log, err := os.OpenFile(filepath.Join(d.Dir, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	d.log = log
	// Never --bridge=none: a dockerd started with it deletes the host's docker0 (moby's
	// removeDefaultBridgeInterface), breaking the shared engine. Give it a bridge of its own.
	if err := privateBridge(); err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command("dockerd", "--config-file", filepath.Join(d.Dir, "daemon.json"),
		"--data-root", filepath.Join(d.Dir, "data"), "--exec-root", filepath.Join(d.Dir, "exec"),
		"--pidfile", filepath.Join(d.Dir, "dockerd.pid"), "-H", d.Host,
		"--bridge="+privateBridgeName, "--iptables=false", "--ip-masq=false", "--storage-driver", "vfs",
		"--cgroup-parent", filepath.Base(d.Dir))
	d.cmd.Stdout, d.cmd.Stderr = log, log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("cannot start dockerd: %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := d.Docker("version", "--format", "{{.Server.Version}}"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("private dockerd not answering on %s after 60s; log:\n%s", d.Host, d.tail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop stops the daemon gracefully (SIGTERM, as a service manager would for a restart or
// upgrade) and waits for it to exit; without live-restore it stops its containers first.
func (d *Dockerd) Stop(t testing.TB) {
	t.Helper()
	if err := d.stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func (d *Dockerd) stop(timeout time.Duration) error {
	if d.cmd == nil {
		return nil
	}
	cmd := d.cmd
	d.cmd = nil
	defer d.log.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("private dockerd did not stop within %s after SIGTERM; killed", timeout)
	}
}

// Docker runs the docker CLI against the private engine.
func (d *Dockerd) Docker(args ...string) (string, error) {
	return Docker(append([]string{"-H", d.Host}, args...)...)
}

// LoadImage copies image from the shared engine into the private one.
func (d *Dockerd) LoadImage(t testing.TB, image string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", "docker save \"$1\" | docker -H \"$2\" load -q", "sh", image, d.Host)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cannot copy %s into the private engine: %v\n%s", image, err, out)
	}
}

// remove deletes the engine's containers, stops it, unmounts what it left mounted under its
// directory (network namespaces), and removes the directory and the engine's cgroups.
func (d *Dockerd) remove() {
	if d.cmd != nil {
		if ids, err := d.Docker("ps", "-aq"); err == nil && ids != "" {
			d.Docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
		d.stop(60 * time.Second)
	}
	if f, err := os.Open("/proc/self/mounts"); err == nil {
		var mounts []string
		s := bufio.NewScanner(f)
		for s.Scan() {
			if fields := strings.Fields(s.Text()); len(fields) > 1 && strings.HasPrefix(fields[1], d.Dir+"/") {
				mounts = append(mounts, fields[1])
			}
		}
		f.Close()
		for i := len(mounts) - 1; i >= 0; i-- { // deepest last mounted first
			syscall.Unmount(mounts[i], syscall.MNT_DETACH)
		}
	}
	os.RemoveAll(d.Dir)
	// The bridge serves this engine only (one private engine per test binary at a time).
	exec.Command("ip", "link", "del", privateBridgeName).Run()
	// The engine's --cgroup-parent directories, one per controller (cgroup v1) or one (v2).
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + filepath.Base(d.Dir))
	for _, c := range append(dirs, "/sys/fs/cgroup/"+filepath.Base(d.Dir)) {
		os.Remove(c)
	}
}

// tail returns the end of the daemon's log.
func (d *Dockerd) tail() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "dockerd.log"))
	if i := bytes.LastIndexByte(b[:max(0, len(b)-4000)], '\n'); i > 0 {
		b = b[i+1:]
	}
	return string(b)
}

// privateBridgeName is the bridge private engines attach their unused default network to.
const privateBridgeName = "rdtest-mh-br0"

// privateBridge creates privateBridgeName, with an address no other network uses, unless it
// exists already.
func privateBridge() error {
	if exec.Command("ip", "link", "show", privateBridgeName).Run() == nil {
		return nil
	}
	for _, args := range [][]string{
		{"link", "add", privateBridgeName, "type", "bridge"},
		{"addr", "add", "10.213.255.1/24", "dev", privateBridgeName},
		{"link", "set", privateBridgeName, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("cannot create bridge %s: ip %s: %v: %s", privateBridgeName, strings.Join(args, " "), err, out)
		}
	}
	return nil
}
