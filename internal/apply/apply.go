// Package apply puts a rendered service tree on disk and into runit: it compares the tree
// with what is on disk, writes only what differs (atomically), links, restarts, stops and
// removes services, and reports what changed. The CLI and the Ansible module share it.
package apply

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/runit"
	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/tree"
)

// Errors apply returns, for errors.Is.
var (
	// ErrSymlink: a file or directory inside a service tree is a symlink rundock did not
	// create; rundock never writes through it.
	ErrSymlink = errors.New("symlink inside service tree")
	// ErrNotOurs: something rundock did not create is in the way (e.g. a directory where
	// the service link goes).
	ErrNotOurs = errors.New("path not managed by rundock")
	// ErrNotPickedUp: no runsv started for a linked service in time.
	ErrNotPickedUp = errors.New("service not picked up by runsvdir")
)

// LockName is the per-host lock file in sv_dir that serializes concurrent runs.
const LockName = ".rundock.lock"

// pickupTimeout bounds the wait for runsvdir to start a runsv for a new link: it scans
// every 5 s at most, and runsv needs a moment to create supervise/.
const pickupTimeout = 15 * time.Second

// Options change how Apply works.
type Options struct {
	// CheckMode computes and reports what would change, touching nothing.
	CheckMode bool
	// Diff fills Result.Diff with each changed file's before and after.
	Diff bool
	// Containers is the container engine; nil means Docker.
	Containers Containers
	// Logger receives one line per action; nil discards.
	Logger *slog.Logger
}

// Status is the supervision and container state of a service.
type Status struct {
	Service   runit.Status  `json:"service"`
	Log       *runit.Status `json:"log,omitempty"`
	Announcer *runit.Status `json:"announcer,omitempty"`
	// Container is the Docker state ("running", "running,healthy", "exited"), "" if none.
	Container string `json:"container"`
	// Linked is true when the service is linked into service_dir.
	Linked bool `json:"linked"`
	// Installed is true when the tree exists in sv_dir.
	Installed bool `json:"installed"`
}

// Result is the outcome of Apply.
type Result struct {
	Changed  bool       `json:"changed"`
	Name     string     `json:"name"`
	State    string     `json:"state"`
	Status   Status     `json:"status"`
	Diff     []FileDiff `json:"diff,omitempty"`
	Msg      string     `json:"msg"`
	Warnings []string   `json:"warnings,omitempty"`
}

// TreeDir is the directory name under sv_dir of service name.
func TreeDir(name string) string { return "docker-" + name }

// Render renders svc's tree. Disabled and absent need only the name, so nothing is rendered
// for them unless an image was given.
func Render(svc spec.Service) (tree.Tree, error) {
	if (svc.State == spec.StateDisabled || svc.State == spec.StateAbsent) && svc.Image == "" {
		return tree.Tree{Dir: TreeDir(svc.Name)}, nil
	}
	t, err := render.Render(svc)
	if err != nil {
		return t, fmt.Errorf("cannot render %s: %w", svc.Name, err)
	}
	return t, nil
}

// Apply brings svc to its state on this host. t is svc rendered (ignored for disabled
// and absent, which need only the name). Bad input changes nothing on disk.
func Apply(ctx context.Context, svc spec.Service, t tree.Tree, opt Options) (Result, error) {
	a := &applier{svc: svc, tree: t, opt: opt, log: opt.Logger, c: opt.Containers}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.c == nil {
		a.c = DockerContainers{}
	}
	if a.tree.Dir == "" {
		a.tree.Dir = TreeDir(svc.Name)
	}
	a.root = filepath.Join(svc.SvDir, a.tree.Dir)
	res := Result{Name: svc.Name, State: string(svc.State)}
	var err error
	if !opt.CheckMode {
		unlock, lerr := lock(ctx, svc.SvDir)
		if lerr != nil {
			return res, lerr
		}
		defer unlock()
	}
	switch svc.State {
	case spec.StatePresent:
		err = a.present(ctx, &res, false)
	case spec.StateEnabled:
		err = a.present(ctx, &res, true)
	case spec.StateDisabled:
		err = a.disable(ctx, &res)
	case spec.StateAbsent:
		err = a.absent(ctx, &res)
	default:
		err = fmt.Errorf("cannot apply state %q: use present, enabled, disabled or absent", svc.State)
	}
	res.Warnings = append(res.Warnings, a.warnings...)
	if err != nil {
		return res, err
	}
	res.Status, _ = GetStatus(ctx, svc, a.c)
	if res.Msg == "" {
		res.Msg = a.summary(res)
	}
	return res, nil
}

