package dockerapi

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ContainerInfo is the part of GET /containers/{name}/json that is read.
type ContainerInfo struct {
	ID              string `json:"Id"`
	Image           string // the image ID it was started from
	Config          *ContainerConfig
	State           *ContainerState
	NetworkSettings *NetworkSettings
}

// ContainerConfig is the part of a container's configuration that is read.
type ContainerConfig struct {
	Image string // the image reference it was started with
}

// ContainerState is a container's state in its inspect data.
type ContainerState struct {
	Status     string // created, running, paused, restarting, removing, exited, dead
	Running    bool
	Paused     bool
	Restarting bool
	StartedAt  string // RFC 3339
	// Health is nil when the container has no health check.
	Health *Health
}

// Health is a container's health check state.
type Health struct {
	Status string // none, starting, healthy, unhealthy
	Log    []HealthResult
}

// HealthResult is one run of a health check.
type HealthResult struct {
	Output string
}

// NetworkSettings are a container's networks and published ports.
type NetworkSettings struct {
	Networks map[string]*EndpointSettings
	// Ports are the host bindings by container port ("8080/tcp"); a port that is
	// exposed but not published has none.
	Ports map[string][]PortBinding
}

// EndpointSettings is a container's endpoint on one network.
type EndpointSettings struct {
	IPAddress         string
	GlobalIPv6Address string
}

// PortBinding is one host address and port a container port is published on.
type PortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string
}

// ContainerSummary is one entry of GET /containers/json.
type ContainerSummary struct {
	ID      string `json:"Id"`
	Names   []string
	Image   string
	ImageID string
	State   string // running, exited, ...
	Status  string // "Up 2 minutes (healthy)"
}

// ContainerInspect returns the inspect data of the container name (a name or an ID); a
// missing container is an error for which IsNotFound is true.
func (c *Client) ContainerInspect(ctx context.Context, name string) (ContainerInfo, error) {
	var info ContainerInfo
	if err := c.getJSON(ctx, "/containers/"+name+"/json", nil, &info); err != nil {
		return ContainerInfo{}, fmt.Errorf("cannot inspect container %s: %w", name, err)
	}
	return info, nil
}

// ContainerList returns every container, running or not.
func (c *Client) ContainerList(ctx context.Context) ([]ContainerSummary, error) {
	var list []ContainerSummary
	if err := c.getJSON(ctx, "/containers/json", url.Values{"all": {"1"}}, &list); err != nil {
		return nil, fmt.Errorf("cannot list containers: %w", err)
	}
	return list, nil
}

// ContainerRemove force-removes the container name (killing it when it runs); a missing
// container is an error for which IsNotFound is true.
func (c *Client) ContainerRemove(ctx context.Context, name string) error {
	if err := c.call(ctx, http.MethodDelete, "/containers/"+name, url.Values{"force": {"1"}}); err != nil {
		return fmt.Errorf("cannot remove container %s: %w", name, err)
	}
	return nil
}

// ContainerStart starts the container name; one that runs already is no error.
func (c *Client) ContainerStart(ctx context.Context, name string) error {
	if err := c.call(ctx, http.MethodPost, "/containers/"+name+"/start", nil); err != nil {
		return fmt.Errorf("cannot start container %s: %w", name, err)
	}
	return nil
}

// ContainerStop stops the container name: its stop signal, then SIGKILL after timeout
// seconds.
func (c *Client) ContainerStop(ctx context.Context, name string, timeout int) error {
	if err := c.call(ctx, http.MethodPost, "/containers/"+name+"/stop", url.Values{"t": {strconv.Itoa(timeout)}}); err != nil {
		return fmt.Errorf("cannot stop container %s: %w", name, err)
	}
	return nil
}

// ContainerKill sends signal ("KILL", "SIGTERM", "15") to the container name.
func (c *Client) ContainerKill(ctx context.Context, name, signal string) error {
	if err := c.call(ctx, http.MethodPost, "/containers/"+name+"/kill", url.Values{"signal": {signal}}); err != nil {
		return fmt.Errorf("cannot kill container %s: %w", name, err)
	}
	return nil
}

// ContainerWait waits until the container name no longer runs (at once when it does not)
// or ctx is done, and returns its exit code.
func (c *Client) ContainerWait(ctx context.Context, name string) (int, error) {
	resp, err := c.do(ctx, http.MethodPost, "/containers/"+name+"/wait", url.Values{"condition": {"not-running"}})
	if err != nil {
		return 0, fmt.Errorf("cannot wait for container %s: %w", name, err)
	}
	defer resp.Body.Close()
	var r struct {
		StatusCode int
		Error      *struct{ Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return 0, fmt.Errorf("cannot wait for container %s: %w", name, err)
	}
	if r.Error != nil && r.Error.Message != "" {
		return r.StatusCode, fmt.Errorf("cannot wait for container %s: %s", name, r.Error.Message)
	}
	return r.StatusCode, nil
}

// ContainerLogs returns a reader of the last tail lines of the container's output and
// the output that follows until now, stdout and stderr merged in the order the engine
// sent them. The caller closes it.
func (c *Client) ContainerLogs(ctx context.Context, name string, tail int) (io.ReadCloser, error) {
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "tail": {strconv.Itoa(tail)}}
	resp, err := c.do(ctx, http.MethodGet, "/containers/"+name+"/logs", q)
	if err != nil {
		return nil, fmt.Errorf("cannot read the log of container %s: %w", name, err)
	}
	// A container with a TTY has one raw stream, any other stdout and stderr in frames.
	// The Content-Type says which since API 1.42; before, it said raw-stream for both,
	// and the frames are what every caller of the SDK read.
	raw := resp.Header.Get("Content-Type") == "application/vnd.docker.raw-stream" && !olderThan(c.negotiated(), "1.42")
	return &logReader{r: bufio.NewReader(resp.Body), c: resp.Body, name: name, raw: raw}, nil
}

// logReader reads a log: the raw stream as it is, else the payload of Docker's
// multiplexed stream: frames of an 8-byte header (stream: 0 stdin, 1 stdout, 2 stderr,
// 3 an engine error; 3 zero bytes; a big-endian uint32 length) and that many bytes. Its
// errors name the container.
type logReader struct {
	r    *bufio.Reader
	c    io.Closer
	name string
	raw  bool
	left uint32 // payload bytes left in the current frame
	err  error
}

func (l *logReader) Read(p []byte) (int, error) {
	if l.raw {
		n, err := l.r.Read(p)
		return n, l.named(err)
	}
	for l.left == 0 {
		if l.err != nil {
			return 0, l.err
		}
		var h [8]byte
		if _, err := io.ReadFull(l.r, h[:]); err != nil {
			l.err = l.named(err)
			continue
		}
		n := binary.BigEndian.Uint32(h[4:])
		switch h[0] {
		case 0, 1, 2:
			l.left = n
		case 3:
			msg, _ := io.ReadAll(io.LimitReader(l.r, int64(n)))
			l.err = l.named(errors.New(strings.TrimSpace(string(msg))))
		default:
			l.err = l.named(fmt.Errorf("not a multiplexed stream (frame type %d)", h[0]))
		}
	}
	if uint32(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= uint32(n)
	if errors.Is(err, io.EOF) && l.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, l.named(err)
}

// named says whose log err is about; nil and io.EOF stay as they are.
func (l *logReader) named(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return fmt.Errorf("cannot read the log of container %s: %w", l.name, err)
}

func (l *logReader) Close() error {
	return l.c.Close()
}
