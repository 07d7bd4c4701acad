package apply

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/tree"
)

// recordKey is the record key named in a rendered announcer/run, "" without one.
func recordKey(data []byte) string {
	for line := range bytes.Lines(data) {
		if k, ok := bytes.CutPrefix(line, []byte(render.RecordKeyLine)); ok {
			return string(bytes.TrimRight(k, "\r\n"))
		}
	}
	return ""
}

// renderedKey is the record key named in the announcer/run of files, "" without one.
func renderedKey(files []tree.File) string {
	for _, f := range files {
		if f.Path == announcerRun {
			return recordKey(f.Data)
		}
	}
	return ""
}

// treeKey is the record key t's announcer/run names, "" without one.
func treeKey(t tree.Tree) string {
	if t.Stub {
		return t.RecordKey
	}
	return renderedKey(t.Files)
}

// recordIndex is the record key each tree in one sv_dir announces (its announcer/run's
// record line), read once per run instead of once per service applied.
type recordIndex struct {
	svDir string
	keys  map[string]string // tree dir (docker-NAME) -> record key; trees without one left out
}

// announcerRun is the announcer's run script inside a tree.
var announcerRun = path.Join(render.AnnouncerPath, "run")

// readRecordIndex reads the record keys of every tree in svDir, but takes those of known
// (tree dir -> key, "" for none) as given. A missing sv_dir has none.
func readRecordIndex(svDir string, known map[string]string) *recordIndex {
	x := &recordIndex{svDir: svDir, keys: map[string]string{}}
	entries, err := os.ReadDir(svDir)
	if err != nil {
		return x // no sv_dir yet: no other service
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), render.Dir("")) {
			continue
		}
		k, ok := known[e.Name()]
		switch {
		case !ok:
			x.reread(e.Name())
		case k != "":
			x.keys[e.Name()] = k
		}
	}
	return x
}

// reread reads the record key of the tree dir again, after an apply may have changed it.
func (x *recordIndex) reread(dir string) {
	delete(x.keys, dir)
	data, err := safefs.ReadFile(filepath.Join(x.svDir, dir, filepath.FromSlash(announcerRun)))
	if err != nil {
		return
	}
	if k := recordKey(data); k != "" {
		x.keys[dir] = k
	}
}

// sharedRecord refuses a tree whose announcer would write the record another service's
// tree in sv_dir already announces: the two announcers would take the key from each other,
// and stopping one would withdraw the other's instance. keys is sv_dir's record index.
func sharedRecord(keys *recordIndex, t tree.Tree) error {
	key := treeKey(t)
	if key == "" {
		return nil
	}
	var others []string
	for dir, k := range keys.keys {
		if k == key && dir != t.Dir {
			others = append(others, dir)
		}
	}
	if len(others) == 0 {
		return nil
	}
	other := slices.Min(others) // the first in sv_dir's order, as a listing finds it
	return fmt.Errorf("cannot announce %s: the service in %s already announces %s on this host; give one of them another instance or announce_name: %w",
		strings.TrimPrefix(t.Dir, render.Dir("")), filepath.Join(keys.svDir, other), key, ErrNotOurs)
}