type applier struct {
	svc      spec.Service
	tree     tree.Tree
	opt      Options
	log      *slog.Logger
	c        Containers
	root     string // sv_dir/docker-NAME
	warnings []string
	actions  []string
}

func (a *applier) did(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if a.opt.CheckMode {
		msg = "would " + msg
	}
	a.actions = append(a.actions, msg)
	a.log.Info(msg, "service", a.svc.Name)
}

func (a *applier) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	a.warnings = append(a.warnings, msg)
	a.log.Warn(msg, "service", a.svc.Name)
}

func (a *applier) summary(res Result) string {
	if len(a.actions) == 0 {
		return fmt.Sprintf("%s is %s; nothing to do", a.svc.Name, a.svc.State)
	}
	return strings.Join(a.actions, "; ")
}

// lock takes the per-host lock, waiting for another run to finish.
func lock(ctx context.Context, svDir string) (func(), error) {
	if err := os.MkdirAll(svDir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create sv_dir %s: %w (set sv_dir to a writable directory)", svDir, err)
	}
	p := filepath.Join(svDir, LockName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open lock %s: %w", p, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("cannot lock %s: %w", p, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("cannot lock %s: another rundock run holds it: %w", p, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// fileChange is one difference between the rendered tree and the disk.
type fileChange struct {
	path     string // slash path relative to the tree
	data     []byte // nil for removal
	mode     fs.FileMode
	remove   bool
	before   []byte
	modeWas  fs.FileMode
	existed  bool
	onlyMode bool
}

// plan compares the rendered tree with the disk. It refuses symlinks anywhere in the tree
// except runsv's supervise/ entries, which it never reads or touches.
func (a *applier) plan() (exists bool, changes []fileChange, err error) {
	fi, err := os.Lstat(a.root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		for _, f := range a.tree.Files {
			changes = append(changes, fileChange{path: f.Path, data: f.Data, mode: f.Mode.Perm()})
		}
		return false, changes, nil
	case err != nil:
		return false, nil, fmt.Errorf("cannot inspect %s: %w", a.root, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return false, nil, fmt.Errorf("cannot manage %s: %w: it is a symlink rundock did not create; remove it and run again", a.root, ErrSymlink)
	case !fi.IsDir():
		return false, nil, fmt.Errorf("cannot manage %s: %w: it is not a directory; remove it and run again", a.root, ErrNotOurs)
	}
	onDisk := map[string]fs.FileMode{}
	err = filepath.WalkDir(a.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == a.root {
			return nil
		}
		rel, _ := filepath.Rel(a.root, p)
		rel = filepath.ToSlash(rel)
		if d.Name() == "supervise" {
			return fs.SkipDir
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return fmt.Errorf("cannot manage %s: %w: %s is a symlink rundock did not create; remove it (rm %s) and run again", a.root, ErrSymlink, p, p)
		}
		if d.IsDir() {
			onDisk[rel+"/"] = fs.ModeDir
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("cannot manage %s: %w: %s is not a regular file; remove it and run again", a.root, ErrNotOurs, p)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		onDisk[rel] = info.Mode().Perm()
		return nil
	})
	if err != nil {
		return true, nil, err
	}
	rendered := map[string]bool{}
	for _, f := range a.tree.Files {
		rendered[f.Path] = true
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			rendered[dir+"/"] = true
			if m, ok := onDisk[dir]; ok && m != fs.ModeDir {
				return true, nil, fmt.Errorf("cannot manage %s: %w: %s is a file where rundock needs a directory; remove it and run again", a.root, ErrNotOurs, filepath.Join(a.root, dir))
			}
		}
		mode, ok := onDisk[f.Path]
		if _, isDir := onDisk[f.Path+"/"]; isDir {
			return true, nil, fmt.Errorf("cannot manage %s: %w: %s is a directory where rundock writes a file; remove it and run again", a.root, ErrNotOurs, filepath.Join(a.root, f.Path))
		}
		if !ok {
			changes = append(changes, fileChange{path: f.Path, data: f.Data, mode: f.Mode.Perm()})
			continue
		}
		before, err := readNoFollow(filepath.Join(a.root, filepath.FromSlash(f.Path)))
		if err != nil {
			return true, nil, err
		}
		if string(before) == string(f.Data) && mode == f.Mode.Perm() {
			continue
		}
		changes = append(changes, fileChange{path: f.Path, data: f.Data, mode: f.Mode.Perm(), before: before, modeWas: mode, existed: true,
			onlyMode: string(before) == string(f.Data)})
	}
	var stale []string
	for p, m := range onDisk {
		if m != fs.ModeDir && !rendered[p] {
			stale = append(stale, p)
		}
	}
	sort.Strings(stale)
	for _, p := range stale {
		before, err := readNoFollow(filepath.Join(a.root, filepath.FromSlash(p)))
		if err != nil {
			return true, nil, err
		}
		changes = append(changes, fileChange{path: p, remove: true, before: before, modeWas: onDisk[p], existed: true})
	}
	return true, changes, nil
}

func readNoFollow(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", p, err)
	}
	defer f.Close()
	var b strings.Builder
	buf := make([]byte, 32*1024)
	for {
		n, err := f.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return []byte(b.String()), nil
}

func modeString(m fs.FileMode) string { return fmt.Sprintf("%04o", uint32(m.Perm())) }

func (a *applier) diffs(changes []fileChange) []FileDiff {
	var out []FileDiff
	for _, c := range changes {
		d := FileDiff{Path: path.Join(a.tree.Dir, c.path), Before: string(c.before)}
		if c.existed {
			d.BeforeMode = modeString(c.modeWas)
		}
		if !c.remove {
			d.After = string(c.data)
			d.AfterMode = modeString(c.mode)
		}
		out = append(out, d)
	}
	return out
}

// present makes the tree on disk equal the rendered one; with link, also links and starts
// its services, restarting those whose files changed.
func (a *applier) present(ctx context.Context, res *Result, link bool) error {
	if len(a.tree.Files) == 0 {
		return fmt.Errorf("cannot install %s: nothing was rendered (image missing?)", a.svc.Name)
	}
	exists, changes, err := a.plan()
	if err != nil {
		return err
	}
	var links []linkChange
	var staleLinks []string
	if link {
		links, staleLinks, err = a.planLinks()
		if err != nil {
			return err
		}
	}
	if a.opt.Diff {
		res.Diff = a.diffs(changes)
	}
	res.Changed = len(changes) > 0 || len(links) > 0 || len(staleLinks) > 0
	// Which services were running before, so changed files can be made to take effect.
	running := map[string]bool{}
	for _, s := range a.serviceDirs() {
		running[s] = runit.Supervised(filepath.Join(a.root, s))
	}
	// Services no longer rendered (e.g. announce removed): stop them before their
	// directory goes away.
	for _, l := range staleLinks {
		a.did("unlink %s", l)
		if !a.opt.CheckMode {
			if err := a.stopLinked(ctx, l); err != nil {
				return err
			}
		}
	}
	if !exists {
		a.did("install %s", a.root)
		if !a.opt.CheckMode {
			if err := a.createTree(); err != nil {
				return err
			}
		}
	} else if len(changes) > 0 {
		var names []string
		for _, c := range changes {
			names = append(names, c.path)
		}
		a.did("update %s (%s)", a.root, strings.Join(names, ", "))
		if !a.opt.CheckMode {
			if err := a.updateTree(changes); err != nil {
				return err
			}
		}
	}
	if !a.opt.CheckMode && exists {
		if err := a.removeEmptyDirs(); err != nil {
			return err
		}
	}
	if !link {
		if exists && len(changes) > 0 {
			return a.restartChanged(ctx, changes, running)
		}
		return nil
	}
	for _, l := range links {
		a.did("link %s -> %s", l.link, l.target)
		if !a.opt.CheckMode {
			if err := symlinkAtomic(l.target, l.link); err != nil {
				return err
			}
		}
	}
	if a.opt.CheckMode {
		return a.ensureUp(ctx, res)
	}
	for _, s := range a.tree.Services {
		dir := filepath.Join(a.root, filepath.FromSlash(s.Path))
		if err := runit.WaitSupervised(ctx, dir, pickupTimeout); err != nil {
			return fmt.Errorf("cannot start %s: %w: no runsv supervises %s after %s; no runsvdir seems to watch %s (start runsvdir %s, or set service_dir to the directory runsvdir watches)",
				a.svc.Name, ErrNotPickedUp, dir, pickupTimeout, a.svc.ServiceDir, a.svc.ServiceDir)
		}
	}
	if exists && len(changes) > 0 {
		if err := a.restartChanged(ctx, changes, running); err != nil {
			return err
		}
	}
	return a.ensureUp(ctx, res)
}

// ensureUp starts services someone stopped with `sv down`: enabled means running.
func (a *applier) ensureUp(ctx context.Context, res *Result) error {
	for _, s := range a.tree.Services {
		dir := filepath.Join(a.root, filepath.FromSlash(s.Path))
		if st, err := runit.ReadStatus(dir); err == nil && st.Want == "down" {
			res.Changed = true
			a.did("start %s (it was wanted down)", dir)
			if a.opt.CheckMode {
				continue
			}
			if _, err := runit.Sv(ctx, 0, "up", dir); err != nil {
				return err
			}
			// Until runsv has read it, the next sv command (the next apply, an operator) would
			// act on a stale status (see runit.WaitWant).
			if err := runit.WaitWant(ctx, dir, "up", 10*time.Second); err != nil {
				a.warn("runsv has not taken sv up of %s within 10s: %v", dir, err)
			}
		}
	}
	return nil
}

// serviceDirs lists the runit service directories of the tree, relative to it, the log
// subservices included.
func (a *applier) serviceDirs() []string {
	var dirs []string
	for _, s := range a.tree.Services {
		dirs = append(dirs, s.Path)
		logRun := path.Join(s.Path, "log", "run")
		for _, f := range a.tree.Files {
			if f.Path == logRun {
				dirs = append(dirs, path.Join(s.Path, "log"))
			}
		}
	}
	return dirs
}

// restartChanged restarts each running service whose files changed, so that the change
// takes effect: `sv restart` runs control/t (a graceful docker stop), then the new ./run.
func (a *applier) restartChanged(ctx context.Context, changes []fileChange, running map[string]bool) error {
	dirs := a.serviceDirs()
	restart := map[string]bool{}
	for _, c := range changes {
		best := "."
		for _, d := range dirs {
			if d != "." && strings.HasPrefix(c.path, d+"/") && (best == "." || len(d) > len(best)) {
				best = d
			}
		}
		if running[best] {
			restart[best] = true
		}
	}
	var order []string
	for d := range restart {
		order = append(order, d)
	}
	slices.Sort(order)
	wait := time.Duration(a.svc.StopTimeout+20) * time.Second
	for _, d := range order {
		dir := filepath.Join(a.root, filepath.FromSlash(d))
		a.did("restart %s", dir)
		if a.opt.CheckMode {
			continue
		}
		if out, err := runit.Sv(ctx, wait, "restart", dir); err != nil {
			// sv -w also waits for ./check; a slow container is not an apply failure.
			a.warn("restart of %s not confirmed within %s: %s", dir, wait, out)
		}
	}
	return nil
}

// createTree builds the whole tree in a hidden temp directory inside sv_dir and renames
// it into place, so a half-written tree is never visible to runsvdir.
func (a *applier) createTree() error {
	tmp, err := os.MkdirTemp(a.svc.SvDir, "."+a.tree.Dir+".new-")
	if err != nil {
		return fmt.Errorf("cannot create a temp dir in %s: %w", a.svc.SvDir, err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for _, f := range a.tree.Files {
		p := filepath.Join(tmp, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("cannot create %s: %w", filepath.Dir(p), err)
		}
		if err := writeFileSync(p, f.Data, f.Mode.Perm()); err != nil {
			return err
		}
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, a.root); err != nil {
		return fmt.Errorf("cannot move %s into place: %w", a.root, err)
	}
	ok = true
	return syncDir(a.svc.SvDir)
}

func writeFileSync(p string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", p, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", p, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("cannot chmod %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot sync %s: %w", p, err)
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cannot open %s: %w", dir, err)
	}
	defer d.Close()
	d.Sync() // best effort: some filesystems refuse fsync on directories
	return nil
}

// updateTree replaces each changed file by a temp file renamed over it, and removes files
// no longer rendered. supervise/ directories are never touched.
func (a *applier) updateTree(changes []fileChange) error {
	for _, c := range changes {
		p := filepath.Join(a.root, filepath.FromSlash(c.path))
		if c.remove {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("cannot remove %s: %w", p, err)
			}
			continue
		}
		dir := filepath.Dir(p)
		if err := mkdirNoFollow(a.root, dir); err != nil {
			return err
		}
		tmp := filepath.Join(dir, fmt.Sprintf(".%s.rundock-%d", filepath.Base(p), os.Getpid()))
		os.Remove(tmp)
		if err := writeFileSync(tmp, c.data, c.mode); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("cannot replace %s: %w", p, err)
		}
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// mkdirNoFollow creates dir and its parents below root, refusing symlinks on the way.
func mkdirNoFollow(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cannot create %s: outside %s", dir, root)
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
			return fmt.Errorf("cannot write under %s: %w", cur, ErrSymlink)
		case !fi.IsDir():
			return fmt.Errorf("cannot create %s: %w: a file is in the way", cur, ErrNotOurs)
		}
	}
	return nil
}

// removeEmptyDirs removes directories of the tree that hold no rendered file any more
// (e.g. announcer/ after announce was unset) once no runsv owns them.
func (a *applier) removeEmptyDirs() error {
	keep := map[string]bool{".": true}
	for _, f := range a.tree.Files {
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			keep[dir] = true
		}
	}
	entries, err := os.ReadDir(a.root)
	if err != nil {
		return fmt.Errorf("cannot list %s: %w", a.root, err)
	}
	var check func(rel string, entries []os.DirEntry) error
	check = func(rel string, entries []os.DirEntry) error {
		for _, e := range entries {
			if !e.IsDir() || e.Name() == "supervise" {
				continue
			}
			r := path.Join(rel, e.Name())
			p := filepath.Join(a.root, filepath.FromSlash(r))
			if !keep[r] {
				if runit.Locked(p) || runit.Locked(filepath.Join(p, "log")) {
					a.warn("%s is no longer rendered but a runsv still owns it; not removed", p)
					continue
				}
				if err := os.RemoveAll(p); err != nil {
					return fmt.Errorf("cannot remove %s: %w", p, err)
				}
				continue
			}
			sub, err := os.ReadDir(p)
			if err != nil {
				return fmt.Errorf("cannot list %s: %w", p, err)
			}
			if err := check(r, sub); err != nil {
				return err
			}
		}
		return nil
	}
	return check(".", entries)
}

