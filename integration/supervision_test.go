package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/runit"
	"github.com/rundock/rundock/internal/testenv"
	"github.com/rundock/rundock/internal/testenv/procfs"
)

const supPrefix = "rdtest-sup-"

// supService is one enabled service in a genEnv, driven with sv and docker directly.
type supService struct {
	e    *genEnv
	name string
	port int
	dir  string // the service's link in service_dir
}

func enableSup(t *testing.T, e *genEnv, name string, extra ...[2]string) *supService {
	t.Helper()
	s := &supService{e: e, name: name, port: testenv.FreePort(t)}
	s.dir = filepath.Join(e.r.ServiceDir, "docker-"+name)
	opts := append([][2]string{
		{"name", name}, {"image", e.image}, {"pull", "never"}, {"stop_timeout", "3"},
		{"ports", fmt.Sprintf("127.0.0.1:%d:8080", s.port)}, {"env", "INSTANCE=" + name},
	}, e.dirs()...)
	opts = append(opts, extra...)
	if _, stderr, ok := e.cliApply(t, nil, opts); !ok {
		t.Fatalf("enabling %s: %s", name, stderr)
	}
	return s
}

func (s *supService) sv(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("sv", append(args, s.dir)...).CombinedOutput()
	if err != nil {
		t.Fatalf("sv %s %s: %v: %s\n%s", strings.Join(args, " "), s.dir, err, out, s.state(t))
	}
	return string(out)
}

// sv sends a command only when supervise/status does not already show it, and sv -w down
// is satisfied by any status that says down; runsv reads commands only when it is not busy
// (while control/t runs, and for a second after a run under a second, with a status that
// can say "down, want up"). A test that fires sv commands faster than runsv takes them
// races runit itself (see runit.WaitWant), so down and up wait until runsv has taken the
// command and acted on it.

// down stops the service with sv -w 30 down and waits until runsv wants it down and it is.
func (s *supService) down(t *testing.T) {
	t.Helper()
	s.sv(t, "-w", "30", "down")
	s.waitStatus(t, "down", func(st runit.Status) bool {
		return st.Want == "down" && st.State == "down" && st.PID == 0
	})
}

// up starts the service with sv up and waits until runsv has started run for it; the
// container is still starting then.
func (s *supService) up(t *testing.T) {
	t.Helper()
	s.sv(t, "up")
	s.waitStatus(t, "up", func(st runit.Status) bool {
		return st.Want == "up" && st.State == "run" && st.PID != 0
	})
}

