package runit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/testenv"
)

// Against a real runsv: the status read from supervise/status agrees with `sv status`,
// and the probes follow runsv's life.
func TestStatus_RealRunsv(t *testing.T) {
	testenv.Need(t, "runsv", "sv")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "run"), []byte("#!/bin/sh\nexec sleep 300\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if Supervised(dir) || Locked(dir) {
		t.Fatal("supervised before runsv started")
	}
	if st, err := ReadStatus(dir); err != nil || st.Supervised || st.String() != "not supervised" {
		t.Fatalf("before runsv: %+v %v", st, err)
	}
	cmd := exec.Command("runsv", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ctx := context.Background()
	if err := WaitSupervised(ctx, dir, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	var st Status
	testenv.Eventually(t, 5*time.Second, "state run", func() bool {
		st, _ = ReadStatus(dir)
		return st.State == "run" && st.PID != 0
	})
	out, err := Sv(ctx, 0, "status", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "(pid "+strconv.Itoa(st.PID)+")") || st.Want != "up" || !Locked(dir) {
		t.Fatalf("status %+v does not match sv: %s", st, out)
	}
	if _, err := Sv(ctx, 5*time.Second, "down", dir); err != nil {
		t.Fatal(err)
	}
	if st, _ = ReadStatus(dir); st.State != "down" || st.Want != "down" || st.PID != 0 {
		t.Fatalf("after sv down: %+v", st)
	}
	if _, err := Sv(ctx, 0, "exit", dir); err != nil {
		t.Fatal(err)
	}
	if err := WaitUnlocked(ctx, dir, 5*time.Second); err != nil {
		t.Fatalf("runsv still holds the lock after sv exit: %v", err)
	}
	if Supervised(dir) {
		t.Fatal("still supervised after sv exit")
	}
}

// sv sends a command only when the status does not already say so, and runsv reads its
// commands only when it is not busy: an sv up right after an sv down that runsv has not read
// yet is lost, since the status still says "want up". WaitWant after the down closes that race.
func TestWaitWant_RealRunsv(t *testing.T) {
	testenv.Need(t, "runsv", "sv")
	ctx := context.Background()
	for _, wait := range []bool{false, true} {
		t.Run("WaitWant="+strconv.FormatBool(wait), func(t *testing.T) {
			dir := t.TempDir()
			// control/t keeps runsv busy for 2 s, then lets it send TERM.
			files := map[string]string{"run": "exec sleep 300\n", "control/t": "sleep 2\nexit 1\n"}
			for name, body := range files {
				os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
				if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("runsv", dir)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			testenv.Eventually(t, 5*time.Second, "state run", func() bool {
				st, _ := ReadStatus(dir)
				return st.State == "run" && st.PID != 0
			})
			// sv term: runsv runs control/t and is busy; the service stays wanted up.
			for _, c := range []string{"term", "down"} {
				if _, err := Sv(ctx, 0, c, dir); err != nil {
					t.Fatal(err)
				}
			}
			if wait {
				if err := WaitWant(ctx, dir, "down", 10*time.Second); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := Sv(ctx, 0, "up", dir); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Second) // control/t twice at most, and the restart
			st, err := ReadStatus(dir)
			if err != nil {
				t.Fatal(err)
			}
			// Without the wait the sv up is lost (runit's behaviour, kept here so that a runit
			// that changes it shows up); with it, up holds.
			want := map[bool]string{false: "down", true: "up"}[wait]
			if st.Want != want {
				t.Fatalf("after term, down, up: want %q, got %+v", want, st)
			}
		})
	}
}
