package apply

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/runit"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/tree"
)

// Kind is what one action of a plan does.
type Kind string

// The kinds of action, in the order a plan may hold them.
const (
	// Unlink stops the service behind a link gracefully, removes the link and makes its
	// runsv exit.
	Unlink Kind = "unlink"
	// CreateTree builds the whole tree hidden and renames it into place.
	CreateTree Kind = "install"
	// WriteFile replaces one file of an existing tree.
	WriteFile Kind = "write"
	// RemoveFile removes a file no longer rendered.
	RemoveFile Kind = "remove file"
	// PruneDirs removes directories that hold no rendered file any more, unless a runsv
	// still owns them.
	PruneDirs Kind = "prune"
	// Link points a service_dir link at a service of the tree.
	Link Kind = "link"
	// WaitPickup waits until a runsv supervises a linked service.
	WaitPickup Kind = "wait for runsv"
	// Restart restarts a running service whose files changed (sv restart: a graceful stop
	// through control/t, then the new ./run).
	Restart Kind = "restart"
	// Start starts a service someone stopped with sv down: enabled means running.
	Start Kind = "start"
	// Stop stops a supervised service that has no link any more and makes its runsv exit.
	Stop Kind = "stop"
	// RemoveContainer makes sure no container of the service is left.
	RemoveContainer Kind = "remove container"
	// RemoveTree removes the tree (logs in log_dir are kept).
	RemoveTree Kind = "remove"

	// The steps of a deploy (deploy.go).

	// Refuse fails the run before anything changes: the plan cannot work (its Note says
	// why). Check mode reports it as a warning.
	Refuse Kind = "cannot deploy"
	// Pull pulls the image before anything is stopped.
	Pull Kind = "pull"
	// Begin records that a deploy starts, and keeps the tree of a serving container for a
	// rollback.
	Begin Kind = "begin deploy of"
	// WaitServing waits for the new container to serve; when it does not, the previous
	// tree is restored and restarted (or a first install is stopped) and the run fails.
	WaitServing Kind = "wait for serving"
	// MaintenanceOn withdraws the record without stopping the container.
	MaintenanceOn Kind = "maintenance on"
	// MaintenanceOff lets the announcer publish the record again.
	MaintenanceOff Kind = "maintenance off"
)

// Action is one step of a plan.
type Action struct {
	Kind Kind
	// Path is what the action works on: the tree's root, a file's or a service
	// directory's absolute path, or a link in service_dir.
	Path string
	// Target is the directory a Link points at.
	Target string
	// File is the rendered file of a WriteFile.
	File tree.File
	// Quiet actions are steps of the execution that change nothing by themselves (waits,
	// a check for a leftover container): they do not make a run "changed".
	Quiet bool
	// Note says why, when the kind alone does not.
	Note string
	// Async restarts do not wait for the service to come up: a wait for serving follows.
	Async bool
	// IfImageMoved actions run only when the pull moved the image behind the reference
	// away from the one the container runs (pull always with the same files).
	IfImageMoved bool
}

// String describes the action, e.g. "restart /etc/sv/docker-web".
func (a Action) String() string {
	s := string(a.Kind) + " " + a.Path
	switch a.Kind {
	case Link:
		s += " -> " + a.Target
	case Unlink:
		s = "stop and unlink " + a.Path
	}
	if a.Note != "" {
		s += " (" + a.Note + ")"
	}
	if a.IfImageMoved {
		s += " if the pull moved the image"
	}
	return s
}

// Plan is what Apply will do for one service: the actions in order, and each file's
// change for the diff. A plan is computed from the rendered tree, the disk and runit's
// state; check mode prints it, Execute runs it.
type Plan struct {
	Service spec.Service
	Tree    tree.Tree
	Root    string // sv_dir/docker-NAME
	Actions []Action
	Diff    []FileDiff
	// Current is the container as planning found it, when a deploy step needed it.
	Current Container

	interrupted bool // an earlier deploy of this tree was left half-done
	replaces    bool // the deploy replaces the Current container (else it waits for it)
	// last is the journal of the deploy an earlier run left half-done.
	last *Deploy
	// notID, when set, is the container the wait for serving waits to see replaced
	// (instead of Current's): the old one of an update start-first a killed run switched.
	notID string
	// An update start-first: its new container's host port (0: announce_as container).
	startFirst bool
	nextPort   int
}

// Changed reports whether executing the plan surely changes anything (an action that
// depends on the pull may, too).
func (p Plan) Changed() bool {
	return slices.ContainsFunc(p.Actions, func(a Action) bool { return !a.Quiet && !a.IfImageMoved })
}

// planner computes a Plan.
type planner struct {
	svc  spec.Service
	tree tree.Tree
	spec string // svc's specKey when the run rendered tree (planItem.spec)
	root string
	c    Containers
	run  *runState
	p    Plan
}

