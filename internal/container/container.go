// Package container follows one Docker container by name through the Docker API and
// reports whether it can serve: running and, when it has a health check, healthy.
//
// The watcher subscribes to the events API first and inspects the container second, so
// no event falls between the two; it does the same again after every reconnect of the
// events stream (a Docker daemon restart), so a missed event never leaves a stale state.
// Events that end service (die, stop, destroy, pause, unhealthy, a kill with a
// terminating signal) take effect at once without an inspect; events that may begin
// service (start, unpause, healthy, a rename to the followed name) are confirmed by an inspect, which also reads the
// container's IP address.
package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rundock/rundock/internal/backoff"
	"github.com/rundock/rundock/internal/dockerapi"
)

// State is what the watcher knows about the container.
type State struct {
	// ID is the container's full ID (64 hex digits) from inspect or from the event that
	// brought the state, "" when no container is known. A drain names the container it
	// drains by ID, so a replacement under the same name is not drained with it.
	ID      string
	Exists  bool
	Running bool
	// Health is "" when the container has no health check, else starting, healthy or
	// unhealthy.
	Health string
	// IP is the container's IPv4 address on the chosen network ("" when it has none,
	// e.g. with --network host).
	IP string
	// IP6 is its global IPv6 address on the chosen network ("" when it has none: a
	// network without IPv6).
	IP6 string
	// HostPort is the host port Docker publishes for the Watcher's Port (0 when the
	// Watcher has no Port or the container publishes none for it). With update
	// start-first a container may run on either of two host ports, so the announcer
	// takes the port from the container rather than from its flags.
	HostPort int
	// Reason says why the state is what it is, for logs: "running", "healthy",
	// "event die", "not found", "docker unreachable: ...".
	Reason string
}

// Up reports whether the container should be announced: running, and healthy when it
// has a health check.
func (s State) Up() bool {
	return s.Exists && s.Running && (s.Health == "" || s.Health == healthy)
}

// Watcher follows the container Name. Network names the Docker network whose IP is
// reported; empty means the first network (by name) on which the container has an IPv4
// address.
type Watcher struct {
	Name    string
	Network string
	// Port is a container port ("8080/tcp") whose published host port State.HostPort
	// reports; "" for none.
	Port   string
	Client *dockerapi.Client
	Logger *slog.Logger
}

// Docker's event actions and health states that the watcher reads.
const (
	actionStart     = "start"
	actionDie       = "die"
	actionStop      = "stop"
	actionKill      = "kill"
	actionDestroy   = "destroy"
	actionPause     = "pause"
	actionUnpause   = "unpause"
	actionRename    = "rename"
	actionHealth    = "health_status" // the filter; events are "health_status: healthy" etc.
	actionUnhealthy = actionHealth + ": unhealthy"

	healthy       = "healthy"
	noHealthcheck = "none"
)

// watchedActions are the events that can change whether the container serves; others
// (exec_* from health checks, attach, ...) are not subscribed to.
var watchedActions = []string{
	actionStart, actionDie, actionStop, actionKill, actionDestroy, actionPause, actionUnpause,
	actionHealth, actionRename,
}

// Run reports the container's state on out until ctx is done: first the inspected state,
// then every change. It reconnects to Docker with capped, jittered backoff and reports a
// not-up state when Docker cannot be reached at start; after that, the last known state
// stands until an inspect on reconnect replaces it.
func (w *Watcher) Run(ctx context.Context, out chan<- State) error {
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	filters := map[string][]string{"type": {"container"}, "container": {w.Name}, "event": watchedActions}
	var last *State
	send := func(s State) bool {
		if last != nil && sameState(*last, s) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case out <- s:
			last = &s
			return true
		}
	}
	bo := backoff.Backoff{Min: 250 * time.Millisecond, Max: 5 * time.Second}
	delay, reachable := time.Duration(0), true
	for {
		if delay > 0 && !backoff.Sleep(ctx, delay) {
			return ctx.Err()
		}
		delay = bo.Next()

		streamCtx, cancel := context.WithCancel(ctx)
		msgs, errs := w.Client.Events(streamCtx, filters)
		st, err := w.inspect(ctx)
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Unknown at start: not up. Later, keep the last state: a daemon that
			// crashed leaves its containers running, and one that stops cleanly sends
			// their die events before the stream ends; the next inspect corrects it.
			if last == nil && !send(State{Reason: "docker unreachable: " + err.Error()}) {
				return ctx.Err()
			}
			if reachable {
				log.Warn("docker unreachable, retrying", "container", w.Name, "err", err)
				reachable = false
			}
			continue
		}
		if !reachable {
			log.Info("docker reachable again", "container", w.Name)
			reachable = true
		}
		if !send(st) {
			cancel()
			return ctx.Err()
		}
		err = w.follow(ctx, msgs, errs, send)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Warn("docker events stream lost, reconnecting", "container", w.Name, "err", err)
		bo.Reset() // the stream was up: retry at once, then back off
		delay = 0
	}
}

