package svlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseLine(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want Line
	}{
		{"tt", "2026-12-03_08:20:34.72172 hello world", Line{time.Date(2026, 12, 3, 8, 20, 34, 721720000, time.UTC), "hello world"}},
		{"ttt", "2026-12-03T08:20:34.72172 hello", Line{time.Date(2026, 12, 3, 8, 20, 34, 721720000, time.UTC), "hello"}},
		// Written by svlogd -t on this machine at 2026-12-03 08:20:34 UTC.
		{"tai64n", "@400000006b11265c2b616a54 hello", Line{time.Date(2026, 12, 3, 8, 20, 34, 727804500, time.UTC), "hello"}},
		{"tt empty message", "2026-12-03_08:20:34.72172 ", Line{time.Date(2026, 12, 3, 8, 20, 34, 721720000, time.UTC), ""}},
		{"no timestamp", "plain line", Line{Message: "plain line"}},
		{"empty", "", Line{}},
		{"bad hex", "@40000000zzzzzzzz2b616a54 x", Line{Message: "@40000000zzzzzzzz2b616a54 x"}},
		{"tai64 before the epoch label", "@000000006b11265c2b616a54 x", Line{Message: "@000000006b11265c2b616a54 x"}},
		{"date-like text", "2026-12-03_notatime rest", Line{Message: "2026-12-03_notatime rest"}},
		{"short", "2026-12-03", Line{Message: "2026-12-03"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ParseLine(c.in)
			if !got.Time.Equal(c.want.Time) || got.Message != c.want.Message {
				t.Errorf("ParseLine(%q) = %v %q, want %v %q", c.in, got.Time, got.Message, c.want.Time, c.want.Message)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	l := ParseLine("2026-12-03_08:20:34.72172 hello")
	if got, want := Format(l, loc), "2026-12-03 09:20:34.721720 hello"; got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
	if got := Format(ParseLine("no stamp"), loc); got != "no stamp" {
		t.Errorf("Format without a timestamp = %q", got)
	}
}

// svlogdDir fabricates what svlogd leaves in a log directory: two rotated files (one still
// .u), current with an unfinished last line, and the files that are not logs.
func svlogdDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"@400000006b1100000000000a.s": stamped(1, 2, 3),
		"@400000006b1100100000000a.u": stamped(4, 5),
		"current":                     stamped(6, 7) + "2026-12-03_08:00:08.00000 unfinished",
		"config":                      "s1000\nn10\n",
		"lock":                        "",
		"state":                       "",
		"previous":                    "not a log\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// stamped returns svlogd -tt lines "line N" stamped 2026-12-03 08:00:0N UTC.
func stamped(ns ...int) string {
	var b strings.Builder
	for _, n := range ns {
		fmt.Fprintf(&b, "2026-12-03_08:00:%02d.00000 line %d\n", n, n)
	}
	return b.String()
}

func messages(lines []Line) string {
	var m []string
	for _, l := range lines {
		m = append(m, l.Message)
	}
	return strings.Join(m, ",")
}

func TestTail(t *testing.T) {
	dir := svlogdDir(t)
	cases := []struct {
		name string
		n    int
		want string
	}{
		{"last 3 across current and a .u file", 3, "line 5,line 6,line 7"},
		{"across every file", 6, "line 2,line 3,line 4,line 5,line 6,line 7"},
		{"all", -1, "line 1,line 2,line 3,line 4,line 5,line 6,line 7"},
		{"more than there are", 100, "line 1,line 2,line 3,line 4,line 5,line 6,line 7"},
		{"none", 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines, _, err := Tail(dir, c.n)
			if err != nil {
				t.Fatal(err)
			}
			if got := messages(lines); got != c.want {
				t.Errorf("Tail(%d) = %s, want %s", c.n, got, c.want)
			}
		})
	}
	lines, _, _ := Tail(dir, 1)
	if want := time.Date(2026, 12, 3, 8, 0, 7, 0, time.UTC); !lines[0].Time.Equal(want) {
		t.Errorf("time %v, want %v", lines[0].Time, want)
	}
}

func TestTail_ErrNoLog(t *testing.T) {
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{"missing": filepath.Join(empty, "nope"), "empty": empty} {
		t.Run(name, func(t *testing.T) {
			_, _, err := Tail(dir, 10)
			if !errors.Is(err, ErrNoLog) || !strings.Contains(err.Error(), dir) {
				t.Errorf("Tail(%s) = %v, want ErrNoLog naming the directory", dir, err)
			}
		})
	}
}

// collector gathers the lines Follow emits.
type collector struct {
	mu    sync.Mutex
	lines []string
}

func (c *collector) emit(l Line) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, l.Message)
	return nil
}

// wait returns the lines once there are n of them, or fails after timeout.
func (c *collector) wait(t *testing.T, n int, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		got := append([]string(nil), c.lines...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d lines, want %d: %q", timeout, len(got), n, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func appendFile(t *testing.T, name, data string) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
}

// Follow picks up after Tail (the unfinished line once it is finished), then follows current
// through two rotations done the way svlogd does them: rename current to @….s, new current.
// A line appended after Tail but before Follow started is printed once.
func TestFollow_Rotation(t *testing.T) {
	dir := svlogdDir(t)
	cur := filepath.Join(dir, Current)
	_, pos, err := Tail(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	appendFile(t, cur, " now\n"+stamped(8))
	// Rotated before Follow even started: Follow must find the old current by its identity.
	if err := os.Rename(cur, filepath.Join(dir, "@400000006b1100200000000a.s")); err != nil {
		t.Fatal(err)
	}
	appendFile(t, cur, stamped(9))

	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{}
	done := make(chan error, 1)
	go func() { done <- Follow(ctx, dir, pos, 5*time.Millisecond, c.emit) }()
	c.wait(t, 3, 5*time.Second)

	// A rotation while following; the old file still gets a last line before the rename.
	appendFile(t, cur, stamped(10))
	time.Sleep(30 * time.Millisecond)
	appendFile(t, cur, stamped(11))
	if err := os.Rename(cur, filepath.Join(dir, "@400000006b1100300000000a.s")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond) // the gap svlogd leaves before its new current
	appendFile(t, cur, stamped(12))

	got := c.wait(t, 6, 5*time.Second)
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Follow: %v", err)
	}
	want := "unfinished now,line 8,line 9,line 10,line 11,line 12"
	if s := strings.Join(c.wait(t, 0, 0), ","); s != want {
		t.Errorf("followed %s, want %s (first wait: %q)", s, want, got)
	}
}

// A zero Position (no current when Tail ran) starts at the first current that appears.
func TestFollow_NoCurrentYet(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &collector{}
	done := make(chan error, 1)
	go func() { done <- Follow(ctx, dir, Position{}, 5*time.Millisecond, c.emit) }()
	time.Sleep(20 * time.Millisecond)
	appendFile(t, filepath.Join(dir, Current), stamped(1, 2))
	if got := strings.Join(c.wait(t, 2, 5*time.Second), ","); got != "line 1,line 2" {
		t.Errorf("followed %s", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