func (pl *planner) add(a Action) { pl.p.Actions = append(pl.p.Actions, a) }

// MakePlan computes what Apply would do to bring svc to its state; it changes nothing.
// t is svc rendered (only its Dir is used for disabled and absent).
func MakePlan(ctx context.Context, svc spec.Service, t tree.Tree, c Containers) (Plan, error) {
	r := &runState{svDir: filepath.Clean(svc.SvDir)}
	return makePlan(ctx, planItem{svc: svc, tree: t}, c, r)
}

// makePlan is MakePlan of it within the run r, which has entered its sv_dir.
func makePlan(ctx context.Context, it planItem, c Containers, r *runState) (Plan, error) {
	svc, t := it.svc, it.tree
	if c == nil {
		c = DockerContainers{}
	}
	if t.Dir == "" {
		t.Dir = render.Dir(svc.Name)
	}
	root := filepath.Join(svc.SvDir, t.Dir)
	pl := &planner{svc: svc, tree: t, spec: it.spec, root: root, c: c, run: r, p: Plan{Service: svc, Tree: t, Root: root}}
	var err error
	switch svc.State {
	case spec.StatePresent:
		err = pl.present(ctx, false)
	case spec.StateEnabled:
		err = pl.present(ctx, true)
	case spec.StateDisabled:
		err = pl.disable(ctx)
	case spec.StateAbsent:
		err = pl.absent(ctx)
	default:
		err = fmt.Errorf("cannot apply state %q: use present, enabled, disabled or absent", svc.State)
	}
	return pl.p, err
}

// present plans the tree on disk equal to the rendered one; with link, also linked and
// running, with the services whose files changed restarted. A start or restart of the
// container is a deploy: the image is pulled first, while the old container still serves,
// and afterwards apply waits for the new one to serve (rolling back when it does not).
func (pl *planner) present(ctx context.Context, link bool) error {
	if len(pl.tree.Files) == 0 {
		return fmt.Errorf("cannot install %s: nothing was rendered (image missing?)", pl.svc.Name)
	}
	d, t, err := pl.run.compare(pl.root, planItem{pl.svc, pl.tree, pl.spec})
	if err != nil {
		return err
	}
	pl.tree, pl.p.Tree = t, t
	if err := sharedRecord(pl.run.records(), pl.tree); err != nil {
		return err
	}
	pl.p.Diff = diffs(pl.tree.Dir, d.changes)
	var links []linkChange
	var stale []string
	if link {
		if links, stale, err = planLinks(pl.svc.ServiceDir, pl.root, pl.tree); err != nil {
			return err
		}
	}
	var restarts []string
	if d.exists {
		restarts = pl.restarts(d.changes)
	}
	var wantedDown []string
	if link {
		for _, s := range pl.tree.Services {
			dir := pl.serviceDir(s.Path)
			if st, err := runit.ReadStatus(dir); err == nil && st.Want == "down" && !slices.Contains(restarts, dir) {
				wantedDown = append(wantedDown, dir)
			}
		}
	}
	dep, err := pl.deploySteps(ctx, link, d.exists, restarts, wantedDown)
	if err != nil {
		return err
	}
	pl.p.Actions = append(pl.p.Actions, dep.before...)
	// Services no longer rendered (e.g. announce removed): stopped before their
	// directory goes away.
	for _, l := range stale {
		pl.add(Action{Kind: Unlink, Path: l})
	}
	if !d.exists {
		pl.add(Action{Kind: CreateTree, Path: pl.root})
	}
	for _, c := range d.changes {
		p := filepath.Join(pl.root, filepath.FromSlash(c.path))
		if c.remove {
			pl.add(Action{Kind: RemoveFile, Path: p})
		} else if d.exists {
			pl.add(Action{Kind: WriteFile, Path: p, File: tree.File{Path: c.path, Mode: c.mode, Data: c.data}})
		}
	}
	if d.exists && d.strayDirs {
		pl.add(Action{Kind: PruneDirs, Path: pl.root, Quiet: true})
	}
	for _, l := range links {
		pl.add(Action{Kind: Link, Path: l.link, Target: l.target})
	}
	if link {
		for _, s := range pl.tree.Services {
			pl.add(Action{Kind: WaitPickup, Path: pl.serviceDir(s.Path), Quiet: true})
		}
	}
	pl.maintenance()
	for _, dir := range restarts {
		if dir == pl.root && len(dep.replace) > 0 {
			// update start-first: the new container beside the old one, then the switch.
			pl.p.Actions = append(pl.p.Actions, dep.replace...)
			continue
		}
		// A deploy's wait follows the container's restart; sv need not wait for ./check.
		pl.add(Action{Kind: Restart, Path: dir, Async: dir == pl.root && len(dep.after) > 0})
	}
	pl.p.Actions = append(pl.p.Actions, dep.restart...)
	for _, dir := range wantedDown {
		pl.add(Action{Kind: Start, Path: dir, Note: "it was wanted down"})
	}
	pl.p.Actions = append(pl.p.Actions, dep.after...)
	return nil
}