func (s *supService) waitStatus(t *testing.T, what string, ok func(runit.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := runit.ReadStatus(s.dir)
		if err == nil && ok(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("runsv has not acted on sv %s within 30s: %+v %v\n%s", what, st, err, s.state(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exactlyOne waits until exactly one container of the service runs and serves, then checks
// it is still the only one a moment later (a duplicate would show up by then).
func (s *supService) exactlyOne(t *testing.T, timeout time.Duration) (string, time.Duration) {
	t.Helper()
	took := testenv.EventuallyMsg(t, timeout, func() string {
		return fmt.Sprintf("%s not serving on port %d\n%s", s.name, s.port, s.state(t))
	}, func() bool { return servesAlone(t, s.name, s.port, s.name) })
	first := containers(t, s.name)
	time.Sleep(time.Second)
	now := containers(t, s.name)
	if len(now) != 1 || now[0] != first[0] {
		t.Fatalf("want exactly one running container %s, got %v (was %v)\n%s", s.name, now, first, s.state(t))
	}
	if all := anyContainers(t, s.name); len(all) != 1 {
		t.Fatalf("want exactly one container %s in any state, got %v\n%s", s.name, all, s.state(t))
	}
	return now[0], took
}

// state describes the service for a failure message: what runit, Docker, the service's
// own supervise files and its log say.
func (s *supService) state(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	url := fmt.Sprintf("http://127.0.0.1:%d/", s.port)
	fmt.Fprintf(&b, "last answer: %q\n", testenv.HTTPBody(url, 2*time.Second))
	fmt.Fprintf(&b, "status: %s\n", s.status())
	out, _ := exec.Command("docker", "ps", "-a", "--no-trunc", "--filter", "name="+s.name,
		"--format", "{{.ID}} {{.Names}} {{.Status}}").CombinedOutput()
	fmt.Fprintf(&b, "docker ps -a:\n%s", out)
	for _, f := range []string{"rundock-started", "rundock-stopped", "rundock-failures"} {
		data, err := os.ReadFile(filepath.Join(s.dir, "supervise", f))
		fmt.Fprintf(&b, "supervise/%s: %q %v\n", f, bytes.TrimSpace(data), err)
	}
	fmt.Fprintf(&b, "now %d\n", time.Now().Unix())
	// Processes of the service: anything mentioning its name, or working in its directory
	// (runsv, run, control/t, finish and their children).
	real, _ := filepath.EvalSymlinks(s.dir)
	out, _ = exec.Command("ps", "-eo", "pid,ppid,etimes,args").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		cwd := ""
		if len(f) > 0 {
			cwd, _ = os.Readlink("/proc/" + f[0] + "/cwd")
		}
		if strings.Contains(line, s.name) || (real != "" && strings.HasPrefix(cwd, real)) {
			fmt.Fprintf(&b, "ps: %s\n", line)
		}
	}
	log, err := os.ReadFile(filepath.Join(s.e.r.LogDir, s.name, "current"))
	if err != nil {
		fmt.Fprintf(&b, "log: %v\n", err)
	}
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	fmt.Fprintf(&b, "log (last %d lines):\n%s\n", len(lines), strings.Join(lines, "\n"))
	return b.String()
}

// status is runsv's view of the service: supervise/status from byte 12 (pid, paused, want,
// got TERM, state) and what sv status makes of it.
func (s *supService) status() string {
	raw, _ := os.ReadFile(filepath.Join(s.dir, "supervise", "status"))
	out, _ := exec.Command("sv", "status", s.dir).CombinedOutput()
	return fmt.Sprintf("[% x] %s", raw[min(12, len(raw)):], strings.TrimSpace(string(out)))
}

// waitGone waits until container id no longer runs.
func waitGone(t *testing.T, id string, timeout time.Duration) {
	t.Helper()
	testenv.Eventually(t, timeout, "container "+id+" gone", func() bool {
		out, err := exec.Command("docker", "ps", "-q", "--no-trunc", "--filter", "id="+id).Output()
		return err == nil && strings.TrimSpace(string(out)) == ""
	})
}

// settle waits until the service's run has lived minUptime, so finish treats the next exit
// as a crash of a healthy service (no backoff) rather than part of a crash loop.
func (s *supService) settle(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, s.name+" up for 10s", func() bool {
		st, err := runit.ReadStatus(s.dir)
		return err == nil && st.State == "run" && st.Uptime >= 10
	})
}

// Faults a supervisor must survive, each leaving exactly one container running again.
func TestSupervision_Faults(t *testing.T) {
	// Not parallel: TestSupervision_DockerRestart, further down, restarts the shared
	// engine; parallel tests would resume after it, on a daemon just restarted.
	e := newGenEnv(t, supPrefix)
	s := enableSup(t, e, supPrefix+"web")
	id, took := s.exactlyOne(t, 60*time.Second)
	t.Logf("serving %s after %s", id, took)

	t.Run("20 cycles of sv down and sv up", func(t *testing.T) {
		var downs []time.Duration
		// On failure, what each cycle saw, to tell a supervision fault from a test race.
		var trace []string
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("cycles:\n%s", strings.Join(trace, "\n"))
			}
		})
		for i := range 20 {
			start := time.Now()
			trace = append(trace, fmt.Sprintf("%s cycle %d: before down %s", start.Format("15:04:05.000"), i, s.status()))
			s.down(t)
			downs = append(downs, time.Since(start))
			trace = append(trace, fmt.Sprintf("%s cycle %d: down took %s, %s", time.Now().Format("15:04:05.000"), i, time.Since(start).Round(time.Millisecond), s.status()))
			if n := containers(t, s.name); len(n) != 0 {
				t.Fatalf("cycle %d: %d containers running after sv down\n%s", i, len(n), s.state(t))
			}
			s.up(t)
			trace = append(trace, fmt.Sprintf("%s cycle %d: up taken, %s", time.Now().Format("15:04:05.000"), i, s.status()))
			// Every few cycles, let it come fully up; otherwise bounce it while starting.
			if i%5 == 4 {
				s.exactlyOne(t, 60*time.Second)
			}
		}
		_, took := s.exactlyOne(t, 60*time.Second)
		t.Logf("exactly one container %s after the last sv up", took)
		slices.Sort(downs)
		// sv polls every 0.42 s; a docker stop of a container not started yet adds 0.5 s.
		t.Logf("FIGURE sv -w 30 down over 20 cycles: p50 %s, max %s", downs[len(downs)/2].Round(time.Millisecond), downs[len(downs)-1].Round(time.Millisecond))
	})

	t.Run("sv kill", func(t *testing.T) {
		before, _ := s.exactlyOne(t, 60*time.Second)
		s.settle(t)
		start := time.Now()
		s.sv(t, "kill")
		// finish removes the container orphaned by the killed docker run.
		waitGone(t, before, 30*time.Second)
		after, _ := s.exactlyOne(t, 60*time.Second)
		took := time.Since(start)
		if after == before {
			// finish removes the orphaned container when run was killed; a new one runs.
			t.Fatalf("container %s survived sv kill: the orphan was not removed", before)
		}
		t.Logf("one new container %s after sv kill", took)
	})

	t.Run("SIGKILL of runsv", func(t *testing.T) {
		before, _ := s.exactlyOne(t, 60*time.Second)
		s.settle(t)
		start := time.Now()
		pids := testenv.RunsvPIDs(t, s.dir)
		if len(pids) != 1 {
			t.Fatalf("want one runsv for %s, got %v", s.dir, pids)
		}
		if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 20*time.Second, "runsvdir starting a new runsv", func() bool {
			now := testenv.RunsvPIDs(t, s.dir)
			return len(now) == 1 && now[0] != pids[0]
		})
		// The new runsv's run removes the stale container before starting its own.
		waitGone(t, before, 30*time.Second)
		s.exactlyOne(t, 60*time.Second)
		t.Logf("exactly one container %s after the runsv was killed", time.Since(start))
	})

	t.Run("docker kill", func(t *testing.T) {
		before, _ := s.exactlyOne(t, 60*time.Second)
		s.settle(t)
		start := time.Now()
		if out, err := exec.Command("docker", "kill", before).CombinedOutput(); err != nil {
			t.Fatalf("docker kill: %v: %s", err, out)
		}
		waitGone(t, before, 30*time.Second)
		after, _ := s.exactlyOne(t, 60*time.Second)
		took := time.Since(start)
		if after == before {
			t.Fatalf("container %s still running after docker kill", before)
		}
		t.Logf("one new container %s after docker kill", took)
	})

	t.Run("disabled leaves none", func(t *testing.T) {
		opts := append([][2]string{{"name", s.name}, {"state", "disabled"}}, e.dirs()...)
		if _, stderr, ok := e.cliApply(t, nil, opts); !ok {
			t.Fatalf("disable: %s", stderr)
		}
		if n := anyContainers(t, s.name); len(n) != 0 {
			t.Fatalf("containers left after disabled: %v", n)
		}
		time.Sleep(2 * time.Second)
		if n := anyContainers(t, s.name); len(n) != 0 {
			t.Fatalf("a container came back after disabled: %v", n)
		}
	})
}

