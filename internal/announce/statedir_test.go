package announce

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadHold(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		name  string
		files map[string]string // name → content; a "" name makes the dir a file
		want  hold
	}{
		{name: "no dir", want: hold{}},
		{name: "empty dir", files: map[string]string{}, want: hold{}},
		{name: "maintenance with reason", files: map[string]string{MaintenanceFile: "  db upgrade \nmore\n"}, want: hold{maintenance: true, reason: "db upgrade"}},
		{name: "maintenance empty", files: map[string]string{MaintenanceFile: ""}, want: hold{maintenance: true}},
		{name: "drain with newline", files: map[string]string{DrainFile: id + "\n"}, want: hold{drain: id}},
		{name: "drain upper case", files: map[string]string{DrainFile: "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"}, want: hold{drain: id}},
		{name: "drain short id", files: map[string]string{DrainFile: id[:12]}, want: hold{badDrain: id[:12]}},
		{name: "drain empty", files: map[string]string{DrainFile: ""}, want: hold{}},
		{name: "both", files: map[string]string{DrainFile: id, MaintenanceFile: "x"}, want: hold{maintenance: true, reason: "x", drain: id}},
		{name: "state dir is a file", files: map[string]string{"": ""}, want: hold{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), ".rundock")
			if tt.files != nil {
				if _, ok := tt.files[""]; ok {
					os.WriteFile(dir, nil, 0o644)
				} else if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for n, c := range tt.files {
				if n != "" {
					if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			d := &stateDir{dir: dir}
			got, changed, err := d.poll(false)
			if err != nil || !changed || got != tt.want {
				t.Fatalf("poll = %+v, %v, %v; want %+v, true, nil", got, changed, err, tt.want)
			}
			if _, changed, _ := d.poll(false); changed {
				t.Fatal("second poll with nothing changed reports a change")
			}
			if _, changed, _ := d.poll(true); !changed {
				t.Fatal("forced poll reports no change")
			}
		})
	}
}

// TestStateDir_Poll: a rename over a file, an in-place rewrite and a removal are all
// seen by the stat-only poll.
func TestStateDir_Poll(t *testing.T) {
	dir := t.TempDir()
	d := &stateDir{dir: dir}
	m := filepath.Join(dir, MaintenanceFile)
	steps := []struct {
		name string
		do   func() error
		want hold
	}{
		{"create", func() error { return os.WriteFile(m, []byte("a\n"), 0o644) }, hold{maintenance: true, reason: "a"}},
		{"rename over", func() error {
			if err := os.WriteFile(m+".tmp", []byte("b\n"), 0o644); err != nil {
				return err
			}
			return os.Rename(m+".tmp", m)
		}, hold{maintenance: true, reason: "b"}},
		{"rewrite in place", func() error { return os.WriteFile(m, []byte("longer\n"), 0o644) }, hold{maintenance: true, reason: "longer"}},
		{"remove", func() error { return os.Remove(m) }, hold{}},
	}
	d.poll(false)
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatal(err)
		}
		got, changed, err := d.poll(false)
		if err != nil || !changed || got != s.want {
			t.Fatalf("%s: poll = %+v, %v, %v; want %+v, true", s.name, got, changed, err, s.want)
		}
	}
}

// TestReadHold_Unreadable: a state file that cannot be read (here a directory in its
// place, which fails for root too) is an error, and the last hold stands.
func TestReadHold_Unreadable(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, DrainFile), 0o755); err != nil {
		t.Fatal(err)
	}
	d := &stateDir{dir: dir, cur: hold{maintenance: true, reason: "kept"}}
	got, changed, err := d.poll(false)
	if err == nil || changed || got != d.cur {
		t.Fatalf("unreadable drain file: %+v, %v, %v; want the last hold and an error", got, changed, err)
	}
}
