// Package safefs holds rundock's file primitives: writes that are either fully there or not
// at all, directories built hidden and renamed into place, and walks that never follow a
// symlink rundock did not create. Every package that writes to sv_dir, service_dir or an
// nginx include uses these, so the guarantees hold in one place.
package safefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rundock/rundock/internal/tree"
)

// Errors, for errors.Is.
var (
	// ErrSymlink: a path rundock would write through is a symlink it did not create.
	ErrSymlink = errors.New("symlink inside a managed tree")
	// ErrInTheWay: something that is not a directory stands where one is needed.
	ErrInTheWay = errors.New("path not managed by rundock")
)

// WriteFile replaces path with data and mode atomically: a temp file in the same
// directory is written, fsynced, chmodded and renamed over path, then the directory is
// fsynced. A symlink at path is replaced, never followed. The temp name starts with '.'
// and ends in ".tmp", so neither runsvdir nor an nginx `include dir/*.conf` reads it.
func WriteFile(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("cannot create a temp file next to %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := writeSync(f, data, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot replace %s: %w", path, err)
	}
	SyncDir(dir)
	return nil
}

// writeSync writes data to f, sets mode, fsyncs and closes it.
func writeSync(f *os.File, data []byte, mode fs.FileMode) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", f.Name(), err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("cannot chmod %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot close %s: %w", f.Name(), err)
	}
	return nil
}

// createFile writes a new file that must not exist yet (O_EXCL, no symlink followed).
func createFile(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", path, err)
	}
	return writeSync(f, data, mode)
}

// SyncDir fsyncs a directory so a rename in it survives a crash. Best effort: some
// filesystems refuse fsync on directories, and the rename itself has already happened.
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// ReadFile reads path without following a symlink at its last element. It calls the
// system directly (open, fstat, read until the end, close) into a buffer of the file's
// size: apply reads many files on each run, and os.File's poller registration and
// io.ReadAll's small first reads cost several more system calls and copies per file.
func ReadFile(path string) ([]byte, error) {
	fd, err := ignoringEINTR(func() (int, error) {
		return syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, &fs.PathError{Op: "open", Path: path, Err: err})
	}
	defer syscall.Close(fd)
	size := 4096
	var st syscall.Stat_t
	if syscall.Fstat(fd, &st) == nil && st.Size > 0 && st.Size < 1<<30 {
		size = int(st.Size) + 1 // one read to the end, one to see it
	}
	b := make([]byte, 0, size)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := ignoringEINTR(func() (int, error) { return syscall.Read(fd, b[len(b):cap(b)]) })
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", path, &fs.PathError{Op: "read", Path: path, Err: err})
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

// ignoringEINTR calls f again while it is interrupted by a signal.
func ignoringEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != syscall.EINTR {
			return n, err
		}
	}
}

// MkdirAll creates dir and its parents below root (which must exist), refusing a symlink
// or a file anywhere on the way: a planted link never redirects a write.
func MkdirAll(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("cannot create %s: it is outside %s", dir, root)
	}
	cur := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if part == "." || part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(cur, 0o755); err != nil {
				return fmt.Errorf("cannot create %s: %w", cur, err)
			}
		case err != nil:
			return fmt.Errorf("cannot inspect %s: %w", cur, err)
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("cannot write under %s: %w: remove it (rm %s) and run again", cur, ErrSymlink, cur)
		case !fi.IsDir():
			return fmt.Errorf("cannot create %s: %w: a file is in the way; remove it and run again", cur, ErrInTheWay)
		}
	}
	return nil
}

// EnsureDir creates dir (and its parents) unless it exists, and refuses it when it is a
// symlink or not a directory.
func EnsureDir(dir string) error {
	fi, err := os.Lstat(dir)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("cannot use %s: %w: replace it with a real directory", dir, ErrSymlink)
	case err == nil && !fi.IsDir():
		return fmt.Errorf("cannot use %s: %w: it is not a directory", dir, ErrInTheWay)
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("cannot inspect %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", dir, err)
	}
	return nil
}

// CreateDir builds files in a hidden temp directory inside parent and renames it to
// parent/name, so a half-written directory is never visible (runsvdir starts a service
// the moment its directory appears). It fails when parent/name exists, or when a file's
// path would leave the new directory.
func CreateDir(parent, name string, files []tree.File) error {
	for _, f := range files {
		if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
			return fmt.Errorf("cannot create %s: the file %q would be outside it", filepath.Join(parent, name), f.Path)
		}
	}
	tmp, err := os.MkdirTemp(parent, "."+name+".new-")
	if err != nil {
		return fmt.Errorf("cannot create a temp dir in %s: %w", parent, err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("cannot chmod %s: %w", tmp, err)
	}
	for _, f := range files {
		p := filepath.Join(tmp, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("cannot create %s: %w", filepath.Dir(p), err)
		}
		if err := createFile(p, f.Data, f.Mode.Perm()); err != nil {
			return err
		}
	}
	SyncDir(tmp)
	dst := filepath.Join(parent, name)
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("cannot move %s into place: %w", dst, err)
	}
	ok = true
	SyncDir(parent)
	return nil
}

// RemoveDir makes parent/name disappear at once (renamed to a hidden name) and then
// deletes it. A missing directory is no error.
func RemoveDir(parent, name string) error {
	dst := filepath.Join(parent, name)
	tmp := filepath.Join(parent, fmt.Sprintf(".%s.removing-%d", name, os.Getpid()))
	os.RemoveAll(tmp)
	if err := os.Rename(dst, tmp); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("cannot remove %s: %w", dst, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("cannot remove %s: %w", tmp, err)
	}
	return nil
}

// Symlink points link at target atomically: a symlink under a temp name renamed over link.
func Symlink(target, link string) error {
	tmp := filepath.Join(filepath.Dir(link), fmt.Sprintf(".%s.rundock-%d", filepath.Base(link), os.Getpid()))
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("cannot create link %s: %w", link, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot create link %s: %w", link, err)
	}
	return nil
}

// Exists reports whether p exists, without following a symlink at p.
func Exists(p string) (bool, error) {
	_, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}
