// Package runit controls runit services: it reads a service's status from its supervise/
// directory, drives it with `sv`, and probes whether a runsv supervises it.
package runit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// taiOffset is the TAI64 label of the Unix epoch as runit writes it (2^62 + 10).
const taiOffset = 4611686018427387914

// Status is the state of one runit service as runsv records it in supervise/status.
type Status struct {
	// Supervised is true when a runsv is running for the service.
	Supervised bool `json:"supervised"`
	// State is "run", "down" or "finish"; empty when not supervised.
	State string `json:"state,omitempty"`
	// PID is the process id of ./run (or ./finish); 0 when down.
	PID int `json:"pid,omitempty"`
	// Since is when the service entered State.
	Since time.Time `json:"since,omitzero"`
	// Uptime is how long the service has been in State, in whole seconds.
	Uptime int64 `json:"uptime_seconds,omitempty"`
	// Want is "up" or "down": what runsv is asked to keep the service at.
	Want string `json:"want,omitempty"`
	// Paused is true after `sv pause`.
	Paused bool `json:"paused,omitempty"`
}

// String renders the status like `sv status` does, e.g. "run (pid 123) 5s".
func (s Status) String() string {
	if !s.Supervised {
		return "not supervised"
	}
	out := s.State
	if s.PID != 0 {
		out += fmt.Sprintf(" (pid %d)", s.PID)
	}
	out += fmt.Sprintf(" %ds", s.Uptime)
	if s.State == "run" && s.Want == "down" {
		out += ", want down"
	}
	if s.State == "down" && s.Want == "up" {
		out += ", want up"
	}
	if s.Paused {
		out += ", paused"
	}
	return out
}

// Supervised reports whether a runsv runs for dir: like sv, it opens supervise/ok for
// writing without blocking, which only succeeds while runsv holds the FIFO open.
func Supervised(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, "supervise", "ok"), os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// Locked reports whether supervise/lock of dir is held, i.e. a runsv (possibly still
// shutting down) owns the directory. A missing lock file means no runsv ever ran there.
func Locked(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, "supervise", "lock"), os.O_RDONLY, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// ReadStatus reads dir/supervise/status (runsv's 20-byte binary record).
func ReadStatus(dir string) (Status, error) {
	if !Supervised(dir) {
		return Status{}, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "supervise", "status"))
	if err != nil {
		return Status{}, fmt.Errorf("cannot read status of %s: %w", dir, err)
	}
	if len(b) < 20 {
		return Status{}, fmt.Errorf("cannot read status of %s: supervise/status has %d bytes, want 20", dir, len(b))
	}
	st := Status{Supervised: true}
	sec := binary.BigEndian.Uint64(b[0:8])
	if sec >= taiOffset {
		st.Since = time.Unix(int64(sec-taiOffset), int64(binary.BigEndian.Uint32(b[8:12])))
		st.Uptime = int64(time.Since(st.Since) / time.Second)
		if st.Uptime < 0 {
			st.Uptime = 0
		}
	}
	st.PID = int(binary.LittleEndian.Uint32(b[12:16]))
	st.Paused = b[16] != 0
	switch b[17] {
	case 'u':
		st.Want = "up"
	case 'd':
		st.Want = "down"
	}
	switch b[19] {
	case 0:
		st.State = "down"
	case 1:
		st.State = "run"
	case 2:
		st.State = "finish"
	}
	return st, nil
}

// Sv runs `sv [-w WAIT] CMD DIR...` and returns its output. With wait > 0, sv waits up to
// wait for the command to take effect (and runs ./check for up/restart).
func Sv(ctx context.Context, wait time.Duration, cmd string, dirs ...string) (string, error) {
	args := []string{}
	if wait > 0 {
		args = append(args, "-w", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	}
	args = append(args, cmd)
	args = append(args, dirs...)
	c := exec.CommandContext(ctx, "sv", args...)
	out, err := c.CombinedOutput()
	text := strings.TrimSpace(string(out))
	if err != nil {
		return text, fmt.Errorf("cannot sv %s %s: %w: %s", cmd, strings.Join(dirs, " "), err, text)
	}
	return text, nil
}

// ErrTimeout is returned by the Wait functions when the deadline passes.
var ErrTimeout = errors.New("timed out")

// WaitSupervised waits until a runsv supervises dir.
func WaitSupervised(ctx context.Context, dir string, timeout time.Duration) error {
	return poll(ctx, timeout, func() bool { return Supervised(dir) })
}

// WaitWant waits until runsv has taken a command that sets what dir is wanted at, "up" or
// "down". sv only writes the command into supervise/control, which runsv reads when it is
// not busy: it blocks while control/t runs and sleeps a second after a run or finish that
// lasted under one. A later sv command can race a command still queued there: sv up sends
// nothing when the status still says "want up", and so is lost behind a queued down; sv -w
// down is satisfied by a status that still says down, before a queued up starts the service.
func WaitWant(ctx context.Context, dir, want string, timeout time.Duration) error {
	return poll(ctx, timeout, func() bool {
		st, err := ReadStatus(dir)
		return err == nil && st.Want == want
	})
}

// WaitUnlocked waits until no runsv holds dir/supervise/lock any more.
func WaitUnlocked(ctx context.Context, dir string, timeout time.Duration) error {
	return poll(ctx, timeout, func() bool { return !Locked(dir) })
}

func poll(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return ErrTimeout
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