type linkChange struct {
	link, target string
}

// planLinks compares service_dir with Tree.Services: links to create or fix, and links
// into this tree that no service wants any more.
func (a *applier) planLinks() (changes []linkChange, stale []string, err error) {
	want := map[string]string{}
	for _, s := range a.tree.Services {
		target := filepath.Join(a.root, filepath.FromSlash(s.Path))
		link := filepath.Join(a.svc.ServiceDir, s.Link)
		want[link] = target
		fi, err := os.Lstat(link)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			changes = append(changes, linkChange{link, target})
		case err != nil:
			return nil, nil, fmt.Errorf("cannot inspect %s: %w", link, err)
		case fi.Mode()&fs.ModeSymlink == 0:
			return nil, nil, fmt.Errorf("cannot link %s: %w: it exists and is not a symlink; move it away and run again", link, ErrNotOurs)
		default:
			cur, err := os.Readlink(link)
			if err != nil {
				return nil, nil, fmt.Errorf("cannot read link %s: %w", link, err)
			}
			if filepath.Clean(cur) != target {
				changes = append(changes, linkChange{link, target})
			}
		}
	}
	ours, err := a.ourLinks()
	if err != nil {
		return nil, nil, err
	}
	for _, l := range ours {
		if _, ok := want[l]; !ok {
			stale = append(stale, l)
		}
	}
	return changes, stale, nil
}

