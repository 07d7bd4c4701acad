package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/runit"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/tree"
)

// An update start-first (spec.UpdateStartFirst) replaces a serving container without a
// gap: the new tree's run starts NAME.next beside it (run next [PORT]), a second
// announcer, run by rundock, announces it as INSTANCE-next, and once it serves, the old
// container drains and stops through control/t as in every restart; runit's next run
// adopts NAME.next (rename, docker attach), so one runit service supervises one container
// again, and the service's own announcer takes its record over. The deploy journal says
// how far it got (Deploy.Phase), so the next apply finishes what a killed one left.

// The steps of an update start-first.
const (
	// StartNext starts the new container beside the old one, from the new tree's run,
	// and the announcer of its own record.
	StartNext Kind = "start beside the old container:"
	// WaitNext waits until the new container serves and its record is in etcd; when it
	// does not, it is removed, the previous tree's files are put back, and the run fails
	// with the old container untouched.
	WaitNext Kind = "wait for the new container"
	// Switch drains and stops the old container (sv term: control/t); runit's run then
	// adopts the new one.
	Switch Kind = "switch"
	// RemoveNext removes a new container an interrupted update left behind.
	RemoveNext Kind = "remove leftover container"
)

const (
	// nextStartTimeout bounds run next: address lookups and docker run --detach of an
	// image that is on the host by then.
	nextStartTimeout = 2 * time.Minute
	// announcerStopTimeout bounds the second announcer's exit on TERM (it takes 0.5 s
	// at most with etcd down).
	announcerStopTimeout = 3 * time.Second
)

// nextPort is the host port the new container publishes: of announce and update_port,
// the one the running container cur does not hold; 0 with announce_as container.
func nextPort(svc spec.Service, cur Container) int {
	if !svc.HostPublished() {
		return 0
	}
	if heldPort(svc, cur) == svc.UpdatePort {
		return svc.Announce
	}
	return svc.UpdatePort
}

// heldPort is the host port cur publishes for the service's container port (0: none).
func heldPort(svc spec.Service, cur Container) int {
	return cur.Ports[strconv.Itoa(svc.Port)+"/tcp"]
}

// recordPort is the port the service's record must carry: the container port with
// announce_as container; else, with start-first, the host port the service holds
// (render.PortFile, as run reads it); else announce.
func recordPort(svc spec.Service, root string) int {
	switch {
	case svc.AnnouncesContainer():
		return svc.Port
	case svc.StartFirst() && svc.UpdatePort != 0:
		b, err := safefs.ReadFile(statePath(root, render.PortFile))
		if n, _ := strconv.Atoi(string(trimNewline(b))); err == nil && n == svc.UpdatePort {
			return n
		}
	}
	return svc.Announce
}

// startFirstSteps are the actions that replace the restart of the container service in
// an update start-first.
func (pl *planner) startFirstSteps(ifMoved bool, why string) []Action {
	svc := pl.svc
	next := render.NextName(svc.Name)
	port := nextPort(svc, pl.p.Current)
	pl.p.startFirst, pl.p.nextPort = true, port
	note := next + " from the new files"
	if port != 0 {
		note += ", on host port " + strconv.Itoa(port)
	}
	if why != "" {
		note += "; " + why
	}
	return []Action{
		{Kind: StartNext, Path: pl.root, Note: note, IfImageMoved: ifMoved},
		{Kind: WaitNext, Path: next, Quiet: true, IfImageMoved: ifMoved,
			Note: "running, healthy, announced as " + svc.Instance + render.NextInstanceSuffix + "; else removed and the old container left serving"},
		{Kind: Switch, Path: pl.root, IfImageMoved: ifMoved,
			Note: "drain and stop the old container " + short(pl.p.Current.ID) + "; runit's run adopts " + next},
	}
}

