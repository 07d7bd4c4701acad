package multihost

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/testenv"
	"github.com/rundock/rundock/internal/testenv/procfs"
)

// Runsvdir is Debian's runsvdir running on this machine (not in a host container) over a
// service directory the test writes, for services that must reach something only this
// machine has, such as the private Docker engine.
type Runsvdir struct {
	Dir string
	Log string // runsvdir's and the services' output
	cmd *exec.Cmd
}

// StartRunsvdir writes each service's run (and finish) script and starts runsvdir -P on
// them. Cleanup stops every service with `sv exit`, then SIGKILLs and reports any process
// still running in a service directory.
func StartRunsvdir(t testing.TB, services map[string][2]string) *Runsvdir {
	t.Helper()
	testenv.Need(t, "runsvdir", "runsv", "sv")
	r := &Runsvdir{Dir: tempDir(t, "rdtest-mh-runsvdir")}
	for name, scripts := range services {
		dir := filepath.Join(r.Dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "run"), []byte(scripts[0]), 0o755); err != nil {
			t.Fatal(err)
		}
		if scripts[1] != "" {
			if err := os.WriteFile(filepath.Join(dir, "finish"), []byte(scripts[1]), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.Log = filepath.Join(tempDir(t, "rdtest-mh-runsvdir-log"), "output")
	log, err := os.Create(r.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close() // runsvdir holds its own descriptor
	r.cmd = exec.Command("runsvdir", "-P", r.Dir)
	r.cmd.Stdout, r.cmd.Stderr = log, log
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("cannot start runsvdir: %v", err)
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends runsvdir, then each runsv with `sv exit` (which stops its service first),
// and kills and reports whatever is left.
func (r *Runsvdir) stop(t testing.TB) {
	r.cmd.Process.Signal(syscall.SIGTERM) // runsvdir exits, leaving its runsv children
	r.cmd.Wait()
	entries, _ := os.ReadDir(r.Dir)
	args := []string{"-w", "15", "exit"}
	for _, e := range entries {
		args = append(args, filepath.Join(r.Dir, e.Name()))
	}
	exec.Command("sv", args...).Run()
	deadline := time.Now().Add(5 * time.Second)
	for len(r.Processes()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if t.Failed() {
		out, _ := os.ReadFile(r.Log)
		t.Logf("--- output of runsvdir %s ---\n%s", r.Dir, out)
	}
	if left := r.Processes(); len(left) > 0 {
		t.Errorf("processes left in %s after sv exit: %v; killing them", r.Dir, left)
		for pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// Processes returns the processes (PID: command name) whose working directory is one of
// the service directories: runsv, and what run started.
func (r *Runsvdir) Processes() map[int]string {
	procs := map[int]string{}
	for _, p := range procfs.Scan(func(p procfs.Proc) bool { return strings.HasPrefix(p.Cwd, r.Dir+"/") }) {
		procs[p.PID] = p.Comm
	}
	return procs
}

// Count returns how many processes of Processes run command name.
func (r *Runsvdir) Count(name string) int {
	n := 0
	for _, c := range r.Processes() {
		if c == name {
			n++
		}
	}
	return n
}

// Names returns the sorted command names of Processes, for messages.
func (r *Runsvdir) Names() []string {
	var names []string
	for _, c := range r.Processes() {
		names = append(names, c)
	}
	sort.Strings(names)
	return names
}
