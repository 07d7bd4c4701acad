package apply

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/runit"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/spec"
)

// Status is the supervision and container state of a service.
type Status struct {
	Service   runit.Status  `json:"service"`
	Log       *runit.Status `json:"log,omitempty"`
	Announcer *runit.Status `json:"announcer,omitempty"`
	// Container is the Docker state ("running", "running,healthy", "exited"), "" if none.
	Container string `json:"container"`
	// Running and Health are the container's state apart ("", starting, healthy,
	// unhealthy); Started is when it started, known from an inspect (GetStatus).
	Running bool      `json:"running"`
	Health  string    `json:"health,omitempty"`
	Started time.Time `json:"started,omitzero"`
	// CrashLoops is the number of short runs in a row the finish script counted since
	// the container last ran long enough (supervise/rundock-failures); it is reset only
	// when the container next exits, so it means a crash loop while the container is not
	// running.
	CrashLoops int `json:"crash_loops"`
	// Image and ImageID are the reference the container was started with and the image
	// it runs.
	Image   string `json:"image,omitempty"`
	ImageID string `json:"image_id,omitempty"`
	// Maintenance is true while the record is withheld on purpose; MaintenanceReason says
	// why.
	Maintenance       bool   `json:"maintenance,omitempty"`
	MaintenanceReason string `json:"maintenance_reason,omitempty"`
	// Deploy is the last start or restart by apply, with its outcome.
	Deploy *Deploy `json:"deploy,omitempty"`
	// Record is the service's record in etcd, nil when the tree announces nothing or it
	// was not asked for (ReadRecords fills it).
	Record *Record `json:"record,omitempty"`
	// DependsOn is what the service's container waits for before it starts (depends_on,
	// read from its run script); WaitingFor is the one it waits for now, nil when it waits
	// for nothing (its container started, or it has no dependencies).
	DependsOn  []spec.Dependency `json:"depends_on,omitempty"`
	WaitingFor *spec.Dependency  `json:"waiting_for,omitempty"`
	// Linked is true when the service is linked into service_dir.
	Linked bool `json:"linked"`
	// Installed is true when the tree exists in sv_dir.
	Installed bool `json:"installed"`
	// Next is the Docker state of a NAME.next container beside the service's (an update
	// start-first in progress, or one a killed apply left), "" when there is none.
	Next string `json:"next,omitempty"`
}

// GetStatus reports the runit and container state of a service without changing anything.
func GetStatus(ctx context.Context, svc spec.Service, c Containers) (Status, error) {
	if c == nil {
		c = DockerContainers{}
	}
	ct, err := c.Inspect(ctx, svc.Name)
	st, serr := localStatus(svc)
	st.setContainer(ct)
	if next, nerr := c.Inspect(ctx, render.NextName(svc.Name)); nerr == nil && next.ID != "" && next.ID != ct.ID {
		st.Next = next.Status
	}
	if serr != nil {
		return st, serr
	}
	return st, err
}

// Statuses reports the state of several services with one question to the container
// engine.
func Statuses(ctx context.Context, svcs []spec.Service, c Containers) ([]Status, error) {
	if c == nil {
		c = DockerContainers{}
	}
	all, err := c.List(ctx)
	out := make([]Status, len(svcs))
	for i, svc := range svcs {
		st, serr := localStatus(svc)
		st.setContainer(all[svc.Name])
		if next := all[render.NextName(svc.Name)]; next.ID != "" && next.ID != all[svc.Name].ID {
			st.Next = next.Status
		}
		if err == nil {
			err = serr
		}
		out[i] = st
	}
	return out, err
}

// localStatus is what the disk and runit say of svc.
func localStatus(svc spec.Service) (Status, error) {
	layout := render.Services(svc.Name)
	root := filepath.Join(svc.SvDir, render.Dir(svc.Name))
	var st Status
	st.Installed, _ = safefs.Exists(root)
	if fi, err := os.Lstat(filepath.Join(svc.ServiceDir, layout[0].Link)); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		st.Linked = true
	}
	if !st.Installed {
		return st, nil
	}
	var err error
	st.Service, err = runit.ReadStatus(root)
	st.Log = optionalStatus(filepath.Join(root, "log"))
	st.Announcer = optionalStatus(filepath.Join(root, filepath.FromSlash(layout[1].Path)))
	st.Maintenance, st.MaintenanceReason = readMaintenance(root)
	st.Deploy, _ = readDeploy(root)
	st.CrashLoops = readCount(filepath.Join(root, "supervise", failuresFile))
	st.DependsOn = DependsOn(svc.SvDir, svc.Name)
	if d, ok := Waiting(svc.SvDir, svc.Name); ok {
		st.WaitingFor = &d
	}
	return st, err
}

func (st *Status) setContainer(ct Container) {
	if ct.ID == "" {
		return
	}
	st.Container = ct.Status
	if ct.Health != "" {
		st.Container += "," + ct.Health
	}
	st.Image, st.ImageID = ct.Ref, ct.Image
	st.Running, st.Health, st.Started = ct.Running, ct.Health, ct.Started
}

// OutcomeStarted is the outcome of a deploy that apply did not wait for (wait: false).
const OutcomeStarted = "started, not waited for"

// failuresFile is where the rendered finish script counts short runs in a row.
const failuresFile = "rundock-failures"

// readCount reads a file holding a number, 0 when it is missing or holds none.
func readCount(p string) int {
	b, err := safefs.ReadFile(p)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return max(n, 0)
}

// ReadRecords fills in sts[i].Record for each of svcs whose installed tree announces,
// from the etcd cluster and key its announcer/run names. An etcd that does not answer
// is said in Record.Error; the rest of the status stands.
func ReadRecords(ctx context.Context, svcs []spec.Service, sts []Status) {
	roots := make([]string, len(svcs))
	for i, svc := range svcs {
		if sts[i].Installed {
			roots[i] = filepath.Join(svc.SvDir, render.Dir(svc.Name))
		}
	}
	readRecords(ctx, roots, sts)
}

// optionalStatus is the status of the service in dir, nil when the tree has none there.
func optionalStatus(dir string) *runit.Status {
	if ok, _ := safefs.Exists(filepath.Join(dir, "run")); !ok {
		return nil
	}
	s, _ := runit.ReadStatus(dir)
	return &s
}