// startNext starts the new container beside the old one and the announcer of its record.
func (e *executor) startNext(ctx context.Context) error {
	svc, root := e.p.Service, e.p.Root
	next := render.NextName(svc.Name)
	if err := e.c.Remove(ctx, next); err != nil {
		return e.abortNext(ctx, err)
	}
	e.deploy.Phase, e.deploy.OldID, e.deploy.NextID = PhaseNext, e.p.Current.ID, ""
	e.deploy.NextPort, e.deploy.PrevPort = e.p.nextPort, heldPort(svc, e.p.Current)
	if err := writeDeploy(root, e.deploy); err != nil {
		return e.abortNext(ctx, err)
	}
	args := []string{"next"}
	if e.p.nextPort != 0 {
		args = append(args, strconv.Itoa(e.p.nextPort))
	}
	sctx, cancel := context.WithTimeout(ctx, nextStartTimeout)
	defer cancel()
	cmd := exec.CommandContext(sctx, "/bin/sh", append([]string{"./run"}, args...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return e.abortNext(ctx, fmt.Errorf("%s: cannot start %s: %s run %s: %v: %s", svc.Name, next, root, args[0], err, oneLine(string(out))))
	}
	ct, err := e.c.Inspect(ctx, next)
	if err != nil || ct.ID == "" {
		return e.abortNext(ctx, fmt.Errorf("%s: %s exited as soon as it started (docker said: %s)", svc.Name, next, oneLine(string(out))))
	}
	e.deploy.NextID = ct.ID
	if err := writeDeploy(root, e.deploy); err != nil {
		return e.abortNext(ctx, err)
	}
	if err := e.startNextAnnouncer(); err != nil {
		return e.abortNext(ctx, err)
	}
	return nil
}

// nextAnnouncer is the announcer of the new container's own record, run by rundock from
// the tree's announcer/run for the length of the update.
type nextAnnouncer struct {
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuffer
}

// syncBuffer is a bytes.Buffer the process's output and the executor share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<16 {
		s.b.Reset()
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startNextAnnouncer runs announcer/run with the new container's instance and name. The
// kernel sends it TERM when rundock dies (Pdeathsig), so a killed rundock leaves no
// unsupervised process: its record goes with it, and runit finishes the switch.
func (e *executor) startNextAnnouncer() error {
	svc := e.p.Service
	dir := filepath.Join(e.p.Root, render.AnnouncerPath)
	cmd := exec.Command("/bin/sh", "./run", "--instance", svc.Instance+render.NextInstanceSuffix, "--container", render.NextName(svc.Name))
	cmd.Dir = dir
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = announcerAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: cannot start the announcer of %s (%s/run): %w", svc.Name, render.NextName(svc.Name), dir, err)
	}
	a := &nextAnnouncer{cmd: cmd, done: make(chan struct{}), out: out}
	go func() { cmd.Wait(); close(a.done) }()
	e.nextAnn = a
	return nil
}

// stopNextAnnouncer stops the second announcer, which deletes its record on TERM.
func (e *executor) stopNextAnnouncer() {
	a := e.nextAnn
	if a == nil {
		return
	}
	e.nextAnn = nil
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(announcerStopTimeout):
		a.cmd.Process.Kill()
		<-a.done
		e.warn("the announcer of %s did not exit within %s of TERM; killed it (its record expires with its lease)", render.NextName(e.p.Service.Name), announcerStopTimeout)
	}
}