// ourLinks lists the symlinks in service_dir that point into this service's tree, or
// carry its link names.
func (a *applier) ourLinks() ([]string, error) {
	entries, err := os.ReadDir(a.svc.ServiceDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot list service_dir %s: %w", a.svc.ServiceDir, err)
	}
	var out []string
	for _, e := range entries {
		if e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		p := filepath.Join(a.svc.ServiceDir, e.Name())
		target, err := os.Readlink(p)
		if err != nil {
			continue
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(a.svc.ServiceDir, target)
		}
		target = filepath.Clean(target)
		if target == a.root || strings.HasPrefix(target, a.root+string(filepath.Separator)) ||
			e.Name() == a.tree.Dir || strings.HasPrefix(e.Name(), a.tree.Dir+".") {
			out = append(out, p)
		}
	}
	return out, nil
}

// symlinkAtomic points link at target: a symlink under a temp name renamed over link.
func symlinkAtomic(target, link string) error {
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return fmt.Errorf("cannot create service_dir %s: %w", filepath.Dir(link), err)
	}
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

// stopLinked stops the service behind link gracefully, removes the link, makes its runsv
// exit and waits until it has.
func (a *applier) stopLinked(ctx context.Context, link string) error {
	dir, err := filepath.EvalSymlinks(link)
	if err != nil {
		// A dangling link: nothing supervises it.
		if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cannot remove link %s: %w", link, err)
		}
		return nil
	}
	wait := time.Duration(a.svc.StopTimeout+20) * time.Second
	if runit.Supervised(dir) {
		if out, err := runit.Sv(ctx, wait, "down", dir); err != nil {
			a.warn("graceful stop of %s not confirmed within %s: %s", dir, wait, out)
		}
	}
	if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot remove link %s: %w", link, err)
	}
	if runit.Supervised(dir) {
		runit.Sv(ctx, 0, "exit", dir)
	}
	for _, d := range []string{dir, filepath.Join(dir, "log")} {
		if err := runit.WaitUnlocked(ctx, d, wait); err != nil {
			return fmt.Errorf("cannot stop %s: its runsv still runs after %s (check `sv status %s`)", a.svc.Name, wait, d)
		}
	}
	return nil
}

