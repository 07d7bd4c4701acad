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
	"time"

	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/runit"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/spec"
)

// Timing of the executor.
const (
	// pickupTimeout bounds the wait for runsvdir to start a runsv for a new link: it scans
	// every 5 s at most, and runsv needs a moment to create supervise/.
	pickupTimeout = 15 * time.Second
	// stopGrace is added to stop_timeout to bound a graceful stop (control/t runs docker
	// stop, which itself waits stop_timeout before it kills).
	stopGrace = 20 * time.Second
	// wantTimeout bounds the wait for runsv to take an sv command (see runit.WaitWant).
	wantTimeout = 10 * time.Second
	// removalTimeout bounds the wait for docker run --rm to remove a stopped container.
	removalTimeout = 5 * time.Second
)

// stopWait is how long a graceful stop of svc may take: the drain, docker stop's timeout
// and a grace.
func stopWait(svc spec.Service) time.Duration {
	return time.Duration(svc.Drain+svc.StopTimeout)*time.Second + stopGrace
}

// removeFile removes p; a missing file is no error.
func removeFile(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot remove %s: %w", p, err)
	}
	return nil
}

// executor runs a plan's actions in order.
type executor struct {
	p        Plan
	c        Containers
	log      *slog.Logger
	warnings []string
	changed  bool           // an action that changes something ran
	moved    bool           // the pull moved the image behind the reference (IfImageMoved)
	diff     []FileDiff     // what the plan could not know: the image behind a tag
	deploy   Deploy         // the deploy in progress
	nextAnn  *nextAnnouncer // the announcer of an update start-first's new container
}

func (e *executor) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e.warnings = append(e.warnings, msg)
	e.log.Warn(msg, "service", e.p.Service.Name)
}

// Outcome is what executing a plan did.
type Outcome struct {
	// Changed is true when an action that changes something ran.
	Changed bool
	// Diff holds the changes only execution learns: the image behind a tag after a pull.
	Diff []FileDiff
	// Warnings say what did not go as planned without failing the run.
	Warnings []string
}

