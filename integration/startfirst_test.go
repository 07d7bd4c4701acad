package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/testenv"
)

// The update start-first tests (issue 12): one host, one instance, a steady load through
// nginx (rundock upstreams --watch) and from a client that reads SRV records through
// CoreDNS and keeps each answer for its TTL, never retrying. They reuse the deploy tests'
// environment (newDepEnv); the service is depPrefix+"sf", announced as dep, instance sf.

const sfInst = "sf"

// sfName is the service's name; sfNext its new container's beside the old one.
const (
	sfName = depPrefix + sfInst
	sfNext = sfName + ".next"
)

// sfOpts are the apply flags of the single instance with image, start-first on the
// deploy environment's port and a second host port.
func (e *depEnv) sfOpts(image string, secondPort int, extra ...string) []string {
	args := []string{"apply", "--name", sfName, "--image", image,
		"--announce", strconv.Itoa(e.port), "--port", "8080", "--host", "127.0.0.2",
		"--update", "start-first", "--update-port", strconv.Itoa(secondPort),
		"--announce-name", "dep", "--instance", sfInst, "--ttl", "5", "--dns-ttl", "2",
		"--etcd-endpoints", e.etcd.Endpoint, "--wait-timeout", "20", "--stop-timeout", "5",
		"--sv-dir", e.r.SvDir, "--service-dir", e.r.ServiceDir, "--log-dir", e.r.LogDir, "--bin-dir", e.r.BinDir}
	return append(args, extra...)
}

// sfRecord is the record of instance inst of dep, "" when none.
func (e *depEnv) sfRecord(t *testing.T, inst string) string {
	t.Helper()
	k, _ := skydns.InstanceKey(skydns.DefaultPrefix, upDomain, "dep", inst)
	resp, err := e.cli.Get(context.Background(), k)
	if err != nil || len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// sfRecordPort is the port of instance inst's record, 0 when none.
func (e *depEnv) sfRecordPort(t *testing.T, inst string) int {
	t.Helper()
	r, err := skydns.Decode([]byte(e.sfRecord(t, inst)))
	if err != nil {
		return 0
	}
	return r.Port
}

// srvTarget is one SRV answer resolved to an address.
type srvTarget struct {
	addr string
	port int
}

// resolveSRV asks CoreDNS for the SRV records of dep.DOMAIN and returns the targets with
// their addresses (from the additional section) and the answer's TTL (at least 1 s).
func (e *depEnv) resolveSRV() ([]srvTarget, int) {
	host, port, _ := strings.Cut(e.dns.Addr, ":")
	out, err := exec.Command("dig", "@"+host, "-p", port, "+noall", "+answer", "+additional", "+tries=1", "+time=2", "dep."+upDomain, "SRV").Output()
	if err != nil {
		return nil, 1
	}
	type srv struct {
		target string
		port   int
	}
	var srvs []srv
	addrs := map[string]string{}
	ttl := 0
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 8 && f[3] == "SRV":
			p, _ := strconv.Atoi(f[6])
			srvs = append(srvs, srv{strings.ToLower(f[7]), p})
			if n, _ := strconv.Atoi(f[1]); ttl == 0 || n < ttl {
				ttl = n
			}
		case len(f) == 5 && f[3] == "A":
			addrs[strings.ToLower(f[0])] = f[4]
		}
	}
	var ts []srvTarget
	for _, s := range srvs {
		if a := addrs[s.target]; a != "" {
			ts = append(ts, srvTarget{a, s.port})
		}
	}
	return ts, max(ttl, 1)
}

// startSFLoad is startLoad with an SRV-reading client: it takes each instance's port from
// the SRV answer, so it follows the service from one host port to the other.
func (e *depEnv) startSFLoad(t *testing.T) *load {
	return e.startLoadTo(t, func() ([]string, int) {
		targets, ttl := e.resolveSRV()
		urls := make([]string, len(targets))
		for i, tg := range targets {
			urls[i] = fmt.Sprintf("http://%s:%d/", tg.addr, tg.port)
		}
		return urls, ttl
	})
}

// sfServing waits until the instance serves through nginx and SRV.
func (e *depEnv) sfServing(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, "the instance in SRV answers", func() bool {
		ts, _ := e.resolveSRV()
		return len(ts) == 1
	})
	testenv.Eventually(t, 10*time.Second, "nginx serving", func() bool {
		code, _, err := testenv.HTTPGet(&http.Client{Timeout: time.Second}, e.nginx.URL("/"))
		return err == nil && code == http.StatusOK
	})
}

// sfContainers lists the containers of the service (any state): NAME and NAME.next.
func sfContainers(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-a", "--filter", "name=^/"+sfName, "--format", "{{.Names}} {{.State}}").Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", " "))
}