// disable stops and unlinks every service of the tree and makes sure no container is left.
func (a *applier) disable(ctx context.Context, res *Result) error {
	links, err := a.ourLinks()
	if err != nil {
		return err
	}
	if exists, _ := pathExists(a.root); exists {
		// Refuse planted symlinks before doing anything.
		if _, _, err := a.planOnlyCheck(); err != nil {
			return err
		}
	}
	// The announcer first (docker-NAME.announcer sorts after docker-NAME), so the DNS
	// record is withdrawn before the container stops.
	slices.Sort(links)
	slices.Reverse(links)
	for _, l := range links {
		a.did("stop and unlink %s", l)
		res.Changed = true
		if a.opt.CheckMode {
			continue
		}
		if err := a.stopLinked(ctx, l); err != nil {
			return err
		}
	}
	// Supervised without a link (e.g. a runsv left over): stop it too.
	for _, s := range []string{".", "announcer"} {
		dir := filepath.Join(a.root, s)
		if runit.Supervised(dir) {
			a.did("stop %s", dir)
			res.Changed = true
			if !a.opt.CheckMode {
				wait := time.Duration(a.svc.StopTimeout+20) * time.Second
				runit.Sv(ctx, wait, "down", dir)
				runit.Sv(ctx, 0, "exit", dir)
				runit.WaitUnlocked(ctx, dir, wait)
			}
		}
	}
	state, err := a.c.State(ctx, a.svc.Name)
	if err != nil {
		a.warn("cannot check for a container %s: %v", a.svc.Name, err)
		return nil
	}
	if state != "" {
		res.Changed = true
		if a.opt.CheckMode {
			a.did("remove container %s", a.svc.Name)
			return nil
		}
		// The graceful stop above normally leaves none: --rm removes it. Wait briefly for
		// that asynchronous removal before using force.
		gone := false
		for i := 0; i < 50; i++ {
			if s, err := a.c.State(ctx, a.svc.Name); err == nil && s == "" {
				gone = true
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !gone {
			a.warn("container %s was still there after the service stopped; removed it with docker rm -f", a.svc.Name)
			if err := a.c.Remove(ctx, a.svc.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// planOnlyCheck runs the symlink checks of plan on an existing tree with no rendered files.
func (a *applier) planOnlyCheck() (bool, []fileChange, error) {
	saved := a.tree.Files
	a.tree.Files = nil
	defer func() { a.tree.Files = saved }()
	return a.plan()
}

func pathExists(p string) (bool, error) {
	_, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// absent disables the service, then removes its tree: renamed to a hidden name first so
// it disappears at once, then deleted. Logs in log_dir are kept.
func (a *applier) absent(ctx context.Context, res *Result) error {
	if err := a.disable(ctx, res); err != nil {
		return err
	}
	exists, err := pathExists(a.root)
	if err != nil {
		return fmt.Errorf("cannot inspect %s: %w", a.root, err)
	}
	if !exists {
		return nil
	}
	res.Changed = true
	a.did("remove %s", a.root)
	if a.opt.Diff {
		_, changes, err := a.planOnlyCheck()
		if err == nil {
			res.Diff = append(res.Diff, a.diffs(changes)...)
		}
	}
	if a.opt.CheckMode {
		return nil
	}
	tmp := filepath.Join(a.svc.SvDir, fmt.Sprintf(".%s.removing-%d", a.tree.Dir, os.Getpid()))
	os.RemoveAll(tmp)
	if err := os.Rename(a.root, tmp); err != nil {
		return fmt.Errorf("cannot remove %s: %w", a.root, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("cannot remove %s: %w", tmp, err)
	}
	return nil
}

// GetStatus reports the runit and container state of a service without changing anything.
func GetStatus(ctx context.Context, svc spec.Service, c Containers) (Status, error) {
	if c == nil {
		c = DockerContainers{}
	}
	root := filepath.Join(svc.SvDir, TreeDir(svc.Name))
	var st Status
	st.Installed, _ = pathExists(root)
	if fi, err := os.Lstat(filepath.Join(svc.ServiceDir, TreeDir(svc.Name))); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		st.Linked = true
	}
	var err error
	if st.Installed {
		st.Service, err = runit.ReadStatus(root)
		if ok, _ := pathExists(filepath.Join(root, "log", "run")); ok {
			s, _ := runit.ReadStatus(filepath.Join(root, "log"))
			st.Log = &s
		}
		if ok, _ := pathExists(filepath.Join(root, "announcer", "run")); ok {
			s, _ := runit.ReadStatus(filepath.Join(root, "announcer"))
			st.Announcer = &s
		}
	}
	cs, cerr := c.State(ctx, svc.Name)
	st.Container = cs
	if err == nil {
		err = cerr
	}
	return st, err
}
