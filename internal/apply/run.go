package apply

import (
	"context"
	"path/filepath"
)

// runState is what the services of one Services call share: the lock of the sv_dir they are
// applied in, held from one service to the next while they share that sv_dir, and what
// was read of that sv_dir once under it (the record keys of its trees). Only one lock is
// held at a time, so two runs never wait for each other in a circle; when the next
// service is in another sv_dir, the lock goes and with it what was read under it.
type runState struct {
	svDir  string // the sv_dir locked, or read in check mode; "" for none yet
	unlock func() // nil when svDir is not locked
	keys   *recordIndex
}

// enter makes r the state for a service in svDir: it releases the lock of another sv_dir
// and, with take, takes svDir's (waiting for another run) unless it holds it already.
func (r *runState) enter(ctx context.Context, svDir string, take bool) error {
	svDir = filepath.Clean(svDir)
	if r.svDir == svDir && (r.unlock != nil || !take) {
		return nil
	}
	r.close()
	if take {
		unlock, err := lock(ctx, svDir)
		if err != nil {
			return err
		}
		r.unlock = unlock
	}
	r.svDir = svDir
	return nil
}

// locked reports whether r holds svDir's lock.
func (r *runState) locked(svDir string) bool {
	return r.unlock != nil && r.svDir == filepath.Clean(svDir)
}

// records is the record index of the sv_dir entered, read on first use.
func (r *runState) records() *recordIndex {
	if r.keys == nil {
		r.keys = readRecordIndex(r.svDir)
	}
	return r.keys
}

// applied tells r that the tree dir in the sv_dir entered may have changed on disk.
func (r *runState) applied(dir string) {
	if r.keys != nil {
		r.keys.reread(dir)
	}
}

// close releases the lock and forgets what was read under it.
func (r *runState) close() {
	if r.unlock != nil {
		r.unlock()
	}
	r.svDir, r.unlock, r.keys = "", nil, nil
}
