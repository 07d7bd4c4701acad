package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rundock/rundock/internal/testenv"
)

// TestExamplePlaybook_CheckMode runs examples/ansible/playbook.yml with the real
// ansible-playbook against localhost in check mode: every task must run (the module answers
// check mode, the copy tasks find the binaries) and nothing may be written.
func TestExamplePlaybook_CheckMode(t *testing.T) {
	testenv.Need(t, "ansible-playbook")
	bin := testenv.Binaries(t)
	lib := t.TempDir()
	for _, f := range []string{filepath.Join(bin, "rundock"), filepath.Join(testenv.RepoRoot(), "module", "rundock.yml")} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(lib, filepath.Base(f)), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	before := testenv.Listing("/etc/sv", "/etc/service", "/etc/rundock", "/usr/local/bin/rundock", "/usr/local/bin/announcer")
	cmd := exec.Command("ansible-playbook", "-i", "localhost,", "-c", "local", "--check", "--diff",
		"-e", "rundock_bin_dir="+bin, filepath.Join(testenv.RepoRoot(), "examples", "ansible", "playbook.yml"))
	cmd.Env = append(os.Environ(), "ANSIBLE_LIBRARY="+lib, "ANSIBLE_NOCOLOR=1", "ANSIBLE_RETRY_FILES_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ansible-playbook --check: %v\n%s", err, out)
	}
	text := string(out)
	if !strings.Contains(text, "failed=0") || !strings.Contains(text, "influxdb, exactly as the original module took it") {
		t.Fatalf("the playbook did not run every task cleanly:\n%s", text)
	}
	if !strings.Contains(text, "+++ after: /etc/sv/docker-influxdb/run (mode 0755)") {
		t.Errorf("--diff shows no rendered run script:\n%s", text)
	}
	if after := testenv.Listing("/etc/sv", "/etc/service", "/etc/rundock", "/usr/local/bin/rundock", "/usr/local/bin/announcer"); after != before {
		t.Errorf("check mode changed the machine:\nbefore: %s\nafter:  %s", before, after)
	}
}