// sfOneSupervised checks the resting state: exactly one container, NAME, running;
// runit supervises it (sv status run, its pid's command a docker CLI that follows NAME);
// its record is in etcd on port; the new container's record is gone.
func (e *depEnv) sfOneSupervised(t *testing.T, port int) {
	t.Helper()
	testenv.EventuallyMsg(t, 15*time.Second, func() string {
		return fmt.Sprintf("one container %s running, got %q; record %q, next record %q", sfName, sfContainers(t), e.sfRecord(t, sfInst), e.sfRecord(t, sfInst+"-next"))
	}, func() bool {
		cs := sfContainers(t)
		return len(cs) == 2 && cs[0] == sfName && cs[1] == "running" &&
			e.sfRecordPort(t, sfInst) == port && e.sfRecord(t, sfInst+"-next") == ""
	})
	root := filepath.Join(e.r.SvDir, "docker-"+sfName)
	out, err := exec.Command("sv", "status", root).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "run: ") {
		t.Fatalf("sv status %s: %s %v, want run:", root, out, err)
	}
	// run renames the adopted container, then execs docker attach: until the exec, runsv's
	// child is still the shell.
	var args []string
	testenv.EventuallyMsg(t, 10*time.Second, func() string {
		return fmt.Sprintf("runsv's run is %q, want the docker CLI following %s", args, sfName)
	}, func() bool {
		pid, _ := os.ReadFile(filepath.Join(root, "supervise", "pid"))
		cmdline, _ := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/cmdline")
		args = strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		return len(args) >= 2 && filepath.Base(args[0]) == "docker" && strings.Contains(string(cmdline), sfName)
	})
	if st := e.status(t, sfInst); !strings.HasPrefix(fmt.Sprint(st["container"]), "running") {
		t.Fatalf("rundock status: container %v", st["container"])
	}
}

// deployJournal is the service's .rundock/deploy.json.
func (e *depEnv) deployJournal() map[string]any {
	b, err := os.ReadFile(filepath.Join(e.r.SvDir, "docker-"+sfName, ".rundock", "deploy.json"))
	if err != nil {
		return nil
	}
	var d map[string]any
	json.Unmarshal(b, &d)
	return d
}

// TestStartFirst_NewImage: with update start-first, a new image replaces the single
// instance under a steady load through nginx and from an SRV-reading client with 0 failed
// requests; the service then runs on the other host port, one container again, supervised,
// with its record on that port. The same update with stop-first follows for comparison
// (its failures are logged, not asserted: a single instance is unreachable between the
// drain's end and the new container serving).
func TestStartFirst_NewImage(t *testing.T) {
	e := newDepEnv(t)
	second := testenv.FreePort(t)
	e.mustApply(t, e.sfOpts(e.images["v1"], second)...)
	e.sfServing(t)
	e.sfOneSupervised(t, e.port)

	port := e.port
	for i, image := range []string{e.images["v2"], e.images["v1"]} {
		old := e.containerID(sfInst)
		l := e.startSFLoad(t)
		time.Sleep(time.Second)
		t0 := time.Now()
		out := e.mustApply(t, e.sfOpts(image, second)...)
		t.Logf("FIGURE start-first update %d: apply took %s", i+1, time.Since(t0).Round(10*time.Millisecond))
		for _, want := range []string{"start beside the old container", "switch"} {
			if !strings.Contains(out, want) {
				t.Errorf("apply output does not say %q:\n%s", want, out)
			}
		}
		if id := e.containerID(sfInst); id == "" || id == old {
			t.Fatalf("after the update %s runs container %q (was %q):\n%s", sfName, id, old, out)
		}
		if port == e.port {
			port = second
		} else {
			port = e.port
		}
		e.sfOneSupervised(t, port)
		time.Sleep(3 * time.Second) // the caches of the last answers run out
		sent, failed, srvSent, srvFailed := l.end(t, fmt.Sprintf("start-first update %d", i+1))
		if sent < 100 || srvSent < 100 {
			t.Fatalf("the load sent only %d/%d requests", sent, srvSent)
		}
		if failed != 0 || srvFailed != 0 {
			t.Errorf("start-first update %d: %d of %d requests through nginx and %d of %d from the SRV client failed, want 0",
				i+1, failed, sent, srvFailed, srvSent)
		}
		if d := e.deployJournal(); d["outcome"] != "ok" {
			t.Errorf("deploy journal %v, want outcome ok", d)
		}
	}

	// Supervision holds after an adoption: sv down stops the adopted container (through
	// control/t), sv up starts one again on the port the service holds.
	root := filepath.Join(e.r.SvDir, "docker-"+sfName)
	if out, err := exec.Command("sv", "-w", "30", "down", root).CombinedOutput(); err != nil {
		t.Fatalf("sv down: %v %s", err, out)
	}
	testenv.Eventually(t, 15*time.Second, "no container after sv down", func() bool { return len(sfContainers(t)) == 0 })
	if out, err := exec.Command("sv", "up", root).CombinedOutput(); err != nil {
		t.Fatalf("sv up: %v %s", err, out)
	}
	e.sfOneSupervised(t, port)

	// For comparison: the same update with stop-first.
	e.sfServing(t)
	l := e.startSFLoad(t)
	time.Sleep(time.Second)
	stop := e.sfOpts(e.images["v2"], second)
	for i, a := range stop {
		if a == "start-first" {
			stop[i] = "stop-first"
		}
		if a == "--update-port" {
			stop = append(stop[:i], stop[i+2:]...)
			break
		}
	}
	e.mustApply(t, stop...)
	e.sfServing(t)
	time.Sleep(3 * time.Second)
	_, failed, _, srvFailed := l.end(t, "stop-first update (comparison)")
	t.Logf("FIGURE stop-first update of a single instance: %d failed through nginx, %d from the SRV client", failed, srvFailed)
}

