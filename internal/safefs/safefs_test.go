package safefs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rundock/rundock/internal/tree"
)

// noTemps fails when dir holds a hidden temp name one of the functions made.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, ".") {
			t.Fatalf("%s left in %s", n, dir)
		}
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name   string
		before func(t *testing.T, dir, path string) // what is at path first
		mode   fs.FileMode
	}{
		{name: "new file", before: func(*testing.T, string, string) {}, mode: 0o640},
		{name: "replaces a file, mode too", before: func(t *testing.T, _, p string) { write(t, p, "old content, longer than the new") }, mode: 0o755},
		{name: "replaces a symlink, not its target", before: func(t *testing.T, dir, p string) {
			write(t, filepath.Join(dir, "target"), "target")
			if err := os.Symlink("target", p); err != nil {
				t.Fatal(err)
			}
		}, mode: 0o600},
		{name: "replaces a dangling symlink", before: func(t *testing.T, dir, p string) {
			if err := os.Symlink(filepath.Join(dir, "missing"), p); err != nil {
				t.Fatal(err)
			}
		}, mode: 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f.conf")
			tt.before(t, dir, p)
			if err := WriteFile(p, []byte("new"), tt.mode); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(p)
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != tt.mode {
				t.Fatalf("after WriteFile: %v %v, want a regular file %v", fi.Mode(), err, tt.mode)
			}
			if b, _ := os.ReadFile(p); string(b) != "new" {
				t.Fatalf("content %q", b)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "target")); err == nil && string(b) != "target" {
				t.Fatalf("the symlink's target was written: %q", b)
			}
			noTemps(t, dir)
		})
	}
}

func TestWriteFile_Errors(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFile(filepath.Join(dir, "missing", "f"), []byte("x"), 0o644); err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(sub, []byte("x"), 0o644); err == nil {
		t.Fatal("WriteFile over a directory succeeded")
	}
	if fi, err := os.Lstat(sub); err != nil || !fi.IsDir() {
		t.Fatalf("the directory is gone: %v %v", fi, err)
	}
	noTemps(t, dir)
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	write(t, p, "data")
	if b, err := ReadFile(p); err != nil || string(b) != "data" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	// Empty, and larger than the first read.
	for _, data := range []string{"", strings.Repeat("0123456789abcdef", 1000)} {
		write(t, p, data)
		if b, err := ReadFile(p); err != nil || string(b) != data {
			t.Fatalf("ReadFile of %d bytes = %d bytes, %v", len(data), len(b), err)
		}
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(link); err == nil {
		t.Fatal("ReadFile followed a symlink")
	}
	if _, err := ReadFile(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestMkdirAll(t *testing.T) {
	tests := []struct {
		name    string
		plant   func(t *testing.T, root, outside string)
		dir     string // relative to root
		wantErr error  // nil for success; errOutside for the root check
	}{
		{name: "nested", plant: func(*testing.T, string, string) {}, dir: "a/b/c"},
		{name: "existing", plant: func(t *testing.T, root, _ string) { os.MkdirAll(filepath.Join(root, "a", "b"), 0o755) }, dir: "a/b"},
		{name: "ErrSymlink at the top", plant: func(t *testing.T, root, outside string) { os.Symlink(outside, filepath.Join(root, "a")) }, dir: "a/b", wantErr: ErrSymlink},
		{name: "ErrSymlink in the middle", plant: func(t *testing.T, root, outside string) {
			os.Mkdir(filepath.Join(root, "a"), 0o755)
			os.Symlink(outside, filepath.Join(root, "a", "b"))
		}, dir: "a/b/c", wantErr: ErrSymlink},
		{name: "ErrSymlink at the end", plant: func(t *testing.T, root, outside string) { os.Symlink(outside, filepath.Join(root, "a")) }, dir: "a", wantErr: ErrSymlink},
		{name: "ErrInTheWay", plant: func(t *testing.T, root, _ string) { write(t, filepath.Join(root, "a"), "x") }, dir: "a/b", wantErr: ErrInTheWay},
		{name: "ErrOutside", plant: func(*testing.T, string, string) {}, dir: "../x", wantErr: errOutside},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, outside := t.TempDir(), t.TempDir()
			tt.plant(t, root, outside)
			err := MkdirAll(root, filepath.Join(root, tt.dir))
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatal(err)
			case tt.wantErr == nil:
				if fi, err := os.Lstat(filepath.Join(root, tt.dir)); err != nil || !fi.IsDir() {
					t.Fatalf("%s not created: %v", tt.dir, err)
				}
			case tt.wantErr == errOutside:
				if err == nil || !strings.Contains(err.Error(), "outside") {
					t.Fatalf("error %v, want one saying it is outside the root", err)
				}
			case !errors.Is(err, tt.wantErr):
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Fatalf("created %s through the planted symlink", ents[0].Name())
			}
		})
	}
}

// errOutside stands for MkdirAll's error for a directory outside its root, which has no
// sentinel.
var errOutside = errors.New("outside")

