package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/testenv"
	"github.com/rundock/rundock/internal/testenv/procfs"
)

// needsPrefix names the containers of the depends_on tests (not rdtest-dep-: the deploy
// tests remove everything that starts with that).
const needsPrefix = "rdtest-needs-"

// reboot simulates a host reboot under runit: runsvdir and every runsv under the test's
// root die at once (SIGKILL, like a power loss), the containers are gone, and a new
// runsvdir starts on the same service_dir with every service still linked. It returns the
// new runsvdir, killed on cleanup before StartRunit's cleanup stops the services.
// (A candidate for testenv.Runit, which owns the first runsvdir.)
func reboot(t *testing.T, r *testenv.Runit, names ...string) *exec.Cmd {
	t.Helper()
	for _, p := range procfs.Scan(func(p procfs.Proc) bool {
		return p.Comm == "runsvdir" && strings.Contains(strings.Join(p.Cmdline(), " "), r.ServiceDir)
	}) {
		syscall.Kill(p.PID, syscall.SIGKILL)
	}
	// runsv, run, finish, control/t and docker run clients work under the root.
	under := func(p procfs.Proc) bool { return strings.HasPrefix(p.Cwd, r.Root+"/") }
	for _, p := range procfs.Scan(under) {
		syscall.Kill(p.PID, syscall.SIGKILL)
	}
	for _, n := range names {
		exec.Command("docker", "rm", "-f", n).Run()
	}
	testenv.Eventually(t, 20*time.Second, "every process of the old boot gone", func() bool {
		for _, p := range procfs.Scan(under) {
			if p.Comm == "runsv" || p.Comm == "runsvdir" {
				return false
			}
		}
		return true
	})
	cmd := exec.Command("runsvdir", "-P", r.ServiceDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start runsvdir again: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func dockerInspect(t *testing.T, format, name string) string {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "-f", format, name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// A database-like service whose health check passes only when the test lets it, and an app
// that depends on it: apply -f applies db first whatever the file order; after a reboot the
// app's container starts only once db is healthy, its run waits through runit (once past
// the 60 s bound, then again after a short pause) and its log shows no crash-loop backoff.
func TestDepends_Reboot(t *testing.T) {
	e := newGenEnv(t, needsPrefix)
	db, app := needsPrefix+"db", needsPrefix+"app"
	flags := filepath.Join(e.r.Root, "flags")
	if err := os.MkdirAll(flags, 0o755); err != nil {
		t.Fatal(err)
	}
	unhealthy := filepath.Join(flags, "unhealthy")
	appPort := testenv.FreePort(t)
	dir := filepath.Join(e.r.Root, "services")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	common := fmt.Sprintf("image: %s\npull: never\nstop_timeout: 3\nsv_dir: %s\nservice_dir: %s\nlog_dir: %s\nbin_dir: %s\n",
		e.image, e.r.SvDir, e.r.ServiceDir, e.r.LogDir, e.r.BinDir)
	// a-app.yml sorts before b-db.yml: the order must come from depends_on.
	files := map[string]string{
		"a-app.yml": fmt.Sprintf("name: %s\n%sports: [\"127.0.0.1:%d:8080\"]\nenv: {INSTANCE: app}\ndepends_on: [%s]\n", app, common, appPort, db),
		"b-db.yml": fmt.Sprintf("name: %s\n%svolumes: [\"%s:/flags\"]\nenv: {INSTANCE: db, UNHEALTHY_FILE: /flags/unhealthy}\n"+
			"health_cmd: /echo -check\nhealth_interval: 1s\nhealth_timeout: 2s\nhealth_retries: 1\n", db, common, flags),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stdout, stderr, ok := e.cli(t, "apply", "-f", dir)
	if !ok {
		t.Fatalf("apply -f: %s\n%s", stdout, stderr)
	}
	if i, j := strings.Index(stdout, db+":"), strings.Index(stdout, app+":"); i < 0 || j < 0 || i > j {
		t.Fatalf("apply -f did not apply %s before %s:\n%s", db, app, stdout)
	}
	waitServing(t, app, appPort, "app", 60*time.Second)

	appLog := filepath.Join(e.r.LogDir, app, "current")
	describe := func() string {
		log, _ := os.ReadFile(appLog)
		ps, _ := exec.Command("docker", "ps", "-a", "--filter", "name="+needsPrefix, "--format", "{{.Names}} {{.Status}}").CombinedOutput()
		return fmt.Sprintf("db health %q\ndocker ps -a:\n%s\napp log:\n%s", dockerInspect(t, "{{.State.Health.Status}}", db), ps, log)
	}

	// The reboot: db comes back unhealthy and stays so past the app's 60 s bound.
	if err := os.WriteFile(unhealthy, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	logBefore, _ := os.ReadFile(appLog)
	reboot(t, e.r, app, db)
	testenv.EventuallyMsg(t, 60*time.Second, describe, func() bool {
		return dockerInspect(t, "{{.State.Status}}", db) == "running"
	})
	const hold = 80 * time.Second // longer than spec.DependsWait plus runsvdir's pickup after the reboot
	deadline := time.Now().Add(hold)
	statusWaiting := false // rundock status and --check named the wait while it lasted
	for time.Now().Before(deadline) {
		if n := anyContainers(t, app); len(n) != 0 {
			t.Fatalf("%s has a container while %s is not healthy:\n%s", app, db, describe())
		}
		if !statusWaiting {
			out, _, _ := e.cli(t, "status", app, "--sv-dir", e.r.SvDir, "--service-dir", e.r.ServiceDir, "--no-record")
			statusWaiting = strings.Contains(out, "waiting for: "+db+" to be healthy") && strings.Contains(out, "depends on:  "+db+" (healthy)")
			out, _, ok := e.cli(t, "status", app, "--sv-dir", e.r.SvDir, "--service-dir", e.r.ServiceDir, "--no-record", "--check")
			statusWaiting = statusWaiting && !ok && strings.Contains(out, app+": no container: waiting for "+db+" to be healthy (depends_on)")
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !statusWaiting {
		out, _, _ := e.cli(t, "status", app, "--sv-dir", e.r.SvDir, "--service-dir", e.r.ServiceDir, "--no-record")
		t.Errorf("rundock status (and --check) never said %s waits for %s while it did; now:\n%s", app, db, out)
	}
	healedAt := time.Now()
	if err := os.Remove(unhealthy); err != nil {
		t.Fatal(err)
	}
	var healthyAt time.Time
	testenv.EventuallyMsg(t, 30*time.Second, describe, func() bool {
		if healthyAt.IsZero() && dockerInspect(t, "{{.State.Health.Status}}", db) == "healthy" {
			healthyAt = time.Now()
		}
		return servesAlone(t, app, appPort, "app")
	})
	started, err := time.Parse(time.RFC3339Nano, dockerInspect(t, "{{.State.StartedAt}}", app))
	if err != nil {
		t.Fatalf("StartedAt of %s: %v", app, err)
	}
	if !started.After(healedAt) {
		t.Fatalf("%s started at %s, before %s could be healthy (%s)\n%s", app, started, db, healedAt, describe())
	}
	// The first passing probe of db's health check, when docker still lists it.
	for _, l := range strings.Split(dockerInspect(t, `{{range .State.Health.Log}}{{.ExitCode}} {{.End.Format "2006-01-02T15:04:05.999999999Z07:00"}}{{"\n"}}{{end}}`, db), "\n") {
		code, end, _ := strings.Cut(l, " ")
		if at, err := time.Parse(time.RFC3339Nano, end); err == nil && code == "0" {
			if started.Before(at) {
				t.Fatalf("%s started at %s, before db's first passing health check ended (%s)\n%s", app, started, at, describe())
			}
			break
		}
	}
	t.Logf("db healthy seen %s after the flag went, app started %s after it", healthyAt.Sub(healedAt).Round(time.Millisecond), started.Sub(healedAt).Round(time.Millisecond))

	// The app's log since the reboot: it waited for db by name and never backed off as after
	// a crash. (Whether it also gave up once at the bound depends on when runsvdir started it
	// after the reboot; the render tests check the give-up path against stub programs.)
	testenv.EventuallyMsg(t, 10*time.Second, describe, func() bool {
		log, _ := os.ReadFile(appLog)
		return strings.Contains(string(log[len(logBefore):]), "rundock: "+db+" is healthy")
	})
	log, _ := os.ReadFile(appLog)
	since := string(log[len(logBefore):])
	for _, want := range []string{
		"rundock: waiting up to 60 s for " + db + " to be healthy",
		"rundock: " + db + " is healthy",
	} {
		if !strings.Contains(since, want) {
			t.Errorf("app log lacks %q:\n%s", want, since)
		}
	}
	if strings.Contains(since, "after a short run, failure") {
		t.Errorf("app log shows crash-loop backoff after the reboot:\n%s", since)
	}
	if _, err := os.Stat(filepath.Join(e.r.SvDir, "docker-"+app, "supervise", "rundock-waiting")); err == nil {
		t.Errorf("the app serves, yet supervise/rundock-waiting is left")
	}
}

// A depends_on cycle is refused, naming it, and nothing is installed.
func TestDepends_CycleRefused(t *testing.T) {
	e := newGenEnv(t, needsPrefix+"cycle-")
	x, y := needsPrefix+"x", needsPrefix+"y"
	dir := filepath.Join(e.r.Root, "cycle")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, dep := range map[string]string{x: y, y: x} {
		data := fmt.Sprintf("name: %s\nimage: %s\npull: never\nsv_dir: %s\nservice_dir: %s\nlog_dir: %s\nbin_dir: %s\ndepends_on: [%s]\n",
			name, e.image, e.r.SvDir, e.r.ServiceDir, e.r.LogDir, e.r.BinDir, dep)
		if err := os.WriteFile(filepath.Join(dir, name+".yml"), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := e.tree()
	stdout, stderr, ok := e.cli(t, "apply", "-f", dir)
	if ok {
		t.Fatalf("apply -f of a cycle succeeded:\n%s", stdout)
	}
	if want := x + " -> " + y + " -> " + x; !strings.Contains(stderr, want) {
		t.Errorf("the error does not name the cycle %s:\n%s", want, stderr)
	}
	if after := e.tree(); after != before {
		t.Errorf("a refused apply changed the trees:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if n := anyContainers(t, x); len(n) != 0 {
		t.Errorf("containers of a refused apply: %v", n)
	}
}
