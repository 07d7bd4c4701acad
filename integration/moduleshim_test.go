package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rundock/rundock/internal/testenv"
)

// The small module (cmd/rundock-module, what Ansible copies per task instead of rundock)
// does what the module does, through the rundock installed in bin_dir: installs, reports
// unchanged, honours check mode; and where no rundock is installed it fails, naming the
// path and the fix, with nothing written.
func TestGenerator_ModuleShim(t *testing.T) {
	e := newGenEnv(t, genPrefix+"shim-")
	data, err := os.ReadFile(filepath.Join(testenv.Binaries(t), "rundock-module"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.modDir, "rundock"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	name := genPrefix + "shim-web"
	port := testenv.FreePort(t)
	args := func(image string) string {
		return fmt.Sprintf("state=present name=%s image=%s announce=%d port=8080 pull=never %s", name, image, port, kv(e.dirs()))
	}
	if r := e.ansible(t, args(e.image)); !r.ok || !r.changed() {
		t.Fatalf("first run: ok=%v changed=%v (want true, true)\n%s", r.ok, r.changed(), r.stdout)
	}
	run := filepath.Join(e.r.SvDir, "docker-"+name, "run")
	before, err := os.ReadFile(run)
	if err != nil || !strings.Contains(string(before), e.image) {
		t.Fatalf("the tree's run script: %v\n%s", err, before)
	}
	if r := e.ansible(t, args(e.image)); !r.ok || r.changed() {
		t.Fatalf("second run: ok=%v changed=%v (want true, false)\n%s", r.ok, r.changed(), r.stdout)
	}
	if r := e.ansible(t, args("rdtest-other:1"), "--check"); !r.ok || !r.changed() {
		t.Fatalf("check mode with a new image: ok=%v changed=%v (want true, true)\n%s", r.ok, r.changed(), r.stdout)
	}
	if after, _ := os.ReadFile(run); string(after) != string(before) {
		t.Fatalf("check mode wrote the run script:\n%s", after)
	}

	// No rundock in bin_dir: failed, the path and the fix named, nothing written.
	empty := t.TempDir()
	other := genPrefix + "shim-none"
	r := e.ansible(t, fmt.Sprintf("state=present name=%s image=%s sv_dir=%s service_dir=%s log_dir=%s bin_dir=%s",
		other, e.image, e.r.SvDir, e.r.ServiceDir, e.r.LogDir, empty))
	want := "rundock is not installed at " + filepath.Join(empty, "rundock")
	if r.ok || !strings.Contains(r.stdout, "FAILED!") || !strings.Contains(r.msg(), want) || !strings.Contains(r.msg(), "set bin_dir") {
		t.Fatalf("without an installed rundock: ok=%v msg=%q (want FAILED, with %q)\n%s", r.ok, r.msg(), want, r.stdout)
	}
	if _, err := os.Lstat(filepath.Join(e.r.SvDir, "docker-"+other)); err == nil {
		t.Fatalf("a tree was written for %s without a rundock to run", other)
	}
}
