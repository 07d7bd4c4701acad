package multihost

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Host is one machine of the lab: a container with its own host name, address and PID
// namespace, whose PID 1 (docker-init) runs runsvdir -P /service.
type Host struct {
	Name       string // host name; the announcer's default instance
	IP         string
	Container  string
	ServiceDir string // on this machine, bind-mounted as /service

	lab   *Lab
	owner string // the owner label, also on the containers its runit starts
}

// Service is one runit service of a host: ./run (and ./finish when set), rendered for
// the host it runs on.
type Service struct {
	Name   string
	Run    func(h *Host) string
	Finish func(h *Host) string
	Down   bool // not started until `sv up`: runit's ./down file
}

// StartHost starts host name at SUBNET.(20+n) running services under runit.
func (l *Lab) StartHost(t testing.TB, name string, n int, services ...Service) *Host {
	t.Helper()
	h := &Host{Name: name, IP: l.IP(20 + n), Container: l.Prefix + "-" + name, lab: l, owner: owner()}
	h.ServiceDir = tempDir(t, h.Container)
	for _, s := range services {
		dir := filepath.Join(h.ServiceDir, s.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "run"), []byte(s.Run(h)), 0o755); err != nil {
			t.Fatal(err)
		}
		if s.Down {
			if err := os.WriteFile(filepath.Join(dir, "down"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if s.Finish != nil {
			if err := os.WriteFile(filepath.Join(dir, "finish"), []byte(s.Finish(h)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	l.mu.Lock()
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()
	mustDocker(t, "run", "-d", "--name", h.Container, "--hostname", name, "--init",
		"--label", Label+"="+l.Prefix, "--label", HostLabel+"="+name, "--label", owner(),
		"--network", l.Network, "--ip", h.IP,
		"-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", h.ServiceDir+":/service",
		l.Image)
	return h
}

// ContainerName is the Docker name of the host's container for service svc. Every
// container of a host must be named so: Kill and the orphan checks find them by name.
func (h *Host) ContainerName(svc string) string { return h.Container + "-" + svc }

// Exec runs a command on the host and returns its output.
func (h *Host) Exec(args ...string) (string, error) {
	return Docker(append([]string{"exec", h.Container}, args...)...)
}

// Pidof returns the PIDs (in the host's namespace) of the processes running prog.
func (h *Host) Pidof(t testing.TB, prog string) []int {
	t.Helper()
	out, _ := h.Exec("pidof", prog) // exit 1 when there is none
	var pids []int
	for _, f := range strings.Fields(out) {
		p, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("pidof %s on %s: %q", prog, h.Name, out)
		}
		pids = append(pids, p)
	}
	return pids
}

var svPID = regexp.MustCompile(`^run: [^:]+: \(pid (\d+)\)`)

// ServicePID returns the PID of service svc's ./run as runsv reports it, or 0 when down.
func (h *Host) ServicePID(t testing.TB, svc string) int {
	t.Helper()
	out, err := h.Exec("sv", "status", "/service/"+svc)
	if err != nil {
		return 0
	}
	m := svPID.FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	p, _ := strconv.Atoi(m[1])
	return p
}

// Sv runs `sv CMD /service/SVC` on the host.
func (h *Host) Sv(t testing.TB, cmd, svc string) {
	t.Helper()
	if out, err := h.Exec("sv", cmd, "/service/"+svc); err != nil {
		t.Fatalf("sv %s %s on %s: %v %s", cmd, svc, h.Name, err, out)
	}
}

// KillProcess sends SIGKILL to pid on the host.
func (h *Host) KillProcess(t testing.TB, pid int) {
	t.Helper()
	if out, err := h.Exec("kill", "-9", strconv.Itoa(pid)); err != nil {
		t.Fatalf("kill -9 %d on %s: %v %s", pid, h.Name, err, out)
	}
}

// Kill loses the whole host at once, as a power cut would: SIGKILL to every process of
// the machine first (the host container's PID namespace: runsvdir, runsv, the announcers,
// none of which gets to clean up), then to the containers it started, which are removed.
// The host container stays, stopped, so the machine can boot again with Boot. Kill
// returns when the machine was dead: when `docker kill` of the host returned.
func (h *Host) Kill(t testing.TB) time.Time {
	t.Helper()
	mustDocker(t, "kill", h.Container)
	dead := time.Now()
	ids := strings.Fields(mustDocker(t, "ps", "-aq", "--filter", "name="+h.Container+"-"))
	for _, id := range ids {
		if name, _ := Docker("inspect", "-f", "{{.Name}}", id); strings.TrimPrefix(name, "/") != h.Container {
			Docker("rm", "-f", id)
		}
	}
	return dead
}

// Boot starts a killed host again: runsvdir starts its services from the same directory.
func (h *Host) Boot(t testing.TB) {
	t.Helper()
	mustDocker(t, "start", h.Container)
}

// EtcdPeer returns the etcd member address most of the host's established connections to
// port 2379 go to (busybox netstat in the host's network namespace).
func (h *Host) EtcdPeer(t testing.TB) string {
	t.Helper()
	out, err := h.Exec("netstat", "-tn")
	if err != nil {
		t.Fatalf("netstat on %s: %v", h.Name, err)
	}
	count := map[string]int{}
	best := ""
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[5] != "ESTABLISHED" || !strings.HasSuffix(f[4], ":2379") {
			continue
		}
		ip := strings.TrimSuffix(f[4], ":2379")
		count[ip]++
		if count[ip] > count[best] {
			best = ip
		}
	}
	if best == "" {
		t.Fatalf("%s has no connection to an etcd member:\n%s", h.Name, out)
	}
	return best
}

// Disconnect cuts the host off the lab network (and so from etcd): its network interface
// disappears, the processes keep running.
func (h *Host) Disconnect(t testing.TB) {
	t.Helper()
	mustDocker(t, "network", "disconnect", h.lab.Network, h.Container)
}

// Reconnect heals a Disconnect, with the same address.
func (h *Host) Reconnect(t testing.TB) {
	t.Helper()
	mustDocker(t, "network", "connect", "--ip", h.IP, h.lab.Network, h.Container)
}

// EchoService is a service running the echo test image as container
// PREFIX-HOST-NAME on the host's network stack, answering on port with the host's name as
// its instance, like rundock's rendered `run` (docker rm -f of a stale container, then
// exec docker run --rm). env adds KEY=VALUE pairs (e.g. EXIT_CODE=3 for a crash loop).
func EchoService(name, image string, port int, env ...string) Service {
	return Service{
		Name: name,
		Run: func(h *Host) string {
			args := []string{"docker", "run", "--rm", "--name", h.ContainerName(name),
				"--label", Label + "=" + h.lab.Prefix, "--label", HostLabel + "=" + h.Name, "--label", h.owner,
				"--network", "container:" + h.Container,
				"-e", fmt.Sprintf("PORT=%d", port), "-e", "INSTANCE=" + h.Name}
			for _, e := range env {
				args = append(args, "-e", e)
			}
			args = append(args, image)
			return fmt.Sprintf("#!/bin/sh\nexec 2>&1\ndocker rm -f %s >/dev/null 2>&1\nexec %s\n",
				quote(h.ContainerName(name)), quoteAll(args))
		},
		// A SIGKILLed docker CLI leaves its container running: remove it.
		Finish: func(h *Host) string {
			return fmt.Sprintf("#!/bin/sh\ndocker rm -f %s >/dev/null 2>&1\nexit 0\n", quote(h.ContainerName(name)))
		},
	}
}

// AnnouncerService is a service running the announcer for the container of service svc
// on the host, with extra arguments (ports, TTL, endpoints).
func AnnouncerService(name, svc string, args ...string) Service {
	return Service{
		Name: name,
		Run: func(h *Host) string {
			all := append([]string{"announcer", "--container", h.ContainerName(svc)}, args...)
			return fmt.Sprintf("#!/bin/sh\nexec 2>&1\nexec %s\n", quoteAll(all))
		},
	}
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:=,@+-]+$`)

// quote returns s single-quoted for sh, unless it needs no quotes.
func quote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// quoteAll quotes each argument and joins them with spaces.
func quoteAll(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = quote(a)
	}
	return strings.Join(q, " ")
}
