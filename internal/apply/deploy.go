package apply

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/runit"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/tree"
)

// pullTimeout bounds a pull: an unreachable registry can hang until a TCP timeout.
const pullTimeout = 5 * time.Minute

// deploySteps are the actions a deploy adds around the file changes: before them (pull,
// begin), after the restarts of changed services, and at the end (wait).
type deploySteps struct {
	before, restart, after []Action
	// replace takes the place of the container service's restart: an update start-first.
	replace []Action
}

// deploySteps plans what a start or restart of the container needs: the image pulled
// first, the running tree kept for a rollback, a wait for the new container. It also
// finishes a deploy an earlier run left half-done, and with pull always restarts a
// container whose tag now points at another image.
func (pl *planner) deploySteps(ctx context.Context, link, exists bool, restarts, wantedDown []string) (deploySteps, error) {
	var ds deploySteps
	if !link {
		return ds, nil // present installs files; nothing starts
	}
	svc, root := pl.svc, pl.root
	fresh := !exists || slices.Contains(restarts, root) || slices.Contains(wantedDown, root)
	var last *Deploy
	if exists {
		var err error
		if last, err = readDeploy(root); err != nil {
			return ds, err
		}
	}
	interrupted := last != nil && last.Outcome == OutcomeDeploying
	if !fresh && !interrupted && svc.Pull != spec.PullAlways {
		return ds, nil
	}
	if exists {
		cur, err := pl.c.Inspect(ctx, svc.Name)
		if err != nil {
			return ds, fmt.Errorf("cannot deploy %s: %w", svc.Name, err)
		}
		pl.p.Current = cur
	}
	cur := pl.p.Current
	moved := false // the restart depends on what the pull brings
	switch svc.Pull {
	case spec.PullAlways:
		ds.before = append(ds.before, Action{Kind: Pull, Path: svc.Image, Quiet: true})
		moved = !fresh && !interrupted && cur.Running
	case spec.PullMissing, spec.PullNever:
		id, err := pl.c.ImageID(ctx, svc.Image)
		if err != nil {
			return ds, fmt.Errorf("cannot deploy %s: %w", svc.Name, err)
		}
		switch {
		case id != "":
		case svc.Pull == spec.PullMissing:
			ds.before = append(ds.before, Action{Kind: Pull, Path: svc.Image, Quiet: true, Note: "not on this host"})
		default:
			// Refused when the plan runs, before anything changes; check mode warns.
			ds.before = append(ds.before, Action{Kind: Refuse, Path: svc.Name, Quiet: true,
				Note: fmt.Sprintf("the image %s is not on this host and pull is never: load it (docker load, docker build) or set pull to missing", svc.Image)})
		}
	}
	// The container that runs now is replaced, unless a half-done deploy already started
	// the one to wait for.
	pl.p.replaces = fresh || moved
	// update start-first replaces a container that serves; one that does not has no
	// traffic to keep, and is replaced as with stop-first.
	startFirst := svc.StartFirst() && cur.Serving()
	if interrupted {
		pl.p.last = last
	}
	if interrupted && !fresh {
		switch {
		case svc.StartFirst() && last.Phase == PhaseSwitch:
			// Killed after the switch began: runit carries on with it (drain, stop,
			// adopt). Wait for the container after the old one.
			pl.p.replaces, pl.p.startFirst, pl.p.notID = true, true, last.OldID
			if cur.ID == last.OldID && cur.Running && readDrain(root) != last.OldID {
				// Killed between the journal and sv term: control/t never named the old
				// container in the drain file. Send the switch again.
				ds.restart = append(ds.restart, Action{Kind: Restart, Path: root, Async: true, Note: "the switch an earlier run began"})
			}
		case startFirst && cur.Started.Before(last.Started):
			// Killed before the switch: the old container still serves; start over.
			pl.p.replaces = true
			ds.restart = append(ds.restart, Action{Kind: RemoveNext, Path: render.NextName(svc.Name), Quiet: true})
			ds.restart = append(ds.restart, pl.startFirstSteps(false, "an earlier run left this update half-done")...)
		case !cur.Running || cur.Started.Before(last.Started):
			pl.p.replaces = true
			ds.restart = append(ds.restart, Action{Kind: Restart, Path: root, Async: true, Note: "an earlier run left this deploy half-done"})
		}
		if svc.StartFirst() {
			pl.p.startFirst = true // a leftover NAME.next is removed after the wait
		}
		fresh = true
	} else if startFirst && slices.Contains(restarts, root) {
		ds.replace = pl.startFirstSteps(false, "")
	}
	if !fresh && !moved {
		return ds, nil
	}
	begin := Action{Kind: Begin, Path: root, Quiet: true, IfImageMoved: moved}
	if exists {
		ds.before = append(ds.before, begin)
	} else {
		ds.restart = append(ds.restart, begin) // the tree exists by then
	}
	if moved && startFirst {
		ds.restart = append(ds.restart, pl.startFirstSteps(true, "a new image behind "+svc.Image)...)
	} else if moved {
		ds.restart = append(ds.restart, Action{Kind: Restart, Path: root, Async: true, IfImageMoved: true, Note: "a new image behind " + svc.Image})
	}
	ds.after = append(ds.after, Action{Kind: WaitServing, Path: root, Quiet: true, IfImageMoved: moved})
	pl.p.interrupted = interrupted
	return ds, nil
}