// Execute runs p. It stops at the first action that fails; what ran before stays done (a
// failed deploy has rolled back by then).
func Execute(ctx context.Context, p Plan, c Containers, log *slog.Logger) (Outcome, error) {
	if c == nil {
		c = DockerContainers{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &executor{p: p, c: c, log: log}
	defer e.stopNextAnnouncer()
	var err error
	report(ctx, Event{Service: p.Service.Name, Step: StepApply})
	for _, a := range p.Actions {
		if a.IfImageMoved && !e.moved {
			continue
		}
		report(ctx, actionEvent(p.Service.Name, a, stopWait(p.Service)))
		if !a.Quiet {
			log.Info(a.String(), "service", p.Service.Name)
			e.changed = true
		}
		if err = e.run(ctx, a); err != nil {
			break
		}
	}
	return Outcome{Changed: e.changed, Diff: e.diff, Warnings: e.warnings}, err
}

func (e *executor) run(ctx context.Context, a Action) error {
	svc := e.p.Service
	switch a.Kind {
	case Unlink:
		return e.stopLinked(ctx, a.Path)
	case CreateTree:
		if e.p.Tree.Stub {
			// A stub stands for a tree on disk; planning renders one it must write.
			return fmt.Errorf("cannot install %s: its tree was not rendered (a bug: please report it)", e.p.Root)
		}
		return safefs.CreateDir(svc.SvDir, e.p.Tree.Dir, e.p.Tree.Files)
	case WriteFile:
		if err := safefs.MkdirAll(e.p.Root, filepath.Dir(a.Path)); err != nil {
			return err
		}
		return safefs.WriteFile(a.Path, a.File.Data, a.File.Mode)
	case RemoveFile:
		return removeFile(a.Path)
	case PruneDirs:
		return e.pruneDirs()
	case Link:
		if err := os.MkdirAll(svc.ServiceDir, 0o755); err != nil {
			return fmt.Errorf("cannot create service_dir %s: %w", svc.ServiceDir, err)
		}
		return safefs.Symlink(a.Target, a.Path)
	case WaitPickup:
		if err := runit.WaitSupervised(ctx, a.Path, pickupTimeout); err != nil {
			return fmt.Errorf("cannot start %s: %w: no runsv supervises %s after %s; no runsvdir seems to watch %s (start runsvdir %s, or set service_dir to the directory runsvdir watches)",
				svc.Name, ErrNotPickedUp, a.Path, pickupTimeout, svc.ServiceDir, svc.ServiceDir)
		}
		return nil
	case Restart:
		if a.Async {
			// sv restart is an LSB command that waits; sv term does not: runsv runs
			// control/t (drain, docker stop) and, the service being wanted up, starts it again.
			_, err := runit.Sv(ctx, 0, "term", a.Path)
			return err
		}
		if out, err := runit.Sv(ctx, stopWait(svc), "restart", a.Path); err != nil {
			// sv -w also waits for ./check; a slow container is not an apply failure.
			e.warn("restart of %s not confirmed within %s: %s", a.Path, stopWait(svc), out)
		}
		return nil
	case Start:
		return e.start(ctx, a.Path)
	case Stop:
		return e.stop(ctx, a.Path)
	case RemoveContainer:
		return e.removeContainer(ctx, a)
	case RemoveTree:
		return safefs.RemoveDir(svc.SvDir, e.p.Tree.Dir)
	case Refuse:
		return fmt.Errorf("cannot deploy %s: %s", a.Path, a.Note)
	case Pull:
		return e.pull(ctx, a.Path)
	case Begin:
		return e.begin()
	case WaitServing:
		return e.waitServing(ctx)
	case StartNext:
		return e.startNext(ctx)
	case WaitNext:
		return e.waitNext(ctx)
	case Switch:
		return e.switchOver(ctx)
	case RemoveNext:
		return e.c.Remove(ctx, a.Path)
	case MaintenanceOn, MaintenanceOff:
		return setMaintenance(ctx, e.p.Root, a.Kind == MaintenanceOn, a.Note)
	}
	return fmt.Errorf("cannot run the plan: unknown action %q", a.Kind)
}

// start brings up a service that is wanted down, and waits until runsv has read the
// command: until then the next sv command (the next apply, an operator) would act on a
// stale status (see runit.WaitWant).
func (e *executor) start(ctx context.Context, dir string) error {
	if st, err := runit.ReadStatus(dir); err != nil || st.Want != "down" {
		return err
	}
	if _, err := runit.Sv(ctx, 0, "up", dir); err != nil {
		return err
	}
	if err := runit.WaitWant(ctx, dir, "up", wantTimeout); err != nil {
		e.warn("runsv has not taken sv up of %s within %s: %v", dir, wantTimeout, err)
	}
	return nil
}

// stop stops the service in dir gracefully and makes its runsv exit.
func (e *executor) stop(ctx context.Context, dir string) error {
	e.down(ctx, dir)
	return e.exit(ctx, dir)
}

// down stops the service in dir gracefully: sv down runs control/t, a docker stop.
func (e *executor) down(ctx context.Context, dir string) {
	wait := stopWait(e.p.Service)
	if runit.Supervised(dir) {
		if out, err := runit.Sv(ctx, wait, "down", dir); err != nil {
			e.warn("graceful stop of %s not confirmed within %s: %s", dir, wait, out)
		}
	}
}

// exit makes the runsv of dir exit and waits until it and its log's runsv have.
func (e *executor) exit(ctx context.Context, dir string) error {
	wait := stopWait(e.p.Service)
	if runit.Supervised(dir) {
		if _, err := runit.Sv(ctx, 0, "exit", dir); err != nil && runit.Supervised(dir) {
			return fmt.Errorf("cannot stop %s: %w", e.p.Service.Name, err)
		}
	}
	for _, d := range []string{dir, filepath.Join(dir, "log")} {
		if err := runit.WaitUnlocked(ctx, d, wait); err != nil {
			return fmt.Errorf("cannot stop %s: its runsv still runs after %s (check `sv status %s`): %w", e.p.Service.Name, wait, d, err)
		}
	}
	return nil
}

// stopLinked stops the service behind link and removes the link before its runsv exits,
// so runsvdir does not start a new one.
func (e *executor) stopLinked(ctx context.Context, link string) error {
	dir, err := filepath.EvalSymlinks(link)
	if err != nil {
		// A dangling link: nothing supervises it.
		if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cannot remove link %s: %w", link, err)
		}
		return nil
	}
	e.down(ctx, dir)
	if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot remove link %s: %w", link, err)
	}
	return e.exit(ctx, dir)
}

// pruneDirs removes directories of the tree that hold no rendered file any more (e.g.
// announcer/ after announce was unset) once no runsv owns them.
func (e *executor) pruneDirs() error {
	root := e.p.Root
	keep := map[string]bool{".": true}
	for _, f := range e.p.Tree.Files {
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			keep[dir] = true
		}
	}
	var prune func(rel string) error
	prune = func(rel string) error {
		entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return fmt.Errorf("cannot list %s: %w", filepath.Join(root, rel), err)
		}
		for _, en := range entries {
			if !en.IsDir() || en.Name() == "supervise" || (rel == "." && en.Name() == render.StatePath) {
				continue
			}
			r := path.Join(rel, en.Name())
			p := filepath.Join(root, filepath.FromSlash(r))
			switch {
			case keep[r]:
				if err := prune(r); err != nil {
					return err
				}
			case runit.Locked(p) || runit.Locked(filepath.Join(p, "log")):
				e.warn("%s is no longer rendered but a runsv still owns it; not removed", p)
			default:
				if err := os.RemoveAll(p); err != nil {
					return fmt.Errorf("cannot remove %s: %w", p, err)
				}
			}
		}
		return nil
	}
	return prune(".")
}

// removeContainer waits briefly for docker run --rm to remove a stopped container, then
// removes a leftover by force.
func (e *executor) removeContainer(ctx context.Context, a Action) error {
	if a.Quiet {
		e.warn("cannot check for a container %s: %s", a.Path, a.Note)
		return nil
	}
	deadline := time.Now().Add(removalTimeout)
	for {
		s, err := e.c.State(ctx, a.Path)
		if err == nil && s == "" {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot remove container %s: %w", a.Path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	e.warn("container %s was still there after the service stopped; removed it with docker rm -f", a.Path)
	return e.c.Remove(ctx, a.Path)
}