func TestEnsureDir(t *testing.T) {
	dir := t.TempDir()
	if err := EnsureDir(filepath.Join(dir, "a", "b")); err != nil {
		t.Fatal(err)
	}
	if err := EnsureDir(filepath.Join(dir, "a", "b")); err != nil {
		t.Fatalf("existing directory: %v", err)
	}
	if err := os.Symlink(filepath.Join(dir, "a"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := EnsureDir(filepath.Join(dir, "link")); !errors.Is(err, ErrSymlink) {
		t.Fatalf("symlink: %v, want ErrSymlink", err)
	}
	write(t, filepath.Join(dir, "file"), "x")
	if err := EnsureDir(filepath.Join(dir, "file")); !errors.Is(err, ErrInTheWay) {
		t.Fatalf("file: %v, want ErrInTheWay", err)
	}
}

func TestCreateDir(t *testing.T) {
	parent := t.TempDir()
	files := []tree.File{
		{Path: "run", Mode: 0o755, Data: []byte("#!/bin/sh\n")},
		{Path: "log/run", Mode: 0o700, Data: []byte("#!/bin/sh\nexec svlogd .\n")},
		{Path: "env/NAME", Mode: 0o600, Data: []byte("x")},
	}
	if err := CreateDir(parent, "svc", files); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		p := filepath.Join(parent, "svc", filepath.FromSlash(f.Path))
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode().Perm() != f.Mode {
			t.Fatalf("%s: %v %v, want mode %v", f.Path, fi, err, f.Mode)
		}
		if b, _ := os.ReadFile(p); string(b) != string(f.Data) {
			t.Fatalf("%s: %q", f.Path, b)
		}
	}
	if fi, _ := os.Stat(filepath.Join(parent, "svc")); fi.Mode().Perm() != 0o755 {
		t.Fatalf("directory mode %v, want 0755", fi.Mode().Perm())
	}
	noTemps(t, parent)
}

// TestCreateDir_Errors: a CreateDir that fails leaves nothing behind, and what was at the
// name before is untouched.
func TestCreateDir_Errors(t *testing.T) {
	tests := []struct {
		name   string
		before func(t *testing.T, parent string)
		files  []tree.File
	}{
		{name: "ErrExists", before: func(t *testing.T, parent string) {
			os.Mkdir(filepath.Join(parent, "svc"), 0o755)
			write(t, filepath.Join(parent, "svc", "keep"), "old")
		}, files: []tree.File{{Path: "run", Mode: 0o755, Data: []byte("new")}}},
		{name: "ErrDuplicatePath", before: func(*testing.T, string) {}, files: []tree.File{
			{Path: "run", Mode: 0o755, Data: []byte("a")}, {Path: "run", Mode: 0o755, Data: []byte("b")}}},
		{name: "ErrFileUnderFile", before: func(*testing.T, string) {}, files: []tree.File{
			{Path: "run", Mode: 0o755, Data: []byte("a")}, {Path: "run/x", Mode: 0o755, Data: []byte("b")}}},
		{name: "ErrPathEscapes", before: func(*testing.T, string) {}, files: []tree.File{
			{Path: "../escaped", Mode: 0o644, Data: []byte("a")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			tt.before(t, parent)
			before, _ := os.ReadDir(parent)
			if err := CreateDir(parent, "svc", tt.files); err == nil {
				t.Fatal("CreateDir succeeded")
			}
			noTemps(t, parent)
			after, _ := os.ReadDir(parent)
			if len(after) != len(before) {
				t.Fatalf("parent holds %d entries, had %d", len(after), len(before))
			}
			if b, err := os.ReadFile(filepath.Join(parent, "svc", "keep")); err == nil && string(b) != "old" {
				t.Fatalf("the existing directory was changed: %q", b)
			}
			if _, err := os.Lstat(filepath.Join(parent, "escaped")); err == nil {
				t.Fatal("a file was written outside the new directory")
			}
		})
	}
}

func TestRemoveDir(t *testing.T) {
	parent := t.TempDir()
	if err := CreateDir(parent, "svc", []tree.File{{Path: "log/run", Mode: 0o755, Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if err := RemoveDir(parent, "svc"); err != nil {
		t.Fatal(err)
	}
	if err := RemoveDir(parent, "svc"); err != nil {
		t.Fatalf("missing directory: %v", err)
	}
	// a symlink at the name goes; what it points at stays
	target := t.TempDir()
	write(t, filepath.Join(target, "keep"), "x")
	if err := os.Symlink(target, filepath.Join(parent, "link")); err != nil {
		t.Fatal(err)
	}
	if err := RemoveDir(parent, "link"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, "keep")); err != nil {
		t.Fatalf("RemoveDir followed the symlink: %v", err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Fatalf("left %s", ents[0].Name())
	}
}

func TestSymlink(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	for _, target := range []string{"/etc/sv/a", "/etc/sv/b"} { // create, then replace
		if err := Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if got, err := os.Readlink(link); err != nil || got != target {
			t.Fatalf("link -> %q (%v), want %q", got, err, target)
		}
	}
	noTemps(t, dir)
}

func TestExists(t *testing.T) {
	dir := t.TempDir()
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "none"), dangling); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{dir: true, dangling: true, filepath.Join(dir, "none"): false} {
		if got, err := Exists(p); err != nil || got != want {
			t.Errorf("Exists(%s) = %v, %v; want %v", p, got, err, want)
		}
	}
}