// maintenance plans the maintenance mode the maintenance option asks for, when given.
func (pl *planner) maintenance() {
	if !pl.svc.MaintenanceSet {
		return
	}
	on, reason := readMaintenance(pl.root)
	switch {
	case pl.svc.Maintenance && (!on || reason != pl.svc.MaintenanceReason):
		pl.add(Action{Kind: MaintenanceOn, Path: pl.root, Note: pl.svc.MaintenanceReason})
	case !pl.svc.Maintenance && on:
		pl.add(Action{Kind: MaintenanceOff, Path: pl.root})
	}
}

func (pl *planner) serviceDir(rel string) string {
	return filepath.Join(pl.root, filepath.FromSlash(rel))
}

// restarts lists the running services (log subservices included) whose files changed.
func (pl *planner) restarts(changes []fileChange) []string {
	dirs := serviceDirs(pl.tree)
	restart := map[string]bool{}
	for _, c := range changes {
		best := "."
		for _, d := range dirs {
			if d != "." && strings.HasPrefix(c.path, d+"/") && (best == "." || len(d) > len(best)) {
				best = d
			}
		}
		if dir := pl.serviceDir(best); runit.Supervised(dir) {
			restart[dir] = true
		}
	}
	return slices.Sorted(func(yield func(string) bool) {
		for d := range restart {
			if !yield(d) {
				return
			}
		}
	})
}

// serviceDirs lists the runit service directories of a tree, relative to it, the log
// subservices included.
func serviceDirs(t tree.Tree) []string {
	var dirs []string
	for _, s := range t.Services {
		dirs = append(dirs, s.Path)
		logRun := path.Join(s.Path, "log", "run")
		if slices.ContainsFunc(t.Files, func(f tree.File) bool { return f.Path == logRun }) {
			dirs = append(dirs, path.Join(s.Path, "log"))
		}
	}
	return dirs
}

// disable plans every service of the tree stopped and unlinked, and no container left.
func (pl *planner) disable(ctx context.Context) error {
	links, err := ourLinks(pl.svc.ServiceDir, pl.root, pl.tree.Dir)
	if err != nil {
		return err
	}
	if exists, _ := safefs.Exists(pl.root); exists {
		// Refuse planted symlinks before doing anything.
		if _, err := compareTree(pl.root, nil); err != nil {
			return err
		}
	}
	// The announcer first (docker-NAME.announcer sorts after docker-NAME), so the DNS
	// record is withdrawn before the container stops.
	slices.Sort(links)
	slices.Reverse(links)
	stopped := map[string]bool{}
	for _, l := range links {
		pl.add(Action{Kind: Unlink, Path: l})
		if dir, err := filepath.EvalSymlinks(l); err == nil {
			stopped[dir] = true
		}
	}
	// Supervised without a link (e.g. a runsv left over): stopped too, announcer first.
	layout := render.Services(pl.svc.Name)
	slices.Reverse(layout)
	for _, s := range layout {
		dir := pl.serviceDir(s.Path)
		real, err := filepath.EvalSymlinks(dir)
		if err == nil && !stopped[real] && runit.Supervised(dir) {
			pl.add(Action{Kind: Stop, Path: dir})
		}
	}
	// A new container an interrupted update start-first left beside the old one.
	if st, err := pl.c.State(ctx, render.NextName(pl.svc.Name)); err == nil && st != "" {
		pl.add(Action{Kind: RemoveNext, Path: render.NextName(pl.svc.Name)})
	}
	state, err := pl.c.State(ctx, pl.svc.Name)
	switch {
	case err != nil:
		// Reported as a warning when the plan runs: Docker may simply be down.
		pl.add(Action{Kind: RemoveContainer, Path: pl.svc.Name, Quiet: true, Note: "cannot check: " + err.Error()})
	case state != "":
		pl.add(Action{Kind: RemoveContainer, Path: pl.svc.Name})
	}
	return nil
}

// absent plans the service disabled and its tree removed.
func (pl *planner) absent(ctx context.Context) error {
	if err := pl.disable(ctx); err != nil {
		return err
	}
	exists, err := safefs.Exists(pl.root)
	if err != nil {
		return fmt.Errorf("cannot inspect %s: %w", pl.root, err)
	}
	if !exists {
		return nil
	}
	pl.add(Action{Kind: RemoveTree, Path: pl.root})
	if d, err := compareTree(pl.root, nil); err == nil {
		pl.p.Diff = append(pl.p.Diff, diffs(pl.tree.Dir, d.changes)...)
	}
	return nil
}
