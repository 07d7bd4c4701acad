package render

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rundock/rundock/internal/testenv"
)

func TestUpstreams_Golden(t *testing.T) {
	testenv.Need(t, "sh")
	argv := []string{"/usr/local/bin/rundock", "upstreams", "--watch", "--reload-cmd=nginx -s reload", "--upstream-name=it's_{{.Name}}"}
	tr, err := Upstreams(argv, "/var/log/rundock-upstreams")
	if err != nil {
		t.Fatal(err)
	}
	checkSyntax(t, tr)
	got := dump(tr)
	golden := filepath.Join("testdata", "upstreams.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/render -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("Upstreams differs from %s (go test ./internal/render -update rewrites it):\n%s", golden, got)
	}

	// sh must read the words of the exec line back unchanged
	var run string
	for _, f := range tr.Files {
		if f.Path == "run" {
			run = string(f.Data)
		}
	}
	lines := strings.Split(strings.TrimSpace(run), "\n")
	exe, ok := strings.CutPrefix(lines[len(lines)-1], "exec ")
	if !ok {
		t.Fatalf("run does not end with an exec line:\n%s", run)
	}
	out, err := exec.Command("sh", "-c", "set -- "+exe+`; printf '%s\n' "$@"`).Output()
	if err != nil {
		t.Fatal(err)
	}
	if words := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); !reflect.DeepEqual(words, argv) {
		t.Fatalf("sh reads %q, want %q", words, argv)
	}
}

func TestUpstreams_Errors(t *testing.T) {
	tests := []struct {
		name   string
		argv   []string
		logDir string
		want   string
	}{
		{name: "ErrNoCommand", logDir: "/var/log/x", want: "no command"},
		{name: "ErrNoLogDir", argv: []string{"/bin/rundock"}, want: "no log directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Upstreams(tt.argv, tt.logDir); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
