package moduleshim

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rundock/rundock/internal/defaults"
)

func TestTarget(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "rundock"), []byte("#!/bin/sh\n"), 0o755)
	noexec := filepath.Join(dir, "noexec")
	os.MkdirAll(noexec, 0o755)
	os.WriteFile(filepath.Join(noexec, "rundock"), []byte("x"), 0o644)
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(empty, 0o755)

	def := defaults.BinDir
	defaults.BinDir = bin
	t.Cleanup(func() { defaults.BinDir = def })

	tests := []struct {
		name    string
		args    string // the arguments file's content
		want    string // the rundock found, "" for an error
		wantErr string // a part of the error
	}{
		{name: "BinDir", args: `{"name": "web", "bin_dir": "` + bin + `", "_ansible_check_mode": false}`, want: filepath.Join(bin, "rundock")},
		{name: "Default", args: `{"name": "web"}`, want: filepath.Join(bin, "rundock")},
		{name: "NullIsDefault", args: `{"bin_dir": null}`, want: filepath.Join(bin, "rundock")},
		{name: "ErrMissing", args: `{"bin_dir": "` + empty + `"}`, wantErr: "rundock is not installed at " + filepath.Join(empty, "rundock")},
		{name: "ErrNotExecutable", args: `{"bin_dir": "` + noexec + `"}`, wantErr: "is not an executable file"},
		{name: "ErrRelative", args: `{"bin_dir": "bin"}`, wantErr: "bin_dir bin: write it as an absolute path"},
		{name: "ErrNotString", args: `{"bin_dir": 3}`, wantErr: "bin_dir 3: write it as an absolute path"},
		{name: "ErrNotJSON", args: `name=web`, wantErr: "cannot read the module's arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "args")
			os.WriteFile(f, []byte(tt.args), 0o600)
			got, err := Target(f)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Target = %q, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Target = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestFailed(t *testing.T) {
	var r map[string]any
	if err := json.Unmarshal(Failed(errors.New(`bin_dir "x": fix it`)), &r); err != nil {
		t.Fatal(err)
	}
	if r["failed"] != true || r["changed"] != false || r["msg"] != `rundock module: bin_dir "x": fix it` {
		t.Fatalf("Failed = %v", r)
	}
}
