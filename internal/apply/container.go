package apply

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rundock/rundock/internal/dockerapi"
)

// Containers is what apply needs from the container engine. The default talks to the
// Docker API; tests of the engine may pass another.
type Containers interface {
	// State returns the container's state ("running", "exited", ..., with ",healthy" etc.
	// appended when it has a health check) or "" when no container has that name.
	State(ctx context.Context, name string) (string, error)
	// Inspect returns what a deploy needs to know of the container; a missing container
	// is a zero Container and no error.
	Inspect(ctx context.Context, name string) (Container, error)
	// ImageID returns the local image ID of ref, "" when there is no such local image.
	ImageID(ctx context.Context, ref string) (string, error)
	// Pull pulls ref from its registry.
	Pull(ctx context.Context, ref string) error
	// Remove force-removes the container; a missing container is not an error.
	Remove(ctx context.Context, name string) error
	// List returns every container by name, in one call (HealthLog left empty).
	List(ctx context.Context) (map[string]Container, error)
}

// Container is the part of a container's inspect data a deploy uses.
type Container struct {
	ID      string    `json:"id,omitempty"`
	Ref     string    `json:"image,omitempty"`    // the image reference it was started with
	Image   string    `json:"image_id,omitempty"` // the image ID it was started from
	Status  string    `json:"status,omitempty"`   // Docker's state: running, exited, ...
	Running bool      `json:"running"`
	Health  string    `json:"health,omitempty"` // "", starting, healthy, unhealthy
	Started time.Time `json:"started,omitzero"`
	// HealthLog is the output of the last health check, for failure messages.
	HealthLog string `json:"-"`
	// Ports are the host ports it publishes, by container port ("80/tcp": 8080), the
	// first binding of each (Inspect only).
	Ports map[string]int `json:"-"`
}

// logTailer is a Containers that can also return a container's last log lines; the
// start-first wait uses it, when the engine has it, to say why a new container that
// runit never saw did not serve.
type logTailer interface {
	Logs(ctx context.Context, name string, n int) (string, error)
}

// Serving reports whether the container runs and, when it has a health check, is healthy.
func (c Container) Serving() bool {
	return c.Running && (c.Health == "" || c.Health == "healthy")
}

// DockerContainers is Containers over the Docker Engine API (its version negotiated
// once per process, as the engine may be older than the client).
type DockerContainers struct{}

// dockerClient is the process's one client: a run asks many questions of the engine,
// and each would otherwise pay for a connection and a version negotiation.
var dockerClient = sync.OnceValues(dockerapi.FromEnv)

func (DockerContainers) client() (*dockerapi.Client, error) {
	c, err := dockerClient()
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the Docker engine: %w", err)
	}
	return c, nil
}

// State implements Containers.
func (d DockerContainers) State(ctx context.Context, name string) (string, error) {
	c, err := d.client()
	if err != nil {
		return "", err
	}
	info, err := c.ContainerInspect(ctx, name)
	if dockerapi.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if info.State == nil {
		return "unknown", nil
	}
	s := info.State.Status
	if info.State.Health != nil {
		s += "," + info.State.Health.Status
	}
	return s, nil
}

// Inspect implements Containers.
func (d DockerContainers) Inspect(ctx context.Context, name string) (Container, error) {
	c, err := d.client()
	if err != nil {
		return Container{}, err
	}
	info, err := c.ContainerInspect(ctx, name)
	if dockerapi.IsNotFound(err) {
		return Container{}, nil
	}
	if err != nil {
		return Container{}, err
	}
	out := Container{ID: info.ID, Image: info.Image}
	if info.Config != nil {
		out.Ref = info.Config.Image
	}
	if info.NetworkSettings != nil {
		for p, bs := range info.NetworkSettings.Ports {
			for _, b := range bs {
				if n, err := strconv.Atoi(b.HostPort); err == nil && n > 0 {
					if out.Ports == nil {
						out.Ports = map[string]int{}
					}
					out.Ports[p] = n
					break
				}
			}
		}
	}
	if info.State != nil {
		out.Status = info.State.Status
		out.Running = info.State.Running
		out.Started, _ = time.Parse(time.RFC3339Nano, info.State.StartedAt)
		if h := info.State.Health; h != nil {
			out.Health = h.Status
			if n := len(h.Log); n > 0 {
				out.HealthLog = strings.TrimSpace(h.Log[n-1].Output)
			}
		}
	}
	return out, nil
}

// ImageID implements Containers.
func (d DockerContainers) ImageID(ctx context.Context, ref string) (string, error) {
	c, err := d.client()
	if err != nil {
		return "", err
	}
	info, err := c.ImageInspect(ctx, ref)
	if dockerapi.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return info.ID, nil
}

// Pull implements Containers: it returns when the pull has ended, with the failure the
// registry reported, if any.
func (d DockerContainers) Pull(ctx context.Context, ref string) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	return c.ImagePull(ctx, ref)
}

// List implements Containers.
func (d DockerContainers) List(ctx context.Context) (map[string]Container, error) {
	c, err := d.client()
	if err != nil {
		return nil, err
	}
	list, err := c.ContainerList(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]Container{}
	for _, l := range list {
		ct := Container{ID: l.ID, Ref: l.Image, Image: l.ImageID, Status: l.State, Running: l.State == "running"}
		switch {
		case strings.Contains(l.Status, "(healthy)"):
			ct.Health = "healthy"
		case strings.Contains(l.Status, "(unhealthy)"):
			ct.Health = "unhealthy"
		case strings.Contains(l.Status, "(health: starting)"):
			ct.Health = "starting"
		}
		for _, n := range l.Names {
			out[strings.TrimPrefix(n, "/")] = ct
		}
	}
	return out, nil
}

// Logs returns the last n lines of the container's output, stdout and stderr merged.
func (d DockerContainers) Logs(ctx context.Context, name string, n int) (string, error) {
	c, err := d.client()
	if err != nil {
		return "", err
	}
	rc, err := c.ContainerLogs(ctx, name, n)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\n"), nil
}

// Remove implements Containers.
func (d DockerContainers) Remove(ctx context.Context, name string) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	if err := c.ContainerRemove(ctx, name); err != nil && !dockerapi.IsNotFound(err) {
		return err
	}
	return nil
}
