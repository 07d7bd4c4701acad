// Package apply brings a service to its state on this host. It first computes a plan from
// the rendered tree, the disk and runit's state (MakePlan: files to write or remove, links,
// restarts, stops), then executes it (Execute); check mode prints the plan and stops there.
// Writes are atomic and never go through a symlink rundock did not create. The CLI and the
// Ansible module share it through Services.
package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/tree"
)

// Errors apply returns, for errors.Is.
var (
	// ErrSymlink: a file or directory inside a service tree is a symlink rundock did not
	// create; rundock never writes through it.
	ErrSymlink = safefs.ErrSymlink
	// ErrNotOurs: something rundock did not create is in the way (e.g. a directory where
	// the service link goes).
	ErrNotOurs = safefs.ErrInTheWay
	// ErrNotPickedUp: no runsv started for a linked service in time.
	ErrNotPickedUp = errors.New("service not picked up by runsvdir")
)

// LockName is the per-host lock file in sv_dir that serializes concurrent runs.
const LockName = ".rundock.lock"

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
	// NoContainer says the tree runs no container (the rundock-upstreams service): the
	// result carries no status and Docker is not asked.
	NoContainer bool
	// NoStatus leaves Result.Status empty: the caller prints none (the CLI's text output),
	// so neither Docker nor runit is asked.
	NoStatus bool
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

// Render renders svc's tree. Disabled and absent need only the name, so nothing is rendered
// for them unless an image was given.
func Render(svc spec.Service) (tree.Tree, error) {
	if (svc.State == spec.StateDisabled || svc.State == spec.StateAbsent) && svc.Image == "" {
		return tree.Tree{Dir: render.Dir(svc.Name)}, nil
	}
	t, err := render.Render(svc)
	if err != nil {
		return t, fmt.Errorf("cannot render %s: %w", svc.Name, err)
	}
	return t, nil
}

// Services is the pipeline the CLI and the module share: every service is rendered before
// anything changes (one that does not render changes nothing at all, nor does a depends_on
// cycle), then each is applied in dependency order (else in the order given), stopping at
// the first that fails. (A stub, which renderAll does not render, is rendered later, at its
// service's turn, if the disk moved; it cannot fail then: the same spec rendered with the
// same binary before.) The results hold one entry per service
// applied; when err is set, the last one is the failure, its Msg the error.
func Services(ctx context.Context, svcs []spec.Service, opt Options) ([]Result, error) {
	// The depends_on graph reads sv_dir's run scripts while the services render (in
	// memory: a cycle is still refused before anything changes, and before a service
	// that does not render).
	var g depGraph
	read := make(chan struct{})
	go func() {
		defer close(read)
		g = newDepGraph(svcs)
	}()
	given, keys, indexes, rendered := renderAll(svcs)
	<-read
	idx, err := g.order(svcs)
	if err != nil {
		return nil, err
	}
	ordered := make([]spec.Service, len(idx))
	items := make([]planItem, len(idx))
	errs := make([]error, len(idx))
	for k, i := range idx {
		ordered[k], items[k], errs[k] = svcs[i], planItem{svcs[i], given[i], keys[i]}, rendered[i]
	}
	svcs = ordered
	depWarns := g.warnings(svcs)
	announced := map[string]string{} // record key -> service
	for i, s := range svcs {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if s.Announce == 0 {
			continue
		}
		k, _ := render.RecordKey(s)
		if prev, ok := announced[k]; ok {
			return nil, fmt.Errorf("cannot apply %s and %s together: both would announce %s; give one of them another instance or announce_name", prev, s.Name, k)
		}
		announced[k] = s.Name
	}
	var results []Result
	var failed error
	one := opt
	one.NoContainer = true // the status of all comes at the end, in one question
	r := runState{batch: items, indexes: indexes}
	for i, s := range svcs {
		res, err := applyOne(ctx, items[i], one, &r)
		res.Warnings = append(res.Warnings, depWarns[i]...)
		if err != nil {
			res.Msg = err.Error()
			failed = fmt.Errorf("cannot apply %s: %w", s.Name, err)
		}
		results = append(results, res)
		if failed != nil {
			break
		}
	}
	r.close()
	if !opt.NoContainer && !opt.NoStatus {
		sts, _ := Statuses(ctx, svcs[:len(results)], opt.Containers)
		for i := range results {
			results[i].Status = sts[i]
		}
	}
	return results, failed
}

