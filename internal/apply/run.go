package apply

import (
	"context"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/tree"
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
	// batch is the run's services with their trees; ahead holds, for those in svDir that
	// install a tree, the comparison of their tree with the disk, read on every CPU once
	// the lock is taken. Only a service's own apply writes its tree, and the lock keeps
	// other runs out, so each stays true until that service's turn.
	batch []planItem
	ahead map[string]aheadDiff // tree root -> its comparison
	// idx is sv_dir's tree index; touched the trees this run's plans acted on, which
	// close compares again (their stats changed) to record them before it writes idx.
	idx     *treeIndex
	touched []planItem
	// indexes are the indexes Services read before taking any lock, by sv_dir: enter
	// takes one as idx while its file is unchanged.
	indexes map[string]*treeIndex
}

// planItem is one service of a run and its tree, rendered or a stub; spec is the service's
// specKey when Services rendered the tree ("" when the caller gave it).
type planItem struct {
	svc  spec.Service
	tree tree.Tree
	spec string
}

// installs reports whether it's plan writes its tree (present or enabled, with files).
func (it planItem) installs() bool {
	return len(it.tree.Files) > 0 && (it.svc.State == spec.StatePresent || it.svc.State == spec.StateEnabled)
}

// aheadDiff is a comparison read ahead, with the tree compared.
type aheadDiff struct {
	d    treeDiff
	tree tree.Tree
	err  error
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
	if x := r.indexes[svDir]; x != nil && x.current() {
		r.idx = x
	} else {
		r.idx = loadIndex(svDir)
	}
	delete(r.indexes, svDir) // a second visit reads it again
	if r.unlock != nil {
		r.idx.now = fsNow(svDir) // before any comparison reads
	}
	r.readAhead()
	return nil
}

// readAhead compares the trees of the batch's services in the sv_dir entered with the
// disk, on every CPU.
func (r *runState) readAhead() {
	var roots []string
	var items []planItem
	for _, it := range r.batch {
		if filepath.Clean(it.svc.SvDir) != r.svDir || !it.installs() {
			continue
		}
		roots = append(roots, filepath.Join(it.svc.SvDir, it.tree.Dir))
		items = append(items, it)
	}
	out := make([]aheadDiff, len(roots))
	parallel(len(roots), func(i int) {
		out[i].d, out[i].tree, out[i].err = r.idx.compare(roots[i], items[i])
	})
	r.ahead = make(map[string]aheadDiff, len(roots))
	// The record index the plans will ask for: a tree whose announcer/run the comparison
	// found as rendered has the rendered record key, and needs no read.
	known := map[string]string{}
	for i, root := range roots {
		r.ahead[root] = out[i]
		if d := out[i].d; out[i].err == nil && d.exists && !slices.ContainsFunc(d.changes, func(c fileChange) bool { return c.path == announcerRun }) {
			known[filepath.Base(root)] = treeKey(out[i].tree)
		}
	}
	if len(roots) > 0 {
		r.keys = readRecordIndex(r.svDir, known)
	}
}

// compare compares it's tree with the disk at root (read ahead when it was), and returns
// the tree compared: it's, or when that was a stub the disk no longer matches, the
// service rendered.
func (r *runState) compare(root string, it planItem) (treeDiff, tree.Tree, error) {
	if a, ok := r.ahead[root]; ok {
		delete(r.ahead, root)
		return a.d, a.tree, a.err
	}
	return r.idx.compare(root, it)
}

// locked reports whether r holds svDir's lock.
func (r *runState) locked(svDir string) bool {
	return r.unlock != nil && r.svDir == filepath.Clean(svDir)
}

// records is the record index of the sv_dir entered, read on first use.
func (r *runState) records() *recordIndex {
	if r.keys == nil {
		r.keys = readRecordIndex(r.svDir, nil)
	}
	return r.keys
}

// applied tells r that the tree of it in the sv_dir entered may have changed on disk.
func (r *runState) applied(it planItem) {
	dir := it.tree.Dir
	if r.keys != nil {
		r.keys.reread(dir)
	}
	if it.installs() {
		r.touched = append(r.touched, it) // close compares it again: its stats tell
	} else {
		r.idx.forget(dir)
	}
}

// close records the trees this run changed in the index and writes it, releases the lock
// and forgets what was read under it.
func (r *runState) close() {
	if r.unlock != nil && r.idx != nil {
		// Compared again now, as late as they can be: a tree written less than
		// racyMargin ago is not recorded.
		r.idx.now = fsNow(r.svDir)
		parallel(len(r.touched), func(i int) {
			it := r.touched[i]
			r.idx.compare(filepath.Join(it.svc.SvDir, it.tree.Dir), it)
		})
		r.idx.save() // best effort: without it the next run reads the trees
	}
	if r.unlock != nil {
		r.unlock()
	}
	r.svDir, r.unlock, r.keys, r.ahead, r.idx, r.touched = "", nil, nil, nil, nil, nil
}

// parallel calls f(0) to f(n-1) on GOMAXPROCS workers and returns when all have returned.
func parallel(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	wg.Wait()
}
