// Package nginx installs a generated file that nginx includes the way confd does, but
// safely: stage it, check the whole nginx configuration with it in place, put the previous
// file back when the check fails, and reload nginx only when the check passes.
package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rundock/rundock/internal/safefs"
)

// ErrCheck is returned when nginx rejects the configuration with a newly rendered file in
// place; the previous file has been put back.
var ErrCheck = errors.New("nginx rejected the new upstreams")

// DefaultTimeout bounds each check and reload command when Installer.Timeout is 0.
const DefaultTimeout = 30 * time.Second

// Default commands, run with sh -c.
const (
	DefaultCheckCmd  = "nginx -t -q"
	DefaultReloadCmd = "nginx -s reload"
)

// Installer installs rendered files at Output: stage next to Output, swap in, check the
// whole nginx configuration, swap the previous file back when the check fails, reload when
// it passes. nginx itself reads Output only when it starts or reloads, and a reload with a
// bad file leaves the running workers alone, so the short time a checked-but-unproven file
// sits at Output cannot break traffic.
type Installer struct {
	Output    string        // the file the nginx configuration includes
	CheckCmd  string        // validates the full configuration; DefaultCheckCmd when empty
	ReloadCmd string        // makes nginx read it; DefaultReloadCmd when empty
	Timeout   time.Duration // per command; DefaultTimeout when 0

	reloads     atomic.Int64
	needsReload bool // the last reload failed: reload even if the file did not change
}

// Reloads counts the successful reloads, for tests and logs.
func (n *Installer) Reloads() int64 { return n.reloads.Load() }

// Current returns Output's content; nil when it does not exist.
func (n *Installer) Current() ([]byte, error) {
	_, b, err := n.current()
	return b, err
}

// current returns Output's mode and content, a nil mode when it does not exist. Output
// must be a regular file: Apply would replace a symlink there, not write through it.
func (n *Installer) current() (*fs.FileMode, []byte, error) {
	fi, err := os.Lstat(n.Output)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cannot stat %s: %w", n.Output, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("cannot write %s: it is not a regular file (a symlink?): point --output at the file nginx includes", n.Output)
	}
	b, err := safefs.ReadFile(n.Output)
	if err != nil {
		return nil, nil, err
	}
	mode := fi.Mode().Perm()
	return &mode, b, nil
}

// Apply installs content unless Output already holds exactly these bytes (and no reload is
// pending). changed reports whether nginx was reloaded with new content. An ErrCheck leaves
// the previous file in place.
func (n *Installer) Apply(ctx context.Context, content []byte) (changed bool, err error) {
	oldMode, old, err := n.current()
	if err != nil {
		return false, err
	}
	existed, mode := oldMode != nil, fs.FileMode(0o644)
	if existed {
		mode = *oldMode
		if bytes.Equal(old, content) {
			if !n.needsReload {
				return false, nil
			}
			return false, n.reload(ctx)
		}
	}
	if err := safefs.WriteFile(n.Output, content, mode); err != nil {
		return false, err
	}
	if out, err := n.run(ctx, n.CheckCmd, DefaultCheckCmd); err != nil {
		var rerr error
		if existed {
			rerr = safefs.WriteFile(n.Output, old, mode)
		} else {
			rerr = os.Remove(n.Output)
		}
		if rerr != nil {
			return false, fmt.Errorf("%w: %v: %s; and cannot put the previous %s back: %v", ErrCheck, err, out, n.Output, rerr)
		}
		return false, fmt.Errorf("%w (%s kept the previous file): %v: %s", ErrCheck, n.Output, err, out)
	}
	return true, n.reload(ctx)
}

func (n *Installer) reload(ctx context.Context) error {
	if out, err := n.run(ctx, n.ReloadCmd, DefaultReloadCmd); err != nil {
		n.needsReload = true
		return fmt.Errorf("cannot reload nginx: %v: %s", err, out)
	}
	n.needsReload = false
	n.reloads.Add(1)
	return nil
}

func (n *Installer) run(ctx context.Context, cmd, def string) (string, error) {
	if cmd == "" {
		cmd = def
	}
	t := n.Timeout
	if t == 0 {
		t = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", cmd).CombinedOutput()
	if err != nil {
		return strings.TrimSpace(string(out)), fmt.Errorf("%s: %w", cmd, err)
	}
	return "", nil
}