// follow applies events until the stream fails; it returns the stream's error.
func (w *Watcher) follow(ctx context.Context, msgs <-chan dockerapi.Message, errs <-chan error, send func(State) bool) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errs:
			if err == nil {
				err = errors.New("stream closed")
			}
			return err
		case m := <-msgs:
			if !w.matches(m) {
				continue
			}
			switch effect(m) {
			case effectDown:
				if !send(State{ID: m.Actor.ID, Exists: m.Action != actionDestroy, Reason: "event " + describe(m)}) {
					return ctx.Err()
				}
			case effectInspect:
				st, err := w.inspect(ctx)
				if err != nil {
					return fmt.Errorf("cannot inspect after event %s: %w", describe(m), err)
				}
				st.Reason = "event " + describe(m) + ", " + st.Reason
				if !send(st) {
					return ctx.Err()
				}
			}
		}
	}
}

// matches reports whether m is about the followed container. Docker's container filter
// matches name prefixes, so following "web" also streams the events of "web-db". A rename
// matches under its old name too (update start-first renames web.next to web).
func (w *Watcher) matches(m dockerapi.Message) bool {
	name := strings.TrimPrefix(m.Actor.Attributes["name"], "/")
	old := strings.TrimPrefix(m.Actor.Attributes["oldName"], "/")
	return name == w.Name || m.Actor.ID == w.Name || (m.Action == actionRename && old == w.Name) ||
		(len(w.Name) >= 12 && strings.HasPrefix(m.Actor.ID, w.Name) && strings.Trim(w.Name, "0123456789abcdef") == "")
}

func (w *Watcher) inspect(ctx context.Context) (State, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := w.Client.ContainerInspect(ctx, w.Name)
	if dockerapi.IsNotFound(err) {
		return State{Reason: "not found"}, nil
	}
	if err != nil {
		return State{}, err
	}
	st := FromInspect(resp, w.Network)
	st.HostPort = PublishedPort(resp, w.Port)
	return st, nil
}

// PublishedPort returns the host port Docker publishes for the container port port
// ("8080/tcp"), the first binding's; 0 when port is "" or not published.
func PublishedPort(resp dockerapi.ContainerInfo, port string) int {
	if port == "" || resp.NetworkSettings == nil {
		return 0
	}
	for _, b := range resp.NetworkSettings.Ports[port] {
		if n, err := strconv.Atoi(b.HostPort); err == nil && n > 0 && n <= 65535 {
			return n
		}
	}
	return 0
}

// FromInspect reads the state from an inspect response; network chooses the IP as in
// Watcher.
func FromInspect(resp dockerapi.ContainerInfo, network string) State {
	st := State{Exists: true, ID: resp.ID}
	if resp.State != nil {
		s := resp.State
		st.Running = s.Running && !s.Paused && !s.Restarting
		if s.Health != nil && s.Health.Status != noHealthcheck {
			st.Health = s.Health.Status
		}
		st.Reason = s.Status
		if st.Health != "" {
			st.Reason += " " + st.Health
		}
	}
	if resp.NetworkSettings != nil {
		st.IP = pickIP(resp.NetworkSettings.Networks, network, func(ep *dockerapi.EndpointSettings) string { return ep.IPAddress })
		st.IP6 = pickIP(resp.NetworkSettings.Networks, network, func(ep *dockerapi.EndpointSettings) string { return ep.GlobalIPv6Address })
	}
	return st
}

// pickIP returns addr of the endpoint on network, or without one of the first network
// (by name) where addr is set.
func pickIP(nets map[string]*dockerapi.EndpointSettings, network string, addr func(*dockerapi.EndpointSettings) string) string {
	if network != "" {
		if ep := nets[network]; ep != nil {
			return addr(ep)
		}
		return ""
	}
	names := make([]string, 0, len(nets))
	for n := range nets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if ep := nets[n]; ep != nil && addr(ep) != "" {
			return addr(ep)
		}
	}
	return ""
}

type effectKind int

const (
	effectNone effectKind = iota
	effectDown
	effectInspect
)

// terminating are the signals (as the kill event's "signal" attribute) after which the
// container is going away: docker stop sends TERM (or the image's stop signal) first,
// so withdrawing on it takes the record away before the process even exits.
var terminating = map[string]bool{
	"15": true, "SIGTERM": true, "TERM": true,
	"9": true, "SIGKILL": true, "KILL": true,
	"2": true, "SIGINT": true, "INT": true,
	"3": true, "SIGQUIT": true, "QUIT": true,
}

func effect(m dockerapi.Message) effectKind {
	switch {
	case m.Action == actionDie, m.Action == actionStop, m.Action == actionDestroy,
		m.Action == actionPause, m.Action == actionUnhealthy:
		return effectDown
	case m.Action == actionKill:
		if terminating[strings.ToUpper(m.Actor.Attributes["signal"])] {
			return effectDown
		}
		return effectNone
	case m.Action == actionStart, m.Action == actionUnpause, m.Action == actionRename,
		strings.HasPrefix(m.Action, actionHealth):
		return effectInspect
	}
	return effectNone
}

func describe(m dockerapi.Message) string {
	if s := m.Actor.Attributes["signal"]; s != "" {
		return m.Action + " signal " + s
	}
	return m.Action
}

func sameState(a, b State) bool {
	return a.ID == b.ID && a.Up() == b.Up() && a.Exists == b.Exists && a.Running == b.Running && a.Health == b.Health && a.IP == b.IP && a.IP6 == b.IP6 && a.HostPort == b.HostPort
}
