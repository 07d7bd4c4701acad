package apply

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/tree"
)

// recordKey is the record key named in a rendered announcer/run, "" without one.
func recordKey(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, ok := strings.CutPrefix(sc.Text(), render.RecordKeyLine); ok {
			return k
		}
	}
	return ""
}

// sharedRecord refuses a tree whose announcer would write the record another service's
// tree in sv_dir already announces: the two announcers would take the key from each other,
// and stopping one would withdraw the other's instance.
func sharedRecord(svDir string, t tree.Tree) error {
	run := path.Join(render.AnnouncerPath, "run")
	var key string
	for _, f := range t.Files {
		if f.Path == run {
			key = recordKey(f.Data)
		}
	}
	if key == "" {
		return nil
	}
	entries, err := os.ReadDir(svDir)
	if err != nil {
		return nil // no sv_dir yet: no other service
	}
	for _, e := range entries {
		if e.Name() == t.Dir || !e.IsDir() || !strings.HasPrefix(e.Name(), render.Dir("")) {
			continue
		}
		data, err := safefs.ReadFile(filepath.Join(svDir, e.Name(), filepath.FromSlash(run)))
		if err != nil {
			continue
		}
		if recordKey(data) == key {
			return fmt.Errorf("cannot announce %s: the service in %s already announces %s on this host; give one of them another instance or announce_name: %w",
				strings.TrimPrefix(t.Dir, render.Dir("")), filepath.Join(svDir, e.Name()), key, ErrNotOurs)
		}
	}
	return nil
}
