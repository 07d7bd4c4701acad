package apply

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"

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
	// Linked is true when the service is linked into service_dir.
	Linked bool `json:"linked"`
	// Installed is true when the tree exists in sv_dir.
	Installed bool `json:"installed"`
}

// GetStatus reports the runit and container state of a service without changing anything.
func GetStatus(ctx context.Context, svc spec.Service, c Containers) (Status, error) {
	if c == nil {
		c = DockerContainers{}
	}
	ct, err := c.Inspect(ctx, svc.Name)
	st, serr := localStatus(svc)
	st.setContainer(ct)
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
}

// optionalStatus is the status of the service in dir, nil when the tree has none there.
func optionalStatus(dir string) *runit.Status {
	if ok, _ := safefs.Exists(filepath.Join(dir, "run")); !ok {
		return nil
	}
	s, _ := runit.ReadStatus(dir)
	return &s
}
