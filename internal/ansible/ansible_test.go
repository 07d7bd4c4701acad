package ansible

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/testenv"
)

func TestParseArgs(t *testing.T) {
	cases := []struct {
		name        string
		json        string
		check, diff bool
		options     []string
		wantErr     string
	}{
		{"ansible keys stripped", `{"name": "web", "_ansible_check_mode": true, "_ansible_diff": false, "_ansible_version": "2.14.3", "_ansible_no_log": false}`,
			true, false, []string{"name"}, ""},
		{"diff as string", `{"name": "web", "_ansible_diff": "yes"}`, false, true, []string{"name"}, ""},
		{"unknown keys kept for FromMap to reject", `{"nmae": "web"}`, false, false, []string{"nmae"}, ""},
		{"not json", `name=web`, false, false, nil, "JSON"},
		{"not an object", `["name"]`, false, false, nil, "JSON"},
		{"null", `null`, false, false, nil, "null"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := ParseArgs([]byte(c.json))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("want an error with %q, got %v", c.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for k := range a.Options {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if a.CheckMode != c.check || a.Diff != c.diff || !slices.Equal(keys, c.options) {
				t.Errorf("got check=%v diff=%v options=%v", a.CheckMode, a.Diff, keys)
			}
		})
	}
}

// Every option of the spec is documented in module/rundock.yml, and nothing else is, and
// ansible-doc renders the file next to a binary named rundock.
func TestSidecarDocs(t *testing.T) {
	path := filepath.Join(testenv.RepoRoot(), "module", "rundock.yml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Documentation struct {
			Options map[string]any `yaml:"options"`
		} `yaml:"DOCUMENTATION"`
		Examples string         `yaml:"EXAMPLES"`
		Return   map[string]any `yaml:"RETURN"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var documented []string
	for k := range doc.Documentation.Options {
		documented = append(documented, k)
	}
	slices.Sort(documented)
	if want := spec.Options(); !slices.Equal(documented, want) {
		t.Errorf("documented options differ from the spec's:\n doc:  %v\n spec: %v", documented, want)
	}
	if doc.Examples == "" || doc.Return["changed"] == nil {
		t.Error("EXAMPLES or RETURN missing")
	}

	testenv.Need(t, "ansible-doc")
	dir := t.TempDir()
	bin := filepath.Join(dir, "rundock")
	build := exec.Command("go", "build", "-o", bin, "./cmd/rundock")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "rundock.yml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ansible-doc", "-M", dir, "rundock").CombinedOutput()
	if err != nil {
		t.Fatalf("ansible-doc: %v\n%s", err, out)
	}
	for _, want := range []string{"announce_as", "choices: [public, private, container, public6, private6, container6]", "EXAMPLES", "RETURN VALUES"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ansible-doc output lacks %q:\n%s", want, out)
		}
	}
}
