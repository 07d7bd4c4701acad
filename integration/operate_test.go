package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/testenv"
)

// TestOperate_StatusLogsMetricsProgress: what an operator reads about a live service, on
// real runit, Docker, etcd and CoreDNS: apply's progress (plain lines in a pipe, a status
// line on a terminal), rundock status with the record and its lease, --check (ok; a
// rolled-back deploy fails it, naming the image), the Prometheus textfile, rundock logs of
// the container and of the announcer, and the module printing one JSON object during a
// deploy that waits.
func TestOperate_StatusLogsMetricsProgress(t *testing.T) {
	e := newDepEnv(t)
	name := depPrefix + "a"
	statusArgs := []string{"status", name, "--sv-dir", e.r.SvDir, "--service-dir", e.r.ServiceDir}

	// apply in a pipe: one plain line for the wait, never a carriage return
	out := e.mustApply(t, e.opts("a", e.images["v1"])...)
	if strings.Contains(out, "\r") {
		t.Errorf("apply in a pipe wrote a carriage return:\n%q", out)
	}
	if !regexp.MustCompile(`(?m)^\[1/1\] ` + name + `: .*serving`).MatchString(out) {
		t.Errorf("apply in a pipe shows no progress line for the wait:\n%s", out)
	}

	// status: container, announcer, record with its lease
	key, _ := skydns.InstanceKey(skydns.DefaultPrefix, upDomain, "dep", "a")
	st, _, ok := run(t, e.bin, statusArgs...)
	if !ok {
		t.Fatalf("rundock status failed:\n%s", st)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^` + name + ` \(linked\)$`),
		regexp.MustCompile(`(?m)^  service: +run \(pid \d+\)`),
		regexp.MustCompile(`(?m)^  announcer: +run`),
		regexp.MustCompile(`(?m)^  container: +running, healthy ` + regexp.QuoteMeta(e.images["v1"]) + ` \([0-9a-f]{12}\), up since `),
		regexp.MustCompile(`(?m)^  record: +present ` + regexp.QuoteMeta(key) + ` \{.*"host":"127.0.0.2".*\}, lease \d+ s left$`),
	} {
		if !want.MatchString(st) {
			t.Errorf("rundock status lacks %s:\n%s", want, st)
		}
	}
	if out, _, ok := run(t, e.bin, append(statusArgs, "--check")...); !ok || !strings.Contains(out, "ok: 1 service(s)") {
		t.Errorf("status --check of a serving service: ok=%v\n%s", ok, out)
	}

	// metrics: the textfile, written atomically, with the record's lease
	prom := filepath.Join(e.r.Root, "textfile", "rundock.prom")
	os.MkdirAll(filepath.Dir(prom), 0o755)
	if out, stderr, ok := run(t, e.bin, append(statusArgs, "--output", "prometheus", "--textfile", prom)...); !ok {
		t.Fatalf("status --output prometheus --textfile: %s %s", out, stderr)
	}
	b, err := os.ReadFile(prom)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`rundock_container_running{name="` + name + `"} 1`,
		`rundock_container_healthy{name="` + name + `"} 1`,
		`rundock_record_present{name="` + name + `"} 1`,
		`rundock_problems{name="` + name + `"} 0`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the textfile lacks %q:\n%s", want, b)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(prom), ".*tmp")); len(m) != 0 {
		t.Errorf("temp files left beside the textfile: %v", m)
	}

	// logs: the container's and the announcer's, with local timestamps
	logs := func(extra ...string) string {
		out, stderr, ok := run(t, e.bin, append([]string{"logs", name, "--log-dir", e.r.LogDir, "-n", "all"}, extra...)...)
		if !ok {
			t.Fatalf("rundock logs %v: %s", extra, stderr)
		}
		return out
	}
	stamp := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)
	testenv.EventuallyMsg(t, 10*time.Second, func() string { return "rundock logs --announcer:\n" + logs("--announcer") }, func() bool {
		l := logs("--announcer")
		return stamp.MatchString(l) && strings.Contains(l, key)
	})
	if l := logs(); !stamp.MatchString(l) {
		t.Errorf("rundock logs shows no local timestamps:\n%s", l)
	}

	// the module during a deploy that drains and waits: stdout is one JSON object
	args := map[string]any{"name": name, "image": e.images["v2"], "announce": e.port, "port": 8080, "host": "127.0.0.2",
		"announce_name": "dep", "instance": "a", "ttl": 5, "dns_ttl": 2, "etcd_endpoints": []string{e.etcd.Endpoint},
		"wait_timeout": 20, "stop_timeout": 5, "sv_dir": e.r.SvDir, "service_dir": e.r.ServiceDir,
		"log_dir": e.r.LogDir, "bin_dir": e.r.BinDir}
	argsFile := filepath.Join(e.r.Root, "module-args.json")
	ab, _ := json.Marshal(args)
	os.WriteFile(argsFile, ab, 0o600)
	stdout, stderr, ok := run(t, e.bin, argsFile)
	if !ok {
		t.Fatalf("the module failed: %s\n%s", stdout, stderr)
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	var res map[string]any
	if err := dec.Decode(&res); err != nil || dec.More() || res["changed"] != true {
		t.Errorf("module stdout is not one JSON object with changed=true (%v):\n%s", err, stdout)
	}

	// apply on a terminal (script(1) gives it a pty): the status line is drawn in place
	tty := exec.Command("script", "-qfec", shellJoin(append([]string{e.bin}, e.opts("a", e.images["v1"])...)), "/dev/null")
	ttyOut, err := tty.CombinedOutput()
	if err != nil {
		t.Fatalf("apply under script(1): %v\n%s", err, ttyOut)
	}
	if !bytes.Contains(ttyOut, []byte("\r\033[K[1/1] "+name)) {
		t.Errorf("apply on a terminal drew no status line:\n%q", ttyOut)
	}

	// a rolled-back deploy fails --check, naming the image
	if out, ok := e.apply(t, e.opts("a", e.images["bad"], "--wait-timeout", "6")...); ok {
		t.Fatalf("apply of a never-healthy image succeeded:\n%s", out)
	}
	out, _, ok = run(t, e.bin, append(statusArgs, "--check")...)
	if want := name + ": last deploy of " + e.images["bad"] + " rolled back (runs " + e.images["v1"] + " again)"; ok || !strings.Contains(out, want) {
		t.Errorf("status --check after a rollback: ok=%v, want it to fail with %q:\n%s", ok, want, out)
	}
}

// run runs bin with args and returns its stdout, its stderr and whether it exited 0.
func run(t *testing.T, bin string, args ...string) (stdout, stderr string, ok bool) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var o, s bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &s
	err := cmd.Run()
	return o.String(), s.String(), err == nil
}

// shellJoin quotes words for sh -c: each in single quotes.
func shellJoin(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
