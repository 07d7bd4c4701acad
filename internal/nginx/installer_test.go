package nginx

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rundock/rundock/internal/testenv"
)

// realNginx returns an Installer whose check is the real `nginx -t` of a configuration
// that includes Output, and whose reload counts itself in a file.
func realNginx(t *testing.T) (*Installer, string) {
	t.Helper()
	testenv.Need(t, "nginx")
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	out := filepath.Join(dir, "up.conf")
	txt := "error_log " + dir + "/error.log;\npid " + dir + "/nginx.pid;\nevents {}\nhttp {\n  access_log off;\n  include " + out + ";\n}\n"
	if err := os.WriteFile(conf, []byte(txt), 0o644); err != nil {
		t.Fatal(err)
	}
	return &Installer{Output: out, CheckCmd: "nginx -t -q -p " + dir + " -c " + conf, ReloadCmd: "echo >>" + dir + "/reloads"}, dir
}

const (
	good  = "upstream a { server 127.0.0.1:1 down; }\n"
	good2 = "upstream a { server 127.0.0.1:2; }\n"
	bad   = "upstream a { server 127.0.0.1:1 bogus_param; }\n"
)

func TestInstaller_Apply(t *testing.T) {
	n, dir := realNginx(t)
	ctx := context.Background()
	steps := []struct {
		name        string
		content     string
		wantChanged bool
		wantCheck   bool   // ErrCheck expected
		wantFile    string // Output afterwards; "" for absent
		wantReloads int64
	}{
		{name: "ErrCheck on a new file removes it", content: bad, wantCheck: true, wantFile: "", wantReloads: 0},
		{name: "first good file", content: good, wantChanged: true, wantFile: good, wantReloads: 1},
		{name: "same bytes: no reload", content: good, wantFile: good, wantReloads: 1},
		{name: "ErrCheck keeps the previous file", content: bad, wantCheck: true, wantFile: good, wantReloads: 1},
		{name: "new good file", content: good2, wantChanged: true, wantFile: good2, wantReloads: 2},
	}
	for _, st := range steps {
		changed, err := n.Apply(ctx, []byte(st.content))
		if errors.Is(err, ErrCheck) != st.wantCheck || (err != nil && !st.wantCheck) {
			t.Fatalf("%s: err %v, want ErrCheck %v", st.name, err, st.wantCheck)
		}
		if changed != st.wantChanged || n.Reloads() != st.wantReloads {
			t.Fatalf("%s: changed %v reloads %d, want %v %d", st.name, changed, n.Reloads(), st.wantChanged, st.wantReloads)
		}
		got, err := n.Current()
		if err != nil || string(got) != st.wantFile {
			t.Fatalf("%s: Output holds %q (%v), want %q", st.name, got, err, st.wantFile)
		}
		if tmp, _ := filepath.Glob(filepath.Join(dir, ".up.conf.*")); len(tmp) != 0 {
			t.Fatalf("%s: temp files left: %v", st.name, tmp)
		}
	}
}

func TestInstaller_KeepsMode(t *testing.T) {
	n, _ := realNginx(t)
	if err := os.WriteFile(n.Output, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Apply(context.Background(), []byte(good2)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(n.Output); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode after Apply: %v %v, want 0600", fi.Mode(), err)
	}
}

// TestInstaller_ReloadRetried: a failed reload is retried on the next Apply even when the
// bytes are unchanged, so nginx does not keep running an older file.
func TestInstaller_ReloadRetried(t *testing.T) {
	n, dir := realNginx(t)
	reload := n.ReloadCmd
	n.ReloadCmd = "echo no >&2; exit 1"
	_, err := n.Apply(context.Background(), []byte(good))
	if err == nil || !strings.Contains(err.Error(), "cannot reload nginx") || errors.Is(err, ErrCheck) {
		t.Fatalf("err %v, want a reload error", err)
	}
	n.ReloadCmd = reload
	if changed, err := n.Apply(context.Background(), []byte(good)); err != nil || changed || n.Reloads() != 1 {
		t.Fatalf("retry: changed %v err %v reloads %d, want false nil 1", changed, err, n.Reloads())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "reloads")); len(b) != 1 {
		t.Fatalf("reload ran %d times, want once", len(b))
	}
}

func TestInstaller_ErrSymlink(t *testing.T) {
	n, dir := realNginx(t)
	target := filepath.Join(dir, "elsewhere.conf")
	if err := os.WriteFile(target, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, n.Output); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Apply(context.Background(), []byte(good2)); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Apply through a symlink: %v, want it refused", err)
	}
	if _, err := n.Current(); err == nil {
		t.Fatal("Current read through a symlink")
	}
	if b, _ := os.ReadFile(target); string(b) != good {
		t.Fatalf("the symlink's target was written: %q", b)
	}
}