// waitNext waits until the new container runs, is healthy when it has a health check, and
// its record (instance INSTANCE-next) is in etcd, at most wait_timeout seconds; when it does
// not, the update is undone.
func (e *executor) waitNext(ctx context.Context) error {
	svc := e.p.Service
	next, id := render.NextName(svc.Name), e.deploy.NextID
	var rec *recordCheck
	if on, _ := readMaintenance(e.p.Root); svc.Announce != 0 && !on {
		port := e.p.nextPort
		if port == 0 {
			port = svc.Port
		}
		r, err := newRecordCheck(svc, svc.Instance+render.NextInstanceSuffix, port)
		if err != nil {
			return e.abortNext(ctx, err)
		}
		defer r.close()
		rec = r
	}
	deadline := time.Now().Add(time.Duration(svc.WaitTimeout) * time.Second)
	tk := newTicker(ctx, svc.Name, WaitNext, time.Duration(svc.WaitTimeout)*time.Second)
	var last Container
	missing := ""
	for {
		ct, err := e.c.Inspect(ctx, id)
		gone := false
		switch {
		case err != nil:
			missing = err.Error()
		case ct.ID == "":
			missing, gone = next+" exited (docker removed it)", true
		case !ct.Running:
			missing, gone = next+" is "+ct.Status, true
		case !ct.Serving():
			missing = next + " is " + ct.Health
		case rec != nil:
			missing = rec.check(ctx)
		default:
			missing = ""
		}
		if ct.ID != "" {
			last = ct
		}
		if missing == "" {
			return nil
		}
		tk.tick("waiting for " + next + ": " + missing)
		if gone || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return e.abortNext(ctx, fmt.Errorf("%s does not serve yet (%s): %w", next, missing, ctx.Err()))
		case <-time.After(250 * time.Millisecond):
		}
	}
	msg := fmt.Sprintf("%s: the new container %s did not serve within wait_timeout %d s: %s", svc.Name, next, svc.WaitTimeout, missing)
	if last.HealthLog != "" {
		msg += "; last health check: " + oneLine(last.HealthLog)
	}
	if lt, ok := e.c.(logTailer); ok && last.ID != "" {
		if lines, err := lt.Logs(ctx, last.ID, logLines); err == nil && lines != "" {
			msg += "; last log lines:\n" + lines
		}
	}
	if e.nextAnn != nil && missing != "" && rec != nil {
		if out := lastLines(e.nextAnn.out.String(), 3); out != "" {
			msg += "\nits announcer said:\n" + out
		}
	}
	return e.abortNext(ctx, errors.New(msg))
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := bytes.Split(bytes.TrimRight([]byte(s), "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// abortNext undoes an update start-first before the switch: the second announcer stops
// (its record goes), the new container is removed, and the previous tree's files are
// written back without restarting anything, since the old container never stopped.
func (e *executor) abortNext(ctx context.Context, cause error) error {
	svc, root := e.p.Service, e.p.Root
	next := render.NextName(svc.Name)
	e.stopNextAnnouncer()
	if ctx.Err() != nil {
		// Cancelled (a signal): remove the new container, which nobody supervises, and
		// leave the rest to the next apply, which finds the journal and starts over.
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if ct, err := e.c.Inspect(rctx, svc.Name); err != nil || ct.ID != e.deploy.NextID || ct.ID == "" {
			e.c.Remove(rctx, next)
		}
		return cause
	}
	// The old container crashed meanwhile and runit's run adopted the new one: it is the
	// service's container now, and the update ends as a stop-first one would.
	if id := e.deploy.NextID; id != "" {
		if ct, err := e.c.Inspect(ctx, svc.Name); err == nil && ct.ID == id {
			e.deploy.Reason = cause.Error()
			return e.rollback(ctx, cause, id)
		}
	}
	var undone []string
	if err := e.c.Remove(ctx, next); err != nil {
		e.warn("cannot remove %s: %v", next, err)
	} else {
		undone = append(undone, "removed "+next)
	}
	files, err := readPrevious(root)
	if err != nil || files == nil {
		e.deploy.Outcome, e.deploy.Reason, e.deploy.Ended = OutcomeFailed, cause.Error(), time.Now()
		writeDeploy(root, e.deploy)
		return fmt.Errorf("%v; %s; the old container %s was not touched, but the new files stay (no previous tree was kept: %v): fix the service and apply again", cause, join(undone), short(e.p.Current.ID), err)
	}
	if err := e.restoreFiles(ctx, files); err != nil {
		return fmt.Errorf("%v; and cannot put the previous files back: %w", cause, err)
	}
	undone = append(undone, "put the previous files back")
	e.deploy.Outcome, e.deploy.Reason, e.deploy.Ended = OutcomeRolledBack, cause.Error(), time.Now()
	e.deploy.RolledBackTo = e.p.Current.Ref
	if err := writeDeploy(root, e.deploy); err != nil {
		e.warn("cannot record the undone update: %v", err)
	}
	return fmt.Errorf("%v; %s; the old container %s (image %s) was not touched and still serves", cause, join(undone), short(e.p.Current.ID), e.p.Current.Ref)
}

func join(parts []string) string {
	if len(parts) == 0 {
		return "nothing undone"
	}
	return strings.Join(parts, ", ")
}

// restoreFiles writes the previous tree back, files and links, restarting nothing.
func (e *executor) restoreFiles(ctx context.Context, files []tree.File) error {
	svc := e.p.Service
	prev := tree.Tree{Dir: e.p.Tree.Dir, Files: files}
	for _, s := range render.Services(svc.Name) {
		run := filepath.ToSlash(filepath.Join(s.Path, "run"))
		for _, f := range files {
			if f.Path == run {
				prev.Services = append(prev.Services, s)
				break
			}
		}
	}
	pl := &planner{svc: svc, tree: prev, root: e.p.Root, c: e.c, p: Plan{Service: svc, Tree: prev, Root: e.p.Root}}
	if err := pl.restore(); err != nil {
		return err
	}
	sub := &executor{p: pl.p, c: e.c, log: e.log}
	for _, a := range pl.p.Actions {
		if a.Kind == Restart || a.Kind == Start {
			continue
		}
		e.log.Info("undo: "+a.String(), "service", svc.Name)
		if err := sub.run(ctx, a); err != nil {
			return err
		}
	}
	e.warnings = append(e.warnings, sub.warnings...)
	return nil
}

// switchOver records the switch, writes the host port the service now holds for run's
// later starts, and stops the old container through control/t (sv term: drain, docker
// stop); runit's run then adopts the new one.
func (e *executor) switchOver(ctx context.Context) error {
	root := e.p.Root
	if e.p.nextPort != 0 {
		if err := safefs.MkdirAll(root, filepath.Join(root, render.StatePath)); err != nil {
			return e.abortNext(ctx, err)
		}
		if err := safefs.WriteFile(statePath(root, render.PortFile), []byte(strconv.Itoa(e.p.nextPort)+"\n"), 0o644); err != nil {
			return e.abortNext(ctx, err)
		}
	}
	e.deploy.Phase = PhaseSwitch
	if err := writeDeploy(root, e.deploy); err != nil {
		return err
	}
	return svTerm(ctx, root)
}

// svTerm sends sv term to the service in dir: runsv runs control/t (drain, docker stop)
// and, the service being wanted up, starts run again. Tests replace it.
var svTerm = func(ctx context.Context, dir string) error {
	_, err := runit.Sv(ctx, 0, "term", dir)
	return err
}

// endNext ends an update start-first once the wait for serving is over: the second
// announcer stops (the service's own announcer has the record by then), and a new
// container runit's run did not adopt is removed.
func (e *executor) endNext(ctx context.Context) {
	e.stopNextAnnouncer()
	next := render.NextName(e.p.Service.Name)
	if s, err := e.c.State(ctx, next); err == nil && s != "" {
		if err := e.c.Remove(ctx, next); err != nil {
			e.warn("cannot remove %s, which runit's run did not adopt: %v", next, err)
		} else {
			e.warn("removed %s, which runit's run did not adopt (it started a container of its own)", next)
		}
	}
}

// restorePort puts the host port the old container held back for the previous tree's run,
// before a rollback after the switch.
func (e *executor) restorePort() {
	if e.deploy.PrevPort == 0 {
		return
	}
	p := statePath(e.p.Root, render.PortFile)
	if err := safefs.WriteFile(p, []byte(strconv.Itoa(e.deploy.PrevPort)+"\n"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
		e.warn("cannot write %s: %v", p, err)
	}
}

// drainFile is where control/t names the container it drains (the announcer's DrainFile).
const drainFile = "drain"

// readDrain returns the container ID control/t last drained, "" for none.
func readDrain(root string) string {
	b, err := safefs.ReadFile(statePath(root, drainFile))
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}
