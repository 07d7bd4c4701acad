package render

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/testenv"
	"github.com/rundock/rundock/internal/tree"
)

// svStub answers like runit's sv for a dependency whose state the test writes into its
// directory: status holds run, down or finish (no file: its runsv is not running); the
// file healthy makes its check script pass. Like the real sv, check passes for a service
// that is down, and -w N waits (here: not at all).
const svStub = `#!/bin/sh
[ "$1" = -w ] && shift 2
st=$(cat "$2/status" 2>/dev/null) || { echo "fail: $2: runsv not running"; exit 1; }
case $1 in
status) echo "$st: $2: (pid 42) 3s"; exit 0 ;;
check)
	[ "$st" = down ] && { echo "ok: down: $2: 3s"; exit 0; }
	[ -e "$2/healthy" ] && { echo "ok: $st: $2: (pid 42) 3s"; exit 0; }
	echo "timeout: $st: $2: (pid 42) 3s"
	exit 1
	;;
esac
echo "sv stub: unexpected $*" >&2
exit 100
`

// depSandbox is a sandbox with an sv stub and sv_dir, and the service app rendered with
// depends_on deps in it.
type depSandbox struct {
	*sandbox
	svDir string
	tree  tree.Tree
}

func newDepSandbox(t *testing.T, deps ...any) *depSandbox {
	t.Helper()
	testenv.Need(t, "sh")
	sb := newSandbox(t)
	if err := os.WriteFile(filepath.Join(sb.bin, "sv"), []byte(svStub), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"rm", "dd"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s is not installed", name)
		}
		if err := os.Symlink(p, filepath.Join(sb.bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	d := &depSandbox{sandbox: sb, svDir: filepath.Join(sb.dir, "sv")}
	s, err := spec.FromMap(map[string]any{"name": "app", "image": "app:1", "sv_dir": d.svDir, "depends_on": deps}, "back-1")
	if err != nil {
		t.Fatal(err)
	}
	if d.tree, err = Render(s); err != nil {
		t.Fatal(err)
	}
	return d
}

// dep creates the tree directory of a dependency and sets what the sv stub says of it:
// status "" leaves its runsv not running.
func (d *depSandbox) dep(t *testing.T, name, status string, healthy bool) string {
	t.Helper()
	dir := filepath.Join(d.svDir, Dir(name))
	if err := os.MkdirAll(filepath.Join(dir, "supervise"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "status"))
	if status != "" {
		if err := os.WriteFile(filepath.Join(dir, "status"), []byte(status), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(dir, "healthy"))
	if healthy {
		if err := os.WriteFile(filepath.Join(dir, "healthy"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// script is the tree's file p with PATH pointing at the stubs and the dependency wait
// bounded by wait seconds instead of spec.DependsWait.
func (d *depSandbox) script(t *testing.T, p string, wait int) []byte {
	t.Helper()
	var data []byte
	for _, f := range d.tree.Files {
		if f.Path == p {
			data = f.Data
		}
	}
	const pathLine = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
	bound := []byte("\ndepends_wait=60\n")
	if p == "run" && !bytes.Contains(data, bound) {
		t.Fatalf("run has no %q line:\n%s", bound, data)
	}
	data = bytes.Replace(data, []byte(pathLine), []byte("PATH="+d.bin+"\n"), 1)
	return bytes.Replace(data, bound, []byte("\ndepends_wait="+strconv.Itoa(wait)+"\n"), 1)
}

// exec runs script p of app's tree in svc with args; it returns the output and exit code.
func (d *depSandbox) exec(t *testing.T, svc, p string, wait int, args ...string) (string, int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(svc, p), d.script(t, p, wait), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"./" + p}, args...)...)
	cmd.Dir = svc
	cmd.Env = []string{"PATH=" + d.bin, "RUNDOCK_TEST_ARGV=" + d.argv}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s: %v\n%s", p, err, out)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// svc makes app's service directory, with supervise/.
func (d *depSandbox) svc(t *testing.T) string {
	t.Helper()
	svc := filepath.Join(d.svDir, Dir("app"))
	if err := os.MkdirAll(filepath.Join(svc, "supervise"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(d.argv)
	return svc
}

func (d *depSandbox) dockerRan() bool {
	_, err := os.Stat(d.argv)
	return err == nil
}

func TestRender_DependsOn_Wait(t *testing.T) {
	tests := []struct {
		name string
		deps []any
		// set prepares the dependencies; later, if set, changes them a second into the wait.
		set, later func(t *testing.T, d *depSandbox)
		starts     bool     // docker run is reached
		out        []string // in the output, in order
		waiting    string   // supervise/rundock-waiting after run; "" none
	}{
		{name: "healthy", deps: []any{"db"},
			set:    func(t *testing.T, d *depSandbox) { d.dep(t, "db", "run", true) },
			starts: true, out: []string{"rundock: waiting up to 2 s for db to be healthy", "rundock: db is healthy"}},
		{name: "becomes healthy", deps: []any{"db"},
			set:    func(t *testing.T, d *depSandbox) { d.dep(t, "db", "run", false) },
			later:  func(t *testing.T, d *depSandbox) { d.dep(t, "db", "run", true) },
			starts: true, out: []string{"waiting up to 2 s for db to be healthy", "db is healthy"}},
		{name: "runsv not up yet after a boot", deps: []any{"db"},
			set:    func(t *testing.T, d *depSandbox) { d.dep(t, "db", "", false) },
			later:  func(t *testing.T, d *depSandbox) { d.dep(t, "db", "run", true) },
			starts: true, out: []string{"db is healthy"}},
		{name: "running, not healthy", deps: []any{"db"},
			set:     func(t *testing.T, d *depSandbox) { d.dep(t, "db", "run", false) },
			out:     []string{"waiting up to 2 s for db to be healthy", "rundock: db is not healthy after 2 s; exiting, runit starts this again in 2 s"},
			waiting: "db healthy"},
		{name: "down passes sv check but is not healthy", deps: []any{"db"},
			set: func(t *testing.T, d *depSandbox) { d.dep(t, "db", "down", true) },
			out: []string{"db is not healthy after 2 s"}, waiting: "db healthy"},
		{name: "no such service", deps: []any{"db"},
			set: func(t *testing.T, d *depSandbox) {},
			out: []string{"db is not healthy after 2 s"}, waiting: "db healthy"},
		{name: "started needs no health", deps: []any{"cache:started"},
			set:    func(t *testing.T, d *depSandbox) { d.dep(t, "cache", "run", false) },
			starts: true, out: []string{"waiting up to 2 s for cache to be started", "cache is started"}},
		{name: "started is not a service that waits itself", deps: []any{"cache:started"},
			set: func(t *testing.T, d *depSandbox) {
				dir := d.dep(t, "cache", "run", false)
				os.WriteFile(filepath.Join(dir, WaitingPath), []byte("db healthy\n"), 0o644)
			},
			out: []string{"cache is not started after 2 s"}, waiting: "cache started"},
		{name: "each in turn", deps: []any{"db", "cache:started"},
			set: func(t *testing.T, d *depSandbox) {
				d.dep(t, "db", "run", true)
				d.dep(t, "cache", "finish", false)
			},
			out:     []string{"db is healthy", "waiting up to 2 s for cache to be started", "cache is not started after 2 s"},
			waiting: "cache started"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDepSandbox(t, tt.deps...)
			tt.set(t, d)
			svc := d.svc(t)
			if tt.later != nil {
				timer := time.AfterFunc(time.Second, func() { tt.later(t, d) })
				defer timer.Stop()
			}
			out, code := d.exec(t, svc, "run", 2)
			if d.dockerRan() != tt.starts {
				t.Errorf("docker run called: %v, want %v\n%s", d.dockerRan(), tt.starts, out)
			}
			if tt.starts != (code == 0) {
				t.Errorf("exit code %d\n%s", code, out)
			}
			rest := out
			for _, w := range tt.out {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order):\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
			got, _ := os.ReadFile(filepath.Join(svc, WaitingPath))
			if want := tt.waiting; strings.TrimSpace(string(got)) != want {
				t.Errorf("%s = %q, want %q", WaitingPath, got, want)
			}
		})
	}
}

// A run that gave up waiting is no crash: finish pauses DependsPause seconds and counts no
// failure, where a short run of the container itself backs off.
func TestRender_DependsOn_FinishNoBackoff(t *testing.T) {
	d := newDepSandbox(t, "db")
	d.dep(t, "db", "run", false)
	svc := d.svc(t)
	out, code := d.exec(t, svc, "run", 1)
	if code != 1 || d.dockerRan() {
		t.Fatalf("run: exit %d, docker ran %v, want 1 and no docker run:\n%s", code, d.dockerRan(), out)
	}
	start := time.Now()
	out, code = d.exec(t, svc, "finish", 1, "1", "256")
	if code != 0 || strings.Contains(out, "after a short run") {
		t.Fatalf("finish after a dependency wait: exit %d, want 0 and no backoff:\n%s", code, out)
	}
	if el := time.Since(start); el < DependsPause*time.Second || el > (DependsPause+3)*time.Second {
		t.Errorf("finish took %v, want about %d s", el, DependsPause)
	}
	if _, err := os.Stat(filepath.Join(svc, "supervise/rundock-failures")); err == nil {
		t.Error("finish counted a failure for a dependency wait")
	}

	// Once db is healthy the container runs; when it then dies at once, that is a crash.
	d.dep(t, "db", "run", true)
	if out, code = d.exec(t, svc, "run", 1); code != 0 || !d.dockerRan() {
		t.Fatalf("run: exit %d, docker ran %v:\n%s", code, d.dockerRan(), out)
	}
	if _, err := os.Stat(filepath.Join(svc, WaitingPath)); err == nil {
		t.Error("run left the waiting marker behind once its dependencies served")
	}
	out, _ = d.exec(t, svc, "finish", 1, "1", "256")
	if !strings.Contains(out, "after a short run, failure 1") {
		t.Errorf("a short run of the container is no longer backed off:\n%s", out)
	}
}

// A stop while run waits (sv down: finish sees it wanted down, or control/t's marker)
// takes the waiting marker away.
func TestRender_DependsOn_StopClearsWaiting(t *testing.T) {
	d := newDepSandbox(t, "db")
	svc := d.svc(t)
	os.WriteFile(filepath.Join(svc, WaitingPath), []byte("db healthy\n"), 0o644)
	os.WriteFile(filepath.Join(svc, "supervise/rundock-stopped"), nil, 0o644)
	if out, code := d.exec(t, svc, "finish", 1, "-1", "15"); code != 0 {
		t.Fatalf("finish: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(svc, WaitingPath)); err == nil {
		t.Error("a stop left the waiting marker")
	}
}
