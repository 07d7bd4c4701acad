package svlog

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A real svlogd -tt (Debian's runit package; no supervision involved) writes lines fast
// enough to rotate current several times; Follow, started from a Tail in the middle, prints
// every later line exactly once and in order, and Tail -n all afterwards finds them all.
func TestFollow_RealSvlogd(t *testing.T) {
	svlogd, err := exec.LookPath("svlogd")
	if err != nil {
		t.Fatal("svlogd is missing (Debian package runit): run make setup")
	}
	dir := t.TempDir()
	// 4 KB files, keep up to 50: 400 lines of ~50 bytes rotate about 5 times, none deleted.
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte("s4096\nn50\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(svlogd, "-tt", dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })

	const first, total = 100, 400
	line := func(i int) string { return fmt.Sprintf("message %04d from the container", i) }
	for i := 0; i < first; i++ {
		fmt.Fprintln(stdin, line(i))
	}
	// svlogd writes when its buffer is full or its input pauses; wait for the last line.
	deadline := time.Now().Add(5 * time.Second)
	var pos Position
	for {
		lines, p, err := Tail(dir, 1)
		if err == nil && len(lines) == 1 && lines[0].Message == line(first-1) {
			pos = p
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("svlogd did not write %q: %v %v", line(first-1), lines, err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{}
	done := make(chan error, 1)
	go func() { done <- Follow(ctx, dir, pos, 20*time.Millisecond, c.emit) }()
	start := time.Now()
	for i := first; i < total; i++ {
		fmt.Fprintln(stdin, line(i))
		if i%25 == 0 {
			time.Sleep(15 * time.Millisecond) // let rotations happen while Follow reads
		}
	}
	got := c.wait(t, total-first, 10*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Follow: %v", err)
	}
	for i, m := range got {
		if want := line(first + i); m != want {
			t.Fatalf("line %d followed %q, want %q (all: %d lines)", i, m, want, len(got))
		}
	}
	rotated, _ := filepath.Glob(filepath.Join(dir, "@*.s"))
	if len(rotated) < 3 {
		t.Errorf("svlogd rotated %d times, want at least 3: the test did not cross rotations", len(rotated))
	}
	t.Logf("followed %d lines across %d rotations", len(got), len(rotated))

	all, _, err := Tail(dir, -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != total {
		t.Fatalf("Tail -n all: %d lines, want %d", len(all), total)
	}
	for i, l := range all {
		if l.Message != line(i) {
			t.Fatalf("Tail line %d = %q, want %q", i, l.Message, line(i))
		}
		if d := l.Time.Sub(start); d < -time.Minute || d > time.Minute {
			t.Fatalf("line %d stamped %v, %v from now: the -tt timestamp was misread", i, l.Time, d)
		}
	}
	if strings.Contains(all[0].Message, "_") {
		t.Errorf("timestamp left in the message: %q", all[0].Message)
	}
}
