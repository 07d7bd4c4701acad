package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rundock/rundock/internal/testenv"
)

func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := NewRoot()
	var out, logs bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&logs) // log lines; the tests read what goes to stdout
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// The example service files parse, and a dry run of them touches nothing.
func TestApply_ExamplesDryRun(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(), "examples", "ansible", "services")
	out, err := execute(t, "apply", "--dry-run", "-o", "json", "-f", dir)
	if err != nil {
		t.Fatalf("apply --dry-run -f %s: %v\n%s", dir, err, out)
	}
	var results []struct {
		Name    string `json:"name"`
		Changed bool   `json:"changed"`
	}
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	var names []string
	for _, r := range results {
		names = append(names, r.Name)
	}
	// Files sorted: api.yml, cache.yaml, then web.yml with two services.
	if got := strings.Join(names, ","); got != "api,cache,web,web-admin" {
		t.Errorf("services %s, want api,cache,web,web-admin", got)
	}
}

func TestApply_FlagErrors(t *testing.T) {
	tmp := t.TempDir()
	dirs := []string{"--sv-dir", filepath.Join(tmp, "sv"), "--service-dir", filepath.Join(tmp, "service")}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"underscore flag normalized", append([]string{"apply", "--name", "web", "--image", "x", "--announce_as", "sideways"}, dirs...), `"sideways"`},
		{"dash flag", append([]string{"apply", "--name", "web", "--image", "x", "--announce-as", "sideways"}, dirs...), `"sideways"`},
		{"file and flags", []string{"apply", "-f", tmp, "--name", "web"}, "--name"},
		{"nothing", []string{"apply"}, "nothing to apply"},
		{"bad output", []string{"apply", "--name", "web", "-o", "yaml"}, `"yaml"`},
		{"missing file", []string{"apply", "-f", filepath.Join(tmp, "nope.yml")}, "nope.yml"},
		{"empty dir", []string{"apply", "-f", tmp}, "no *.yml"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := execute(t, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error naming %s, got %v\n%s", c.want, err, out)
			}
			if _, err := os.Lstat(filepath.Join(tmp, "sv")); err == nil {
				t.Fatalf("a rejected command created sv_dir")
			}
		})
	}
}

func TestIsModuleInvocation(t *testing.T) {
	args := filepath.Join(t.TempDir(), "args")
	os.WriteFile(args, []byte("{}"), 0o644)
	cases := []struct {
		name string
		argv []string
		want bool
	}{
		{"args file", []string{args}, true},
		{"subcommand", []string{"version"}, false},
		{"help", []string{"help"}, false},
		{"missing file", []string{args + "x"}, false},
		{"directory", []string{filepath.Dir(args)}, false},
		{"two args", []string{args, args}, false},
		{"none", nil, false},
		{"file named as a subcommand", []string{"version"}, false},
		{"file named as a subcommand, with a path", []string{"./version"}, true},
	}
	t.Chdir(filepath.Dir(args))
	os.WriteFile("version", []byte("{}"), 0o644)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := IsModuleInvocation(c.argv); got != c.want {
				t.Errorf("IsModuleInvocation(%q) = %v, want %v", c.argv, got, c.want)
			}
		})
	}
}

// A list option given once is coerced like Ansible's key=value string (comma-separated);
// given several times, each flag is one element.
func TestApply_ListFlags(t *testing.T) {
	tmp := t.TempDir()
	for _, c := range []struct {
		name string
		args []string
	}{
		{"comma-separated", []string{"--etcd-endpoints", "http://10.0.0.1:2379,http://10.0.0.2:2379"}},
		{"repeated", []string{"--etcd-endpoints", "http://10.0.0.1:2379", "--etcd-endpoints", "http://10.0.0.2:2379"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"apply", "--dry-run", "--diff", "--name", "web", "--image", "x", "--announce", "80",
				"--sv-dir", filepath.Join(tmp, "sv"), "--service-dir", filepath.Join(tmp, "service")}, c.args...)
			out, err := execute(t, args...)
			if err != nil {
				t.Fatalf("apply: %v\n%s", err, out)
			}
			if want := `--etcd-endpoints 'http://10.0.0.1:2379,http://10.0.0.2:2379'`; !strings.Contains(out, want) {
				t.Fatalf("the announcer's run does not get both endpoints (%s):\n%s", want, out)
			}
		})
	}
}