// A container that exits at once must not be restarted every second: finish backs off.
func TestSupervision_CrashLoopBackoff(t *testing.T) {
	e := newGenEnv(t, supPrefix+"crash-")
	name := supPrefix + "crash-loop"
	since := time.Now().Add(-time.Second)
	enableSup(t, e, name, [2]string{"env", "EXIT_CODE=1"})
	const window = 20 * time.Second
	time.Sleep(window)
	until := time.Now()
	out, err := exec.Command("docker", "events", "--since", strconv.FormatInt(since.Unix(), 10),
		"--until", strconv.FormatInt(until.Unix(), 10), "--filter", "type=container",
		"--filter", "container="+name, "--filter", "event=start", "--format", "{{.ID}}").Output()
	if err != nil {
		t.Fatalf("docker events: %v", err)
	}
	starts := len(strings.Fields(string(out)))
	t.Logf("%d starts in %s (runit alone: about %d)", starts, window, int(window/time.Second))
	if starts < 2 {
		t.Fatalf("the crashing container was started %d times in %s: it is not restarted at all", starts, window)
	}
	if starts > 8 {
		t.Fatalf("the crashing container was started %d times in %s: no backoff (want at most 8)", starts, window)
	}
	logFile := filepath.Join(e.r.LogDir, name, "current")
	data, _ := os.ReadFile(logFile)
	if !bytes.Contains(data, []byte("restarting in")) {
		t.Errorf("the log %s does not show the backoff:\n%s", logFile, data)
	}
	opts := append([][2]string{{"name", name}, {"state", "absent"}}, e.dirs()...)
	if _, stderr, ok := e.cliApply(t, nil, opts); !ok {
		t.Fatalf("absent: %s", stderr)
	}
	if n := anyContainers(t, name); len(n) != 0 {
		t.Fatalf("containers left after absent: %v", n)
	}
}

