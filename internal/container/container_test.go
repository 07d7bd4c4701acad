package container

import (
	"testing"

	"github.com/rundock/rundock/internal/dockerapi"
)

func TestEffect(t *testing.T) {
	tests := []struct {
		name   string
		action string
		signal string
		want   effectKind
	}{
		{name: "start", action: "start", want: effectInspect},
		{name: "unpause", action: "unpause", want: effectInspect},
		{name: "healthy", action: "health_status: healthy", want: effectInspect},
		{name: "health running", action: "health_status: running", want: effectInspect},
		{name: "unhealthy", action: "health_status: unhealthy", want: effectDown},
		{name: "die", action: "die", want: effectDown},
		{name: "stop", action: "stop", want: effectDown},
		{name: "destroy", action: "destroy", want: effectDown},
		{name: "pause", action: "pause", want: effectDown},
		{name: "kill TERM", action: "kill", signal: "15", want: effectDown},
		{name: "kill SIGKILL", action: "kill", signal: "SIGKILL", want: effectDown},
		{name: "kill HUP is a reload", action: "kill", signal: "1", want: effectNone},
		{name: "kill USR1", action: "kill", signal: "SIGUSR1", want: effectNone},
		{name: "attach", action: "attach", want: effectNone},
		{name: "rename", action: "rename", want: effectInspect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := dockerapi.Message{Type: "container", Action: tt.action,
				Actor: dockerapi.Actor{Attributes: map[string]string{}}}
			if tt.signal != "" {
				m.Actor.Attributes["signal"] = tt.signal
			}
			if got := effect(m); got != tt.want {
				t.Fatalf("effect(%s %s) = %d, want %d", tt.action, tt.signal, got, tt.want)
			}
		})
	}
}

func inspect(status string, running, paused bool, health string, nets map[string]string) dockerapi.ContainerInfo {
	st := &dockerapi.ContainerState{Status: status, Running: running, Paused: paused}
	if health != "" {
		st.Health = &dockerapi.Health{Status: health}
	}
	ns := &dockerapi.NetworkSettings{Networks: map[string]*dockerapi.EndpointSettings{}}
	for n, ip := range nets {
		ns.Networks[n] = &dockerapi.EndpointSettings{IPAddress: ip}
	}
	return dockerapi.ContainerInfo{State: st, NetworkSettings: ns}
}

func TestFromInspect(t *testing.T) {
	tests := []struct {
		name    string
		resp    dockerapi.ContainerInfo
		network string
		wantUp  bool
		wantIP  string
	}{
		{name: "running, no health check", resp: inspect("running", true, false, "", map[string]string{"bridge": "172.17.0.2"}), wantUp: true, wantIP: "172.17.0.2"},
		{name: "health none counts as no check", resp: inspect("running", true, false, "none", nil), wantUp: true},
		{name: "starting", resp: inspect("running", true, false, "starting", nil), wantUp: false},
		{name: "healthy", resp: inspect("running", true, false, "healthy", nil), wantUp: true},
		{name: "unhealthy", resp: inspect("running", true, false, "unhealthy", nil), wantUp: false},
		{name: "exited", resp: inspect("exited", false, false, "", map[string]string{"bridge": ""}), wantUp: false},
		{name: "paused", resp: inspect("paused", true, true, "", nil), wantUp: false},
		{name: "first network by name", resp: inspect("running", true, false, "", map[string]string{"zeta": "10.0.0.9", "alpha": "10.0.1.9", "host": ""}), wantUp: true, wantIP: "10.0.1.9"},
		{name: "named network", resp: inspect("running", true, false, "", map[string]string{"zeta": "10.0.0.9", "alpha": "10.0.1.9"}), network: "zeta", wantUp: true, wantIP: "10.0.0.9"},
		{name: "named network missing", resp: inspect("running", true, false, "", map[string]string{"alpha": "10.0.1.9"}), network: "zeta", wantUp: true},
		{name: "host network has no IP", resp: inspect("running", true, false, "", map[string]string{"host": ""}), wantUp: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := FromInspect(tt.resp, tt.network)
			if st.Up() != tt.wantUp || st.IP != tt.wantIP {
				t.Fatalf("got up=%v ip=%q (%+v), want up=%v ip=%q", st.Up(), st.IP, st, tt.wantUp, tt.wantIP)
			}
		})
	}
}

func TestWatcher_Matches(t *testing.T) {
	id := "4f2a9c0e1b3d5f7a9c0e1b3d5f7a9c0e1b3d5f7a9c0e1b3d5f7a9c0e1b3d5f7a"
	tests := []struct {
		name, follow, actorName, oldName string
		action                           string
		want                             bool
	}{
		{name: "same name", follow: "web", actorName: "web", want: true},
		{name: "prefix is another container", follow: "web", actorName: "web-db", want: false},
		{name: "full id", follow: id, actorName: "web", want: true},
		{name: "short id", follow: id[:12], actorName: "web", want: true},
		{name: "too short an id prefix", follow: id[:4], actorName: "web", want: false},
		{name: "renamed to the name", follow: "web", actorName: "web", oldName: "/web.next", action: "rename", want: true},
		{name: "renamed from the name", follow: "web.next", actorName: "web", oldName: "/web.next", action: "rename", want: true},
		{name: "old name only counts for a rename", follow: "web.next", actorName: "web", oldName: "/web.next", action: "start", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &Watcher{Name: tt.follow}
			m := dockerapi.Message{Action: tt.action, Actor: dockerapi.Actor{ID: id, Attributes: map[string]string{"name": tt.actorName}}}
			if tt.oldName != "" {
				m.Actor.Attributes["oldName"] = tt.oldName
			}
			if got := w.matches(m); got != tt.want {
				t.Fatalf("matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFromInspect_ID(t *testing.T) {
	id := "4f2a9c0e1b3d5f7a9c0e1b3d5f7a9c0e1b3d5f7a9c0e1b3d5f7a9c0e1b3d5f7a"
	resp := inspect("running", true, false, "", nil)
	resp.ID = id
	if st := FromInspect(resp, ""); st.ID != id {
		t.Fatalf("ID %q, want %q", st.ID, id)
	}
	// A replacement under the same name is another state even when it serves alike: the
	// announcer compares the ID with a drain file.
	a, b := State{ID: id, Exists: true, Running: true}, State{ID: "other", Exists: true, Running: true}
	if sameState(a, b) {
		t.Fatal("states of two container IDs compare the same")
	}
}

func TestPublishedPort(t *testing.T) {
	resp := inspect("running", true, false, "", nil)
	resp.NetworkSettings.Ports = map[string][]dockerapi.PortBinding{
		"8080/tcp": {{HostIP: "127.0.0.1", HostPort: "18080"}},
		"9090/tcp": nil,
	}
	tests := []struct {
		port string
		want int
	}{{"8080/tcp", 18080}, {"8080/udp", 0}, {"9090/tcp", 0}, {"", 0}}
	for _, tt := range tests {
		if got := PublishedPort(resp, tt.port); got != tt.want {
			t.Errorf("PublishedPort(%q) = %d, want %d", tt.port, got, tt.want)
		}
	}
	a, b := State{ID: "x", Exists: true, Running: true, HostPort: 18080}, State{ID: "x", Exists: true, Running: true, HostPort: 18081}
	if sameState(a, b) {
		t.Fatal("states on two host ports compare the same: the record would keep the old port")
	}
}
