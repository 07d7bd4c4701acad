// Package pkg tests rundock as an operator installs it: the Debian package (TestDeb: make
// deb, lintian, dpkg -i, ansible -m rundock with no -M, dpkg -r and -P) and the Ansible
// collection (TestCollection: make collection, ansible-galaxy collection install, a playbook
// using the module by its fully qualified name). Run them alone with
//
//	go test -count=1 -v -run 'TestDeb|TestCollection' ./integration/pkg
//
// A missing tool fails the test with "run make setup" (scripts/setup-pkg.sh installs nfpm
// and lintian); nothing is skipped.
package pkg

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/testenv"
)

// run runs a command in the repository root with extra environment and returns its stdout;
// it fails the test with the whole output when the command fails.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, errOut, err := tryRun(env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func tryRun(env []string, name string, args ...string) (string, string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// lastLine is the last non-empty line of s (the build scripts print their artifact there).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// ansibleEnv isolates Ansible from the user running the test: an empty HOME (so no
// ~/.ansible/plugins/modules shadows the module under test), temp dirs inside root.
func ansibleEnv(root string) []string {
	home := filepath.Join(root, "home")
	os.MkdirAll(home, 0o755)
	return []string{"HOME=" + home, "ANSIBLE_LOCALHOST_WARNING=false", "ANSIBLE_NOCOLOR=1",
		"ANSIBLE_RETRY_FILES_ENABLED=0",
		"ANSIBLE_LOCAL_TEMP=" + filepath.Join(root, "ansible-tmp"),
		"ANSIBLE_REMOTE_TEMP=" + filepath.Join(root, "ansible-tmp")}
}

// adhoc runs `ansible localhost -c local -m MODULE -a ARGS` and returns the module's result.
func adhoc(t *testing.T, env []string, module, args string, flags ...string) map[string]any {
	t.Helper()
	tree := t.TempDir()
	cmdArgs := append([]string{"localhost", "-c", "local", "-i", "localhost,", "-m", module, "-a", args, "--tree", tree}, flags...)
	out, errOut, err := tryRun(env, "ansible", cmdArgs...)
	data, rerr := os.ReadFile(filepath.Join(tree, "localhost"))
	if rerr != nil {
		t.Fatalf("ansible -m %s -a %q: no result (%v, %v):\n%s%s", module, args, err, rerr, out, errOut)
	}
	var res map[string]any
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("ansible -m %s: result is not JSON: %v\n%s", module, err, data)
	}
	if err != nil || res["failed"] == true {
		t.Fatalf("ansible -m %s -a %q failed: %v\n%s%s", module, args, err, out, errOut)
	}
	return res
}

// timed runs f and returns how long it took, rounded for a log line.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start).Round(10 * time.Millisecond)
}

// fileIs fails unless path is a regular file (or a symlink to one) containing want.
func fileIs(t *testing.T, path string, want ...string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, w := range want {
		if !strings.Contains(string(data), w) {
			t.Errorf("%s does not contain %q:\n%s", path, w, data)
		}
	}
}
