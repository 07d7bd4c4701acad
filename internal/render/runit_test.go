package render

import (
	"fmt"
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

const runitPrefix = "rdtest-render-"

// install writes a rendered tree under sv_dir and links its root service into
// service_dir, as apply does (apply's own tests cover atomicity and idempotency).
func install(t *testing.T, r *testenv.Runit, tr tree.Tree) string {
	t.Helper()
	dir := filepath.Join(r.SvDir, tr.Dir)
	for _, f := range tr.Files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, f.Mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(dir, filepath.Join(r.ServiceDir, tr.Dir)); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(r.ServiceDir, tr.Dir)
}

func sv(args ...string) (string, error) {
	out, err := exec.Command("sv", args...).CombinedOutput()
	return string(out), err
}

func containerID(name string) string {
	out, err := exec.Command("docker", "inspect", "-f", "{{.Id}}", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// TestRender_UnderRunit runs a rendered tree under a real runsv with real Docker: start,
// health check, graceful sv down through control/t, restart, orphan cleanup after the
// docker CLI is SIGKILLed, and the crash-loop backoff of finish. The rundock binary in
// bin_dir is a stub printing 127.0.0.1: address discovery has its own tests, and the
// test must not depend on this host's interfaces.
func TestRender_UnderRunit(t *testing.T) {
	testenv.Need(t, "docker", "runsv", "sv", "svlogd", "timeout")
	image := testenv.BuildEchoImage(t)
	r := testenv.StartRunit(t, runitPrefix)
	if err := os.WriteFile(filepath.Join(r.BinDir, "rundock"), []byte("#!/bin/sh\necho 127.0.0.1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(r.LogDir, "*", "current"))
		for _, l := range logs {
			data, _ := os.ReadFile(l)
			t.Logf("%s:\n%s", l, data)
		}
	})
	port := testenv.FreePort(t)
	name := runitPrefix + "web"
	s, err := spec.FromMap(map[string]any{
		"name": name, "image": image, "pull": "never", "announce": port, "port": 8080,
		"env": map[string]any{"INSTANCE": "it's me"}, "stop_timeout": 5, "drain": 1,
		"health_cmd": "/echo -check", "health_interval": "1s", "health_timeout": "2s",
		"log_dir": r.LogDir, "sv_dir": r.SvDir, "service_dir": r.ServiceDir, "bin_dir": r.BinDir,
	}, "h")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	svc := install(t, r, tr)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	took := testenv.Eventually(t, 60*time.Second, "the container does not answer on "+url, func() bool {
		return strings.HasPrefix(testenv.HTTPBody(url, time.Second), "it's me ")
	})
	t.Logf("first answer after %s", took)
	took = testenv.Eventually(t, 30*time.Second, "sv check does not pass (container running and healthy)", func() bool {
		_, err := sv("-w", "1", "check", svc)
		return err == nil
	})
	t.Logf("sv check passed after %s more", took)
	cfg, err := os.ReadFile(filepath.Join(r.LogDir, name, "config"))
	if err != nil || string(cfg) != "s1000000\nn10\n" {
		t.Errorf("svlogd config = %q, %v", cfg, err)
	}

	t.Run("graceful down", func(t *testing.T) {
		start := time.Now()
		if out, err := sv("-w", "30", "down", svc); err != nil {
			t.Fatalf("sv down: %v\n%s", err, out)
		}
		t.Logf("sv down took %s", time.Since(start))
		testenv.Eventually(t, 15*time.Second, "the container is still there after sv down", func() bool {
			return containerID(name) == ""
		})
		if err := exec.Command(filepath.Join(r.SvDir, tr.Dir, "check")).Run(); err == nil {
			t.Error("check passes with no container")
		}
	})

	t.Run("up again", func(t *testing.T) {
		if out, err := sv("up", svc); err != nil {
			t.Fatalf("sv up: %v\n%s", err, out)
		}
		testenv.Eventually(t, 60*time.Second, "the container does not answer after sv up", func() bool {
			return strings.HasPrefix(testenv.HTTPBody(url, time.Second), "it's me ")
		})
	})

	t.Run("SIGKILLed docker CLI leaves no orphan", func(t *testing.T) {
		old := containerID(name)
		pidData, err := os.ReadFile(filepath.Join(svc, "supervise", "pid"))
		if err != nil || old == "" {
			t.Fatalf("no running service: pid %q, %v, container %q", pidData, err, old)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(pidData)))
		if err := exec.Command("kill", "-KILL", strconv.Itoa(pid)).Run(); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 60*time.Second, "no new container answers after the docker CLI was killed", func() bool {
			id := containerID(name)
			return id != "" && id != old && strings.HasPrefix(testenv.HTTPBody(url, time.Second), "it's me ")
		})
		log, _ := os.ReadFile(filepath.Join(r.LogDir, name, "current"))
		if !strings.Contains(string(log), "rundock: run was killed (signal 9); removing the container "+name) {
			t.Errorf("finish did not remove the orphaned container; log:\n%s", log)
		}
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "name=^/"+name+"$").Output()
		if n := len(strings.Fields(string(out))); n != 1 {
			t.Errorf("%d containers named %s, want 1", n, name)
		}
	})

	t.Run("crash loop backs off", func(t *testing.T) {
		crash := runitPrefix + "crash"
		cs, err := spec.FromMap(map[string]any{
			"name": crash, "image": image, "pull": "never", "env": "EXIT_CODE=3",
			"log_dir": r.LogDir, "sv_dir": r.SvDir, "service_dir": r.ServiceDir, "bin_dir": r.BinDir,
		}, "h")
		if err != nil {
			t.Fatal(err)
		}
		ctr, err := Render(cs)
		if err != nil {
			t.Fatal(err)
		}
		csvc := install(t, r, ctr)
		current := filepath.Join(r.LogDir, crash, "current")
		testenv.Eventually(t, 60*time.Second, "finish does not log a growing backoff", func() bool {
			log, _ := os.ReadFile(current)
			return strings.Contains(string(log), "failure 2: restarting in 4 s")
		})
		log, _ := os.ReadFile(current)
		t.Logf("log of the crash-looping service:\n%s", log)
		if !strings.Contains(string(log), "exiting with 3") || !strings.Contains(string(log), "failure 1: restarting in 2 s") {
			t.Errorf("log does not show the container's exit and the first backoff:\n%s", log)
		}
		// sv down during a backoff wait: finish notices and ends, so sv's default 7 s
		// wait is enough although the wait is 8 s.
		testenv.Eventually(t, 60*time.Second, "finish does not reach the 8 s backoff", func() bool {
			log, _ := os.ReadFile(current)
			return strings.Contains(string(log), "failure 3: restarting in 8 s")
		})
		if out, err := sv("-w", "7", "down", csvc); err != nil {
			t.Fatalf("sv down during the backoff: %v\n%s", err, out)
		}
	})
}