// pull pulls the image, bounded, and learns whether the reference moved away from the
// image the running container was started from.
func (e *executor) pull(ctx context.Context, ref string) error {
	ctx, cancel := context.WithTimeout(ctx, pullTimeout)
	defer cancel()
	if err := e.c.Pull(ctx, ref); err != nil {
		return fmt.Errorf("%w; nothing was changed, the running container was not touched", err)
	}
	id, err := e.c.ImageID(ctx, ref)
	if err != nil {
		return err
	}
	cur := e.p.Current
	if cur.Running && id != cur.Image {
		e.moved = true
		e.diff = append(e.diff, FileDiff{Path: e.p.Tree.Dir + " (image " + ref + ")",
			Before: cur.Image + "\n", After: id + "\n", BeforeMode: "image", AfterMode: "image"})
	}
	return nil
}

// begin records the deploy and keeps the tree of a container that serves, for a rollback.
func (e *executor) begin() error {
	if cur := e.p.Current; cur.Serving() && !e.p.interrupted {
		if err := savePrevious(e.p.Root); err != nil {
			return fmt.Errorf("cannot keep the running tree for a rollback: %w", err)
		}
	}
	e.deploy = Deploy{Outcome: OutcomeDeploying, Image: e.p.Service.Image, Started: time.Now()}
	if last := e.p.last; last != nil && e.p.Service.StartFirst() {
		// Finishing an update start-first: keep its phase and containers, so a run
		// killed again is found where this one is.
		e.deploy = *last
		e.deploy.Outcome, e.deploy.Image = OutcomeDeploying, e.p.Service.Image
	}
	return writeDeploy(e.p.Root, e.deploy)
}

// waitServing waits for the new container; when it does not serve in time, the previous
// tree is restored and waited for, or, with none, the service is stopped.
func (e *executor) waitServing(ctx context.Context) error {
	svc := e.p.Service
	if e.deploy.Started.IsZero() {
		e.deploy = Deploy{Outcome: OutcomeDeploying, Image: svc.Image, Started: time.Now()}
	}
	// An update start-first always waits: its new container's record may go only once the
	// service's own announcer has taken over.
	if !svc.Wait && !e.p.startFirst {
		e.deploy.Outcome, e.deploy.Ended = OutcomeStarted, time.Now()
		return writeDeploy(e.p.Root, e.deploy)
	}
	old := ""
	if e.p.replaces {
		old = e.p.Current.ID
		if e.p.notID != "" {
			old = e.p.notID
		}
	}
	ct, err := waitServing(ctx, svc, e.p.Root, e.c, old)
	e.deploy.ImageID, e.deploy.Ended = ct.Image, time.Now()
	if ctx.Err() != nil && err != nil {
		return err // killed or cancelled: the next apply finishes the deploy
	}
	if e.p.startFirst {
		e.endNext(ctx)
	}
	if err == nil {
		e.deploy.Outcome = OutcomeOK
		return writeDeploy(e.p.Root, e.deploy)
	}
	e.deploy.Reason = err.Error()
	e.restorePort()
	return e.rollback(ctx, err, ct.ID)
}