// TestStartFirst_BrokenImage: a new image whose health check never passes is started
// beside the old one and removed when wait_timeout ends; the apply fails saying so, the old
// container (same ID) never stopped and kept its record, no request failed, and the
// previous files are back.
func TestStartFirst_BrokenImage(t *testing.T) {
	e := newDepEnv(t)
	second := testenv.FreePort(t)
	e.mustApply(t, e.sfOpts(e.images["v1"], second)...)
	e.sfServing(t)
	old := e.containerID(sfInst)
	run := filepath.Join(e.r.SvDir, "docker-"+sfName, "run")
	before, _ := os.ReadFile(run)
	l := e.startSFLoad(t)
	time.Sleep(time.Second)
	start := time.Now()
	out, ok := e.apply(t, e.sfOpts(e.images["bad"], second, "--wait-timeout", "8")...)
	t.Logf("FIGURE start-first broken image: apply failed after %s (wait_timeout 8 s)", time.Since(start).Round(10*time.Millisecond))
	if ok {
		t.Fatalf("apply of a never-healthy image succeeded:\n%s", out)
	}
	for _, want := range []string{"did not serve within wait_timeout 8 s", "unhealthy", "removed " + sfNext, "was not touched and still serves"} {
		if !strings.Contains(out, want) {
			t.Errorf("the failure does not say %q:\n%s", want, out)
		}
	}
	if id := e.containerID(sfInst); id != old {
		t.Errorf("the old container changed from %s to %s", old, id)
	}
	if after, _ := os.ReadFile(run); string(after) != string(before) {
		t.Errorf("run is not the previous one after the failed update")
	}
	e.sfOneSupervised(t, e.port)
	if d := e.deployJournal(); d["outcome"] != "rolled back" {
		t.Errorf("deploy journal %v, want rolled back", d)
	}
	time.Sleep(3 * time.Second)
	if _, failed, _, srvFailed := l.end(t, "start-first broken image"); failed != 0 || srvFailed != 0 {
		t.Errorf("%d requests through nginx and %d from the SRV client failed during the failed update, want 0", failed, srvFailed)
	}
}

// TestStartFirst_Killed: SIGKILL of rundock while it waits for the new container, and
// again once the switch began. Each time one container serves, supervised, with its
// record, and the next apply finishes the update.
func TestStartFirst_Killed(t *testing.T) {
	e := newDepEnv(t)
	second := testenv.FreePort(t)
	e.mustApply(t, e.sfOpts(e.images["v1"], second)...)
	e.sfServing(t)

	// killAt starts an apply of image and SIGKILLs it when cond holds.
	killAt := func(image, what string, cond func() bool) {
		t.Helper()
		cmd := exec.Command(e.bin, e.sfOpts(image, second)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		testenv.Eventually(t, 60*time.Second, what, cond)
		cmd.Process.Kill()
		<-done
	}

	t.Run("while the new container starts", func(t *testing.T) {
		old := e.containerID(sfInst)
		killAt(e.images["v2"], sfNext+" exists", func() bool {
			return strings.Contains(strings.Join(sfContainers(t), " "), sfNext)
		})
		// The old container serves on, supervised, with its record.
		time.Sleep(2 * time.Second)
		if id := e.containerID(sfInst); id != old {
			t.Fatalf("the old container changed from %s to %s", old, id)
		}
		if e.sfRecordPort(t, sfInst) != e.port {
			t.Fatalf("the old record is %q", e.sfRecord(t, sfInst))
		}
		testenv.Eventually(t, 10*time.Second, "the new container's record gone with rundock", func() bool { return e.sfRecord(t, sfInst+"-next") == "" })
		out := e.mustApply(t, e.sfOpts(e.images["v2"], second)...)
		if !strings.Contains(out, "half-done") {
			t.Errorf("the next apply does not say it finishes a half-done update:\n%s", out)
		}
		e.sfOneSupervised(t, second)
	})

	t.Run("once the switch began", func(t *testing.T) {
		old := e.containerID(sfInst)
		drain := filepath.Join(e.r.SvDir, "docker-"+sfName, ".rundock", "drain")
		killAt(e.images["v1"], "the journal says switch and control/t drains the old container", func() bool {
			d := e.deployJournal()
			b, _ := os.ReadFile(drain)
			return d["phase"] == "switch" && d["image"] == e.images["v1"] && strings.TrimSpace(string(b)) == old
		})
		// runit carries on: the old one drains and stops, run adopts the new one, and the
		// service's own announcer announces it.
		e.sfOneSupervised(t, e.port)
		e.mustApply(t, e.sfOpts(e.images["v1"], second)...)
		e.sfOneSupervised(t, e.port)
		if d := e.deployJournal(); d["outcome"] != "ok" {
			t.Errorf("deploy journal %v after the next apply, want ok", d)
		}
	})
}
