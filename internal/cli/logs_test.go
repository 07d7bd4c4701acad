package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func writeLog(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLogs(t *testing.T) {
	logDir := t.TempDir()
	writeLog(t, filepath.Join(logDir, "web"), map[string]string{
		"@400000006b1100000000000a.s": "2026-12-03_08:00:01.00000 one\n2026-12-03_08:00:02.50000 two\n",
		"current":                     "@400000006b11265c2b616a54 three\nno stamp\n",
	})
	writeLog(t, filepath.Join(logDir, "web.announcer"), map[string]string{
		"current": "2026-12-03_08:00:03.00000 level=INFO msg=announced\n",
	})
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"last two", []string{"-n", "2"}, "2026-12-03 08:20:34.727804 three\nno stamp\n"},
		{"default 10 is all here", nil, "2026-12-03 08:00:01.000000 one\n2026-12-03 08:00:02.500000 two\n2026-12-03 08:20:34.727804 three\nno stamp\n"},
		{"all", []string{"-n", "all"}, "2026-12-03 08:00:01.000000 one\n2026-12-03 08:00:02.500000 two\n2026-12-03 08:20:34.727804 three\nno stamp\n"},
		{"none", []string{"-n", "0"}, ""},
		{"announcer", []string{"--announcer"}, "2026-12-03 08:00:03.000000 level=INFO msg=announced\n"},
		{"log_dir spelling", []string{"--log_dir", logDir, "-n", "1"}, "no stamp\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"logs", "web", "--utc", "--log-dir", logDir}, c.args...)
			out, err := execute(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			if out != c.want {
				t.Errorf("rundock %s:\n%s\nwant:\n%s", strings.Join(args, " "), out, c.want)
			}
		})
	}
}

// Without --utc the timestamps are in the local zone (TZ).
func TestLogs_LocalTime(t *testing.T) {
	logDir := t.TempDir()
	writeLog(t, filepath.Join(logDir, "web"), map[string]string{"current": "2026-12-03_08:00:01.00000 one\n"})
	old := time.Local
	time.Local = time.FixedZone("CET", 3600)
	defer func() { time.Local = old }()
	out, err := execute(t, "logs", "web", "--log-dir", logDir)
	if err != nil || out != "2026-12-03 09:00:01.000000 one\n" {
		t.Errorf("got %q, %v", out, err)
	}
}

func TestLogs_Errors(t *testing.T) {
	logDir := t.TempDir()
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"no log", []string{"logs", "web", "--log-dir", logDir}, []string{"no log for service web", filepath.Join(logDir, "web"), "does not exist"}},
		{"no announcer log", []string{"logs", "web", "--announcer", "--log-dir", logDir}, []string{"the announcer of web", filepath.Join(logDir, "web.announcer")}},
		{"bad name", []string{"logs", "../etc", "--log-dir", logDir}, []string{`"../etc"`, "DNS label"}},
		{"bad -n", []string{"logs", "web", "-n", "ten", "--log-dir", logDir}, []string{`-n "ten"`, "all"}},
		{"no name", []string{"logs"}, []string{"accepts 1 arg"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := execute(t, c.args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// -f prints the tail, then new lines, and returns nil when the context ends (Ctrl-C).
func TestLogs_Follow(t *testing.T) {
	logDir := t.TempDir()
	dir := filepath.Join(logDir, "web")
	writeLog(t, dir, map[string]string{"current": "2026-12-03_08:00:01.00000 one\n"})
	ctx, cancel := context.WithCancel(context.Background())
	root := NewRoot()
	var out syncBuffer
	root.SetOut(&out)
	root.SetArgs([]string{"logs", "web", "-f", "--utc", "--log-dir", logDir})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	time.Sleep(100 * time.Millisecond)
	f, err := os.OpenFile(filepath.Join(dir, "current"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("2026-12-03_08:00:02.00000 two\n")
	f.Close()
	want := "2026-12-03 08:00:01.000000 one\n2026-12-03 08:00:02.000000 two\n"
	for deadline := time.Now().Add(5 * time.Second); out.String() != want && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("logs -f: %v", err)
	}
	if out.String() != want {
		t.Errorf("logs -f printed %q, want %q", out.String(), want)
	}
}

// syncBuffer is a bytes.Buffer the command writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