// dockerdPID finds the running dockerd and its command line.
func dockerdPID() (int, []string) {
	if ps := procfs.Scan(func(p procfs.Proc) bool { return p.Comm == "dockerd" }); len(ps) > 0 {
		return ps[0].PID, ps[0].Cmdline()
	}
	return 0, nil
}

func dockerUp() bool {
	return exec.Command("docker", "version", "--format", "{{.Server.Version}}").Run() == nil
}

// startDockerd starts dockerd with argv in its own session, logging to /var/log/dockerd.log,
// and waits until it answers.
func startDockerd(argv []string) error {
	logf, err := os.OpenFile("/var/log/dockerd.log", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	cmd.Process.Release()
	deadline := time.Now().Add(60 * time.Second)
	for !dockerUp() {
		if time.Now().After(deadline) {
			return fmt.Errorf("dockerd (%s) not answering after 60s", strings.Join(argv, " "))
		}
		time.Sleep(250 * time.Millisecond)
	}
	return nil
}

// A restart of the Docker daemon stops every container (no live-restore) and ends the
// attached docker run; runit must bring exactly one back. dockerd runs here as a plain
// process, so it is stopped with TERM and started again with the same command line; the
// cleanup restarts it whatever happened. It disturbs every container on the engine, so
// it is the only test that does it, and it runs while no other test of this package does
// (the parallel tests start only after every sequential one has finished).
func TestSupervision_DockerRestart(t *testing.T) {
	pid, argv := dockerdPID()
	if pid == 0 || len(argv) == 0 {
		t.Fatal("no dockerd process found: this test restarts a dockerd running as a plain process")
	}
	t.Cleanup(func() {
		if !dockerUp() {
			if err := startDockerd(argv); err != nil {
				t.Errorf("cannot restore dockerd: %v", err)
			}
		}
	})
	e := newGenEnv(t, supPrefix+"dr-")
	s := enableSup(t, e, supPrefix+"dr-web")
	before, _ := s.exactlyOne(t, 60*time.Second)

	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "dockerd exiting after TERM", func() bool {
		return syscall.Kill(pid, 0) != nil
	})
	if err := startDockerd(argv); err != nil {
		t.Fatal(err)
	}
	after, took := s.exactlyOne(t, 120*time.Second)
	if after == before {
		t.Fatalf("the same container %s survived a daemon restart: live-restore is on?", before)
	}
	t.Logf("exactly one container again %s after the daemon answered", took)
}
