package upstreams

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// ErrCheck is returned when nginx rejects the configuration with a newly rendered file in
// place; the previous file has been put back.
var ErrCheck = errors.New("nginx rejected the new upstreams")

// Default commands, run with sh -c.
const (
	DefaultCheckCmd  = "nginx -t -q"
	DefaultReloadCmd = "nginx -s reload"
)

// Nginx installs rendered upstream files: stage next to Output, swap in, check the whole
// nginx configuration, swap the previous file back when the check fails, reload when it
// passes. nginx itself reads Output only when it starts or reloads, and a reload with a
// bad file leaves the running workers alone, so the short time a checked-but-unproven file
// sits at Output cannot break traffic.
type Nginx struct {
	Output    string        // the file the nginx configuration includes
	CheckCmd  string        // validates the full configuration; DefaultCheckCmd when empty
	ReloadCmd string        // makes nginx read it; DefaultReloadCmd when empty
	Timeout   time.Duration // per command; 30s when 0

	reloads     atomic.Int64
	needsReload bool // the last reload failed: reload even if the file did not change
}

// Reloads counts the successful reloads, for tests and logs.
func (n *Nginx) Reloads() int64 { return n.reloads.Load() }

// Current returns Output's content; nil when it does not exist.
func (n *Nginx) Current() ([]byte, error) {
	b, err := os.ReadFile(n.Output)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", n.Output, err)
	}
	return b, nil
}

// Apply installs content unless Output already holds exactly these bytes (and no reload is
// pending). changed reports whether nginx was reloaded with new content. An ErrCheck leaves
// the previous file in place.
func (n *Nginx) Apply(ctx context.Context, content []byte) (changed bool, err error) {
	fi, err := os.Lstat(n.Output)
	existed := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("cannot stat %s: %w", n.Output, err)
	}
	if existed && !fi.Mode().IsRegular() {
		return false, fmt.Errorf("cannot write %s: it is not a regular file (a symlink?): point --output at the file nginx includes", n.Output)
	}
	mode := fs.FileMode(0o644)
	var old []byte
	if existed {
		mode = fi.Mode().Perm()
		if old, err = os.ReadFile(n.Output); err != nil {
			return false, fmt.Errorf("cannot read %s: %w", n.Output, err)
		}
		if bytes.Equal(old, content) {
			if !n.needsReload {
				return false, nil
			}
			return false, n.reload(ctx)
		}
	}
	if err := writeAtomic(n.Output, content, mode); err != nil {
		return false, err
	}
	if out, err := n.run(ctx, n.CheckCmd, DefaultCheckCmd); err != nil {
		var rerr error
		if existed {
			rerr = writeAtomic(n.Output, old, mode)
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

func (n *Nginx) reload(ctx context.Context) error {
	if out, err := n.run(ctx, n.ReloadCmd, DefaultReloadCmd); err != nil {
		n.needsReload = true
		return fmt.Errorf("cannot reload nginx: %v: %s", err, out)
	}
	n.needsReload = false
	n.reloads.Add(1)
	return nil
}

func (n *Nginx) run(ctx context.Context, cmd, def string) (string, error) {
	if cmd == "" {
		cmd = def
	}
	t := n.Timeout
	if t == 0 {
		t = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", cmd).CombinedOutput()
	if err != nil {
		return strings.TrimSpace(string(out)), fmt.Errorf("%s: %w", cmd, err)
	}
	return "", nil
}

// writeAtomic writes a temp file in path's directory, fsyncs, chmods and renames it over
// path, then fsyncs the directory. The temp name starts with '.' and ends in '.tmp' so an
// `include dir/*.conf` never reads it.
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("cannot create a temp file next to %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot close %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("cannot chmod %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot rename %s to %s: %w", tmp, path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
