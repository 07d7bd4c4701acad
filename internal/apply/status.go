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
	layout := render.Services(svc.Name)
	root := filepath.Join(svc.SvDir, render.Dir(svc.Name))
	var st Status
	st.Installed, _ = safefs.Exists(root)
	if fi, err := os.Lstat(filepath.Join(svc.ServiceDir, layout[0].Link)); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		st.Linked = true
	}
	var err error
	if st.Installed {
		st.Service, err = runit.ReadStatus(root)
		st.Log = optionalStatus(filepath.Join(root, "log"))
		st.Announcer = optionalStatus(filepath.Join(root, filepath.FromSlash(layout[1].Path)))
	}
	if st.Installed {
		st.Maintenance, st.MaintenanceReason = readMaintenance(root)
		st.Deploy, _ = readDeploy(root)
	}
	ct, cerr := c.Inspect(ctx, svc.Name)
	if ct.ID != "" {
		st.Container = ct.Status
		if ct.Health != "" {
			st.Container += "," + ct.Health
		}
		st.Image, st.ImageID = ct.Ref, ct.Image
	}
	if err == nil {
		err = cerr
	}
	return st, err
}

// optionalStatus is the status of the service in dir, nil when the tree has none there.
func optionalStatus(dir string) *runit.Status {
	if ok, _ := safefs.Exists(filepath.Join(dir, "run")); !ok {
		return nil
	}
	s, _ := runit.ReadStatus(dir)
	return &s
}
