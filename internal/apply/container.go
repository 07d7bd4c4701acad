package apply

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
)

// Containers is what apply needs from the container engine. The default talks to the
// Docker API; tests of the engine may pass another.
type Containers interface {
	// State returns the container's state ("running", "exited", ..., with ",healthy" etc.
	// appended when it has a health check) or "" when no container has that name.
	State(ctx context.Context, name string) (string, error)
	// Remove force-removes the container; a missing container is not an error.
	Remove(ctx context.Context, name string) error
}

// DockerContainers is Containers over the Docker Engine API (negotiating the API version,
// as the engine may be older than the client).
type DockerContainers struct{}

func (DockerContainers) client() (*client.Client, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
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
	defer c.Close()
	info, err := c.ContainerInspect(ctx, name)
	if errdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cannot inspect container %s: %w", name, err)
	}
	if info.State == nil {
		return "unknown", nil
	}
	s := string(info.State.Status)
	if info.State.Health != nil {
		s += "," + string(info.State.Health.Status)
	}
	return s, nil
}

// Remove implements Containers.
func (d DockerContainers) Remove(ctx context.Context, name string) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	defer c.Close()
	err = c.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("cannot remove container %s: %w", name, err)
	}
	return nil
}
