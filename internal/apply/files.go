package apply

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/tree"
)

// fileChange is one difference between the rendered tree and the disk.
type fileChange struct {
	path    string // slash path relative to the tree
	data    []byte // nil for removal
	mode    fs.FileMode
	remove  bool
	before  []byte
	modeWas fs.FileMode
	existed bool
}

// treeDiff is the comparison of a rendered tree with the disk.
type treeDiff struct {
	exists  bool // the tree's directory exists
	changes []fileChange
	// strayDirs: a directory on disk holds no rendered file (a PruneDirs has work).
	strayDirs bool
}

// compareTree compares files with the tree at root, byte for byte and by mode. It refuses
// symlinks anywhere in the tree except runsv's supervise/ entries, which it never reads.
// With files nil, every file on disk is a removal.
func compareTree(root string, files []tree.File) (treeDiff, error) {
	return compareTreeSigs(root, files, nil)
}

// compareTreeSigs is compareTree that also fills sigs, when not nil, with the stat of the
// root ("."), of each directory and of each file, each taken before the directory was
// listed or the file read.
func compareTreeSigs(root string, files []tree.File, sigs map[string]statSig) (treeDiff, error) {
	fi, err := os.Lstat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		var d treeDiff
		for _, f := range files {
			d.changes = append(d.changes, fileChange{path: f.Path, data: f.Data, mode: f.Mode.Perm()})
		}
		return d, nil
	case err != nil:
		return treeDiff{}, fmt.Errorf("cannot inspect %s: %w", root, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return treeDiff{}, fmt.Errorf("cannot manage %s: %w: it is a symlink rundock did not create; remove it and run again", root, ErrSymlink)
	case !fi.IsDir():
		return treeDiff{}, fmt.Errorf("cannot manage %s: %w: it is not a directory; remove it and run again", root, ErrNotOurs)
	}
	if sg, ok := sigOf(fi); ok && sigs != nil {
		sigs["."] = sg
	} else {
		sigs = nil
	}
	onDisk, err := scan(root, sigs)
	if err != nil {
		return treeDiff{exists: true}, err
	}
	d := treeDiff{exists: true}
	rendered := map[string]bool{}
	for _, f := range files {
		rendered[f.Path] = true
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			rendered[dir+"/"] = true
			if m, ok := onDisk[dir]; ok && m != fs.ModeDir {
				return d, fmt.Errorf("cannot manage %s: %w: %s is a file where rundock needs a directory; remove it and run again", root, ErrNotOurs, filepath.Join(root, dir))
			}
		}
		if _, isDir := onDisk[f.Path+"/"]; isDir {
			return d, fmt.Errorf("cannot manage %s: %w: %s is a directory where rundock writes a file; remove it and run again", root, ErrNotOurs, filepath.Join(root, f.Path))
		}
		mode, ok := onDisk[f.Path]
		if !ok {
			d.changes = append(d.changes, fileChange{path: f.Path, data: f.Data, mode: f.Mode.Perm()})
			continue
		}
		before, err := safefs.ReadFile(filepath.Join(root, filepath.FromSlash(f.Path)))
		if err != nil {
			return d, err
		}
		if string(before) == string(f.Data) && mode == f.Mode.Perm() {
			continue
		}
		d.changes = append(d.changes, fileChange{path: f.Path, data: f.Data, mode: f.Mode.Perm(), before: before, modeWas: mode, existed: true})
	}
	var stale []string
	for p, m := range onDisk {
		switch {
		case m == fs.ModeDir && !rendered[p]:
			d.strayDirs = true
		case m != fs.ModeDir && !rendered[p]:
			stale = append(stale, p)
		}
	}
	slices.Sort(stale)
	for _, p := range stale {
		before, err := safefs.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		if err != nil {
			return d, err
		}
		d.changes = append(d.changes, fileChange{path: p, remove: true, before: before, modeWas: onDisk[p], existed: true})
	}
	return d, nil
}

// scanTree lists the files (path -> permission bits) and directories (path+"/" ->
// ModeDir) under root, skipping supervise/ and refusing symlinks and special files.
func scanTree(root string) (map[string]fs.FileMode, error) {
	return scan(root, nil)
}

// scan is scanTree that also fills sigs, when not nil, with each path's stat (directories
// without their trailing slash), taken before the directory is listed or the file read.
func scan(root string, sigs map[string]statSig) (map[string]fs.FileMode, error) {
	onDisk := map[string]fs.FileMode{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.Name() == "supervise" || rel == render.StatePath {
			// runsv's, and rundock's state: not part of the rendered tree.
			return fs.SkipDir
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return fmt.Errorf("cannot manage %s: %w: %s is a symlink rundock did not create; remove it (rm %s) and run again", root, ErrSymlink, p, p)
		}
		if d.IsDir() {
			onDisk[rel+"/"] = fs.ModeDir
			if sigs != nil {
				// WalkDir lists a directory after this returns.
				info, err := d.Info()
				if err != nil {
					return err
				}
				sigs[rel], _ = sigOf(info)
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("cannot manage %s: %w: %s is not a regular file; remove it and run again", root, ErrNotOurs, p)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		onDisk[rel] = info.Mode().Perm()
		if sigs != nil {
			sigs[rel], _ = sigOf(info)
		}
		return nil
	})
	return onDisk, err
}

func modeString(m fs.FileMode) string { return fmt.Sprintf("%04o", uint32(m.Perm())) }

// diffs turns file changes into the before/after pairs of Result.Diff.
func diffs(dir string, changes []fileChange) []FileDiff {
	var out []FileDiff
	for _, c := range changes {
		d := FileDiff{Path: path.Join(dir, c.path), Before: string(c.before)}
		if c.existed {
			d.BeforeMode = modeString(c.modeWas)
		}
		if !c.remove {
			d.After = string(c.data)
			d.AfterMode = modeString(c.mode)
		}
		if c.path == render.EnvPath {
			d.Before, d.After = redactEnv(d.Before, d.After)
		}
		out = append(out, d)
	}
	return out
}

// redactEnv shows an env file's keys and which values changed, never a value: diffs go to
// Ansible's output, the CLI and CI logs.
func redactEnv(before, after string) (string, string) {
	parse := func(s string) (keys []string, vals map[string]string) {
		vals = map[string]string{}
		for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				keys = append(keys, k)
				vals[k] = v
			}
		}
		return keys, vals
	}
	bk, bv := parse(before)
	ak, av := parse(after)
	var b, a strings.Builder
	for _, k := range bk {
		b.WriteString(k + "=(secret)\n")
	}
	for _, k := range ak {
		if v, ok := bv[k]; ok && v != av[k] {
			a.WriteString(k + "=(secret, changed)\n")
		} else {
			a.WriteString(k + "=(secret)\n")
		}
	}
	return b.String(), a.String()
}