// renderAll renders every service, on every CPU: rendering is pure, and with hundreds of
// services it is most of a run's work. A service whose tree sv_dir's index holds as this
// binary renders the same spec gets a stub instead (tree.Tree.Stub), which the plan
// renders only if the disk no longer matches. keys are the services' specKeys; indexes
// the indexes read, by sv_dir (without the lock: a stub is checked under it).
func renderAll(svcs []spec.Service) (trees []tree.Tree, keys []string, indexes map[string]*treeIndex, errs []error) {
	trees = make([]tree.Tree, len(svcs))
	keys = make([]string, len(svcs))
	errs = make([]error, len(svcs))
	indexes = map[string]*treeIndex{}
	for _, s := range svcs {
		if d := filepath.Clean(s.SvDir); indexes[d] == nil {
			indexes[d] = loadIndex(d)
		}
	}
	parallel(len(svcs), func(i int) {
		s := svcs[i]
		if s.State == spec.StatePresent || s.State == spec.StateEnabled {
			keys[i] = specKey(s)
			if t, ok := indexes[filepath.Clean(s.SvDir)].stub(render.Dir(s.Name), s.Name, keys[i]); ok {
				trees[i] = t
				return
			}
		}
		trees[i], errs[i] = Render(s)
	})
	return trees, keys, indexes, errs
}

// Apply brings svc to its state on this host: it plans, and unless in check mode executes
// the plan. t is svc rendered (only its Dir is used for disabled and absent). Bad input
// changes nothing on disk.
func Apply(ctx context.Context, svc spec.Service, t tree.Tree, opt Options) (Result, error) {
	var r runState
	defer r.close()
	return applyOne(ctx, planItem{svc: svc, tree: t}, opt, &r)
}

// applyOne is Apply of it within the run r, which holds sv_dir's lock when it returns.
func applyOne(ctx context.Context, it planItem, opt Options, r *runState) (Result, error) {
	svc, t := it.svc, it.tree
	res := Result{Name: svc.Name, State: string(svc.State)}
	removing := svc.State == spec.StateDisabled || svc.State == spec.StateAbsent
	lock := false
	if !opt.CheckMode && !r.locked(svc.SvDir) {
		// Without sv_dir there is no tree to remove: no lock (nor sv_dir) is created.
		ok, _ := safefs.Exists(svc.SvDir)
		lock = ok || !removing
	}
	if err := r.enter(ctx, svc.SvDir, lock); err != nil {
		return res, err
	}
	if t.Dir == "" {
		t.Dir = render.Dir(svc.Name)
	}
	var p Plan
	if !opt.CheckMode {
		// A plan without actions wrote nothing: the tree's record key stands.
		defer func() {
			if len(p.Actions) > 0 {
				r.applied(planItem{svc, p.Tree, it.spec})
			}
		}()
	}
	it.tree = t
	p, err := makePlan(ctx, it, opt.Containers, r)
	if err != nil {
		return res, err
	}
	res.Changed = p.Changed()
	if opt.Diff {
		res.Diff = p.Diff
	}
	res.Msg = summary(p, opt.CheckMode)
	if opt.CheckMode {
		for _, a := range p.Actions {
			if a.Kind == Refuse {
				res.Warnings = append(res.Warnings, a.String())
			}
		}
	}
	if !opt.CheckMode {
		out, err := Execute(ctx, p, opt.Containers, opt.Logger)
		res.Changed, res.Warnings = out.Changed, out.Warnings
		if opt.Diff {
			res.Diff = append(res.Diff, out.Diff...)
		}
		if err != nil {
			return res, err
		}
	}
	if !opt.NoContainer && !opt.NoStatus {
		res.Status, _ = GetStatus(ctx, svc, opt.Containers)
	}
	return res, nil
}

// summary is the result message: the plan's actions that change something.
func summary(p Plan, check bool) string {
	var done []string
	for _, a := range p.Actions {
		if a.Quiet {
			continue
		}
		if check {
			done = append(done, "would "+a.String())
		} else {
			done = append(done, a.String())
		}
	}
	if len(done) == 0 {
		return fmt.Sprintf("%s is %s; nothing to do", p.Service.Name, p.Service.State)
	}
	return strings.Join(done, "; ")
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
