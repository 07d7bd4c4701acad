package testenv

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSnapshot(t *testing.T) {
	tests := []struct {
		name   string
		change func(dir string) error
		same   bool
	}{
		{"nothing", func(string) error { return nil }, true},
		{"content", func(d string) error { return os.WriteFile(filepath.Join(d, "svc", "run"), []byte("two\n"), 0o755) }, false},
		{"mode", func(d string) error { return os.Chmod(filepath.Join(d, "svc", "run"), 0o644) }, false},
		{"link target", func(d string) error {
			os.Remove(filepath.Join(d, "link"))
			return os.Symlink("elsewhere", filepath.Join(d, "link"))
		}, false},
		{"new file", func(d string) error { return os.WriteFile(filepath.Join(d, "svc", "new"), nil, 0o644) }, false},
		{"removed file", func(d string) error { return os.Remove(filepath.Join(d, "svc", "run")) }, false},
		{"inside supervise", func(d string) error {
			return os.WriteFile(filepath.Join(d, "svc", "supervise", "status"), []byte("y"), 0o644)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "svc", "supervise"), 0o755)
			os.WriteFile(filepath.Join(dir, "svc", "run"), []byte("one\n"), 0o755)
			os.WriteFile(filepath.Join(dir, "svc", "supervise", "status"), []byte("x"), 0o644)
			if err := os.Symlink("svc", filepath.Join(dir, "link")); err != nil {
				t.Fatal(err)
			}
			before := Snapshot(dir, "supervise")
			if strings.Contains(before, "/svc/supervise") {
				t.Fatalf("supervise/ not left out:\n%s", before)
			}
			if err := tt.change(dir); err != nil {
				t.Fatal(err)
			}
			if after := Snapshot(dir, "supervise"); (after == before) != tt.same {
				t.Errorf("same = %v, want %v\nbefore:\n%s\nafter:\n%s", after == before, tt.same, before, after)
			}
		})
	}
}

func TestListing(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), nil, 0o644)
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	got := Listing(dir, filepath.Join(dir, "f"), filepath.Join(dir, "absent"))
	want := fmt.Sprintf("%s: d f; %s/f: file; %s/absent: absent; ", dir, dir, dir)
	if got != want {
		t.Errorf("Listing = %q, want %q", got, want)
	}
}

func TestHTTPGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("nope"))
	}))
	url := srv.URL + "/x"
	if code, body, err := HTTPGet(http.DefaultClient, url); code != 404 || body != "nope" || err != nil {
		t.Errorf("HTTPGet = %d %q %v, want 404 \"nope\" <nil>", code, body, err)
	}
	if got := HTTPBody(url, time.Second); got != "nope" {
		t.Errorf("HTTPBody = %q, want \"nope\"", got)
	}
	if got := MustHTTPBody(t, url, time.Second); got != "nope" {
		t.Errorf("MustHTTPBody = %q, want \"nope\"", got)
	}
	srv.Close()
	if got := HTTPBody(url, time.Second); got != "" {
		t.Errorf("HTTPBody of a closed server = %q, want \"\"", got)
	}
}
