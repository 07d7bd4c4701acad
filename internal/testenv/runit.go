package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/testenv/procfs"
)

// Runit is a real runsvdir watching a temporary service_dir, with temporary sv_dir, log_dir
// and bin_dir next to it, for tests that install services the way rundock does on a host.
type Runit struct {
	Root       string // parent of the directories below
	SvDir      string // service definitions (like /etc/sv)
	ServiceDir string // watched by runsvdir (like /etc/service)
	LogDir     string // svlogd directories (like /var/log/rundock)
	BinDir     string // rundock and announcer, when the test copied them there
	cmd        *exec.Cmd
	prefix     string
}

// StartRunit starts `runsvdir -P` on a fresh service_dir. prefix names the test's Docker
// containers (e.g. "rdtest-gen-"): on cleanup every service is stopped (sv down, sv exit),
// runsvdir is killed, any runsv left under Root is killed, and every container whose name
// starts with prefix is removed. Paths are short because runit's FIFOs live under them.
func StartRunit(t testing.TB, prefix string) *Runit {
	t.Helper()
	Need(t, "runsvdir", "runsv", "sv", "svlogd")
	root, err := os.MkdirTemp("", "rd-"+strings.Trim(prefix, "-")+"-")
	if err != nil {
		t.Fatal(err)
	}
	r := &Runit{
		Root:       root,
		SvDir:      filepath.Join(root, "sv"),
		ServiceDir: filepath.Join(root, "service"),
		LogDir:     filepath.Join(root, "log"),
		BinDir:     filepath.Join(root, "bin"),
		prefix:     prefix,
	}
	for _, d := range []string{r.SvDir, r.ServiceDir, r.LogDir, r.BinDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r.cmd = exec.Command("runsvdir", "-P", r.ServiceDir)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("cannot start runsvdir: %v", err)
	}
	t.Cleanup(r.stop)
	return r
}

// InstallBinaries copies rundock and announcer from Binaries(t) into BinDir.
func (r *Runit) InstallBinaries(t testing.TB) {
	t.Helper()
	src := Binaries(t)
	for _, name := range []string{"rundock", "announcer"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(r.BinDir, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func (r *Runit) stop() {
	// Stop every supervised service gracefully, then make each runsv exit.
	entries, _ := os.ReadDir(r.ServiceDir)
	var dirs []string
	for _, e := range entries {
		dirs = append(dirs, filepath.Join(r.ServiceDir, e.Name()))
	}
	if len(dirs) > 0 {
		exec.Command("sv", append([]string{"-w", "30", "down"}, dirs...)...).Run()
		exec.Command("sv", append([]string{"exit"}, dirs...)...).Run()
	}
	if r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := r.runsvs()
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	RemoveContainers(r.prefix)
	os.RemoveAll(r.Root)
}

// runsvs lists the runsv processes whose working directory is under Root.
func (r *Runit) runsvs() []int {
	var pids []int
	for _, p := range procfs.Scan(func(p procfs.Proc) bool {
		return p.Comm == "runsv" && strings.HasPrefix(p.Cwd, r.Root+"/")
	}) {
		pids = append(pids, p.PID)
	}
	return pids
}

// RunsvPIDs lists the runsv processes supervising dir (a service directory, or a link to
// one such as service_dir/NAME): runsv works in the directory the link resolves to. It
// fails the test when dir does not resolve.
func RunsvPIDs(t testing.TB, dir string) []int {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range procfs.Scan(func(p procfs.Proc) bool { return p.Comm == "runsv" && p.Cwd == real }) {
		pids = append(pids, p.PID)
	}
	return pids
}

// RemoveContainers force-removes every Docker container whose name starts with prefix.
// An empty prefix removes nothing.
func RemoveContainers(prefix string) {
	if prefix == "" {
		return
	}
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "name=^/"+prefix).Output()
	if err != nil {
		return
	}
	ids := strings.Fields(string(out))
	if len(ids) > 0 {
		exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
	}
}