// rollback puts the kept previous tree back, restarts what it changes, and waits for a
// container other than failedID to serve.
func (e *executor) rollback(ctx context.Context, cause error, failedID string) error {
	svc, root := e.p.Service, e.p.Root
	files, err := readPrevious(root)
	if err != nil {
		return fmt.Errorf("%v; and cannot read the previous tree: %w", cause, err)
	}
	if files == nil {
		e.down(ctx, root)
		e.deploy.Outcome = OutcomeFailed
		if err := writeDeploy(root, e.deploy); err != nil {
			e.warn("cannot record the failed deploy: %v", err)
		}
		return fmt.Errorf("%v; %s never served before, so it is left stopped (fix it and apply again)", cause, svc.Name)
	}
	prev := tree.Tree{Dir: e.p.Tree.Dir, Files: files}
	for _, s := range render.Services(svc.Name) {
		if slices.ContainsFunc(files, func(f tree.File) bool { return f.Path == filepath.ToSlash(filepath.Join(s.Path, "run")) }) {
			prev.Services = append(prev.Services, s)
		}
	}
	back := svc
	back.Pull, back.MaintenanceSet = spec.PullNever, false
	pl := &planner{svc: back, tree: prev, root: root, c: e.c, p: Plan{Service: back, Tree: prev, Root: root}}
	if err := pl.restore(); err != nil {
		return fmt.Errorf("%v; and cannot plan the rollback: %w", cause, err)
	}
	sub := &executor{p: pl.p, c: e.c, log: e.log}
	for _, a := range pl.p.Actions {
		e.log.Info("rollback: "+a.String(), "service", svc.Name)
		if err := sub.run(ctx, a); err != nil {
			return fmt.Errorf("%v; and the rollback failed: %w", cause, err)
		}
	}
	e.warnings = append(e.warnings, sub.warnings...)
	ct, werr := waitServing(ctx, back, root, e.c, failedID)
	e.deploy.Ended = time.Now()
	if werr != nil {
		e.deploy.Outcome = OutcomeFailed
		writeDeploy(root, e.deploy)
		return fmt.Errorf("%v; rolled back to the previous tree, which does not serve either: %v", cause, werr)
	}
	e.deploy.Outcome, e.deploy.RolledBackTo = OutcomeRolledBack, ct.Ref
	if err := writeDeploy(root, e.deploy); err != nil {
		e.warn("cannot record the rollback: %v", err)
	}
	return fmt.Errorf("%v; rolled back to the previous tree (image %s), which serves again", cause, ct.Ref)
}

// restore plans the tree back to pl.tree: its files written, links fixed, and every
// supervised service whose files changed restarted (the container always, since it runs
// the image that failed).
func (pl *planner) restore() error {
	d, err := compareTree(pl.root, pl.tree.Files)
	if err != nil {
		return err
	}
	links, stale, err := planLinks(pl.svc.ServiceDir, pl.root, pl.tree)
	if err != nil {
		return err
	}
	for _, l := range stale {
		pl.add(Action{Kind: Unlink, Path: l})
	}
	for _, c := range d.changes {
		p := filepath.Join(pl.root, filepath.FromSlash(c.path))
		if c.remove {
			pl.add(Action{Kind: RemoveFile, Path: p})
		} else {
			pl.add(Action{Kind: WriteFile, Path: p, File: tree.File{Path: c.path, Mode: c.mode, Data: c.data}})
		}
	}
	pl.add(Action{Kind: PruneDirs, Path: pl.root, Quiet: true})
	for _, l := range links {
		pl.add(Action{Kind: Link, Path: l.link, Target: l.target})
	}
	restarts := pl.restarts(d.changes)
	if !slices.Contains(restarts, pl.root) {
		restarts = append([]string{pl.root}, restarts...)
	}
	for _, dir := range restarts {
		if runit.Supervised(dir) {
			pl.add(Action{Kind: Restart, Path: dir, Async: dir == pl.root})
		} else {
			pl.add(Action{Kind: Start, Path: dir})
		}
	}
	return nil
}

// setMaintenance writes or removes the maintenance marker of the tree at root and tells
// the announcer.
func setMaintenance(ctx context.Context, root string, on bool, reason string) error {
	if on {
		if err := safefs.MkdirAll(root, filepath.Join(root, render.StatePath)); err != nil {
			return err
		}
		if err := safefs.WriteFile(statePath(root, maintenanceFile), []byte(reason+"\n"), 0o644); err != nil {
			return err
		}
	} else if err := removeFile(statePath(root, maintenanceFile)); err != nil {
		return err
	}
	SignalAnnouncer(ctx, root)
	return nil
}

// Maintenance puts the installed service name under svDir in or out of maintenance: its
// record is withheld while the container keeps running. changed is false when it already
// was as asked.
func Maintenance(ctx context.Context, svDir, name string, on bool, reason string) (changed bool, err error) {
	root := filepath.Join(svDir, render.Dir(name))
	if ok, _ := safefs.Exists(root); !ok {
		return false, fmt.Errorf("cannot set maintenance of %s: no tree %s (is the name right? is sv_dir %s right?)", name, root, svDir)
	}
	unlock, err := lock(ctx, svDir)
	if err != nil {
		return false, err
	}
	defer unlock()
	was, wasReason := readMaintenance(root)
	if was == on && (!on || wasReason == reason) {
		return false, nil
	}
	return true, setMaintenance(ctx, root, on, reason)
}

// SignalAnnouncer makes the announcer of the tree at root re-read its state directory at
// once (sv 1: SIGUSR1); without a running announcer there is nothing to tell.
func SignalAnnouncer(ctx context.Context, root string) {
	dir := filepath.Join(root, render.AnnouncerPath)
	if runit.Supervised(dir) {
		runit.Sv(ctx, 0, "1", dir)
	}
}
