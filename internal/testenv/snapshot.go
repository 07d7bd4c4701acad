package testenv

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Snapshot describes everything under root (a directory or a single file), one line a
// path in walk order: the path, its mode, and the SHA-256 of a regular file's content or a
// symbolic link's target. Directories named in skip (runsv's "supervise", which runsv
// rewrites on its own) are left out with all they hold. Two snapshots are equal when
// nothing under root was created, removed, changed, chmodded or relinked in between.
func Snapshot(root string, skip ...string) string {
	var b strings.Builder
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if slices.Contains(skip, d.Name()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed while walking
		}
		b.WriteString(p + " " + info.Mode().String())
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			b.WriteString(" -> " + target)
		case d.Type().IsRegular():
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}

// Listing describes which of paths exist and, for a directory, the names it holds (one
// level, not their content): for checking that a run wrote nothing into a machine's system
// directories, where Snapshot would also see what runs there change on their own.
func Listing(paths ...string) string {
	var b strings.Builder
	for _, p := range paths {
		entries, err := os.ReadDir(p)
		switch {
		case err == nil:
			b.WriteString(p + ":")
			for _, e := range entries {
				b.WriteString(" " + e.Name())
			}
		case os.IsNotExist(err):
			b.WriteString(p + ": absent")
		default:
			if _, err := os.Stat(p); err == nil {
				b.WriteString(p + ": file")
			} else {
				b.WriteString(p + ": " + err.Error())
			}
		}
		b.WriteString("; ")
	}
	return b.String()
}
