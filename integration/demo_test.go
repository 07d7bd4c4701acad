package integration

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rundock/rundock/internal/testenv"
)

// TestDemo runs scripts/demo.sh, the README's first command, end to end on free ports, and
// checks what it shows: DNS answers for both backend instances and the frontend's SRV port,
// nginx spreading requests over both instances through both approaches, traffic moving to
// the live instance when one stops, and a teardown that leaves no container behind.
func TestDemo(t *testing.T) {
	testenv.Need(t, "etcd", "etcdctl", "coredns", "runsvdir", "sv", "nginx", "dig", "docker", "curl")
	bin := testenv.Binaries(t)
	dir := t.TempDir()
	cmd := exec.Command("bash", "scripts/demo.sh")
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(),
		"DEMO_BIN="+bin,
		"DEMO_DIR="+dir+"/demo",
		"DEMO_ETCD_PORT="+strconv.Itoa(testenv.FreePort(t)),
		"DEMO_ETCD_PEER_PORT="+strconv.Itoa(testenv.FreePort(t)),
		"DEMO_DNS_PORT="+strconv.Itoa(testenv.FreePort(t)),
		"DEMO_HTTP_PORT="+strconv.Itoa(testenv.FreePort(t)),
		"DEMO_RESOLVER_PORT="+strconv.Itoa(testenv.FreePort(t)),
		"DEMO_FRONTEND_PORT="+strconv.Itoa(testenv.FreePort(t)),
	)
	out, err := cmd.CombinedOutput()
	t.Logf("demo output:\n%s", out)
	if err != nil {
		t.Fatalf("demo failed: %v", err)
	}
	text := string(out)
	for _, want := range []string{
		`\d+ \d+ 8086 backend-a\.backend\.s\.prod\.example\.com\.`,
		`\d+ \d+ 8086 backend-b\.backend\.s\.prod\.example\.com\.`,
		`\d+ \d+ 8087 [a-z0-9-]+\.frontend\.s\.prod\.example\.com\.`,
		`(?m)^\s+127\.0\.0\.2$`,
		`(?m)^\s+127\.0\.0\.3$`,
	} {
		if !regexp.MustCompile(want).MatchString(text) {
			t.Errorf("demo output lacks %s", want)
		}
	}
	// Each tally block names who answered; before the stop both backends answer through both
	// approaches, after it only backend-b does.
	sections := regexp.MustCompile(`\n\[\d+\] `).Split(text, -1) // numbered steps; rundock prints "[1/1] ..." progress
	find := func(prefix string) string {
		for _, s := range sections {
			if strings.Contains(s, prefix) {
				return s
			}
		}
		t.Fatalf("demo output has no step %q", prefix)
		return ""
	}
	both := find("curl through nginx")
	if n := len(regexp.MustCompile(`\d+ backend-a`).FindAllString(both, -1)); n != 2 {
		t.Errorf("backend-a answered through %d of 2 approaches before the stop:\n%s", n, both)
	}
	if n := len(regexp.MustCompile(`\d+ backend-b`).FindAllString(both, -1)); n != 2 {
		t.Errorf("backend-b answered through %d of 2 approaches before the stop:\n%s", n, both)
	}
	if strings.Contains(both, "error") {
		t.Errorf("a request failed before the stop:\n%s", both)
	}
	stopped := find("stop backend-a")
	if strings.Contains(stopped, " backend-a\n") || strings.Contains(stopped, "error") {
		t.Errorf("traffic still reached backend-a, or failed, after it stopped:\n%s", stopped)
	}
	if !regexp.MustCompile(`6 backend-b`).MatchString(stopped) {
		t.Errorf("backend-b did not take all traffic after backend-a stopped:\n%s", stopped)
	}
	// The start-first update of the frontend: a steady request loop through nginx saw no
	// failure, the service moved to the other host port, and the new container answers.
	update := find("update the frontend")
	m := regexp.MustCompile(`during the update: (\d+) requests through nginx, (\d+) failed`).FindStringSubmatch(update)
	if m == nil {
		t.Fatalf("the update step reports no request counts:\n%s", update)
	}
	if total, _ := strconv.Atoi(m[1]); total < 20 || m[2] != "0" {
		t.Errorf("during the start-first update %s of %s requests failed (want 0 of at least 20):\n%s", m[2], m[1], update)
	}
	if !regexp.MustCompile(`\d+ \d+ 8088 [a-z0-9-]+\.frontend\.s\.prod\.example\.com\.`).MatchString(update) {
		t.Errorf("frontend's SRV did not move to update_port 8088:\n%s", update)
	}
	if !regexp.MustCompile(`(?m)^\s+4 frontend-v2$`).MatchString(update) {
		t.Errorf("the new frontend container does not answer every request after the update:\n%s", update)
	}
	for _, name := range []string{"backend-a", "backend-b", "frontend", "frontend.next"} {
		if err := exec.Command("docker", "inspect", name).Run(); err == nil {
			t.Errorf("container %s left behind after the demo", name)
			exec.Command("docker", "rm", "-f", name).Run()
		}
	}
	if _, err := os.Stat(dir + "/demo"); !os.IsNotExist(err) {
		t.Errorf("demo directory left behind: %v", err)
	}
}
