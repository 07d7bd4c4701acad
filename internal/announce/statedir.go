package announce

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The files of the state directory (Config.StateDir) the announcer obeys. rundock writes
// them (`rundock maint`, the container's control/t); the announcer only reads them.
const (
	// MaintenanceFile withholds the record while it exists; its first line is the reason.
	MaintenanceFile = "maintenance"
	// DrainFile holds one container ID: while the followed container has that ID, the
	// record is withheld. A new container (another ID) is announced as usual, so a stale
	// drain file is harmless.
	DrainFile = "drain"
)

// holdPoll is how often the announcer stats the state files: a SIGUSR1 that went missing
// delays a maintenance or drain by at most this long.
const holdPoll = time.Second

// maxReason bounds the maintenance reason kept for the log.
const maxReason = 200

// hold is what the state directory asks for.
type hold struct {
	maintenance bool
	reason      string // the maintenance file's first line
	drain       string // the container ID the drain file names, lowercased; "" for none
	badDrain    string // the drain file's content when it is not a container ID (ignored)
}

// fileSig tells a file's versions apart without reading it: rundock replaces the files
// by rename, which changes the inode, and a rewrite in place changes mtime or size.
type fileSig struct {
	exists bool
	ino    uint64
	size   int64
	mtime  int64 // ns
}

// stateDir reads the state files, re-reading them only when a stat shows a change (or
// when forced, on SIGUSR1).
type stateDir struct {
	dir  string
	sigs [2]fileSig
	cur  hold
	read bool
}

// poll returns the current hold and whether it may differ from the last one. A file
// that cannot be read (other than absent) is an error and leaves the last hold standing.
func (d *stateDir) poll(force bool) (hold, bool, error) {
	var sigs [2]fileSig
	for i, name := range []string{MaintenanceFile, DrainFile} {
		s, err := sigOf(filepath.Join(d.dir, name))
		if err != nil {
			return d.cur, false, err
		}
		sigs[i] = s
	}
	if d.read && !force && sigs == d.sigs {
		return d.cur, false, nil
	}
	h, err := readHold(d.dir)
	if err != nil {
		return d.cur, false, err
	}
	d.sigs, d.cur, d.read = sigs, h, true
	return h, true, nil
}

func sigOf(path string) (fileSig, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fileSig{}, nil // no state dir yet, or no such file: nothing held
	}
	if err != nil {
		return fileSig{}, err
	}
	s := fileSig{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s, nil
}

func readHold(dir string) (hold, error) {
	var h hold
	b, err := readOptional(filepath.Join(dir, MaintenanceFile))
	if err != nil {
		return hold{}, err
	}
	if b != nil {
		line, _, _ := strings.Cut(string(b), "\n")
		h.maintenance, h.reason = true, truncate(strings.TrimSpace(line), maxReason)
	}
	b, err = readOptional(filepath.Join(dir, DrainFile))
	if err != nil {
		return hold{}, err
	}
	if b != nil {
		id := strings.ToLower(strings.TrimSpace(string(b)))
		if isContainerID(id) {
			h.drain = id
		} else {
			h.badDrain = truncate(id, 80)
		}
	}
	return h, nil
}

// readOptional returns the file's content, nil when it does not exist.
func readOptional(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// isContainerID reports whether s is a full Docker container ID: 64 lowercase hex digits.
func isContainerID(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
