// Package multihost starts a small lab of "hosts" for rundock's multi-host fault tests:
// each host is a container from the host image (examples/images/host: Debian's runit, the
// docker CLI, a static announcer) on a private Docker network of its own, with its own
// address, host name and PID namespace, running runsvdir on a service directory the test
// writes. Services started by a host's runit run `docker run --network container:HOST`, so
// they share that host's network stack, as containers publishing on a real host's address
// would. An etcd cluster of Debian etcd members runs in containers on the same network.
//
// Faults are real: a host is lost with `docker kill` (its whole PID namespace dies with
// runsvdir, runsv and the announcer) and its containers removed; a host is partitioned with
// `docker network disconnect`; an etcd member is SIGKILLed with `docker kill`.
//
// Every container, network and image carries the lab's unique prefix and the label
// rundock.test=PREFIX, and is removed in t.Cleanup even when the test fails.
package multihost

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/testenv"
)

// Label is the Docker label every lab container carries; its value is the lab's prefix.
const Label = "rundock.test"

// HostLabel names the host a container belongs to (the host container itself included).
const HostLabel = "rundock.host"

// OwnerLabel holds "PID UNIXTIME" of the test process that made a container or network,
// so a later lab can remove what a killed test run (go test timeout, Ctrl-C) left behind.
const OwnerLabel = "rundock.test.owner"

// staleAfter is how old a dead test run's leftovers must be before a new lab removes them:
// far beyond any run's length, so a live run in another PID namespace is never touched.
const staleAfter = 30 * time.Minute

// Lab is one private network with its etcd members and hosts.
type Lab struct {
	Prefix  string // unique name prefix, e.g. rdtest-mh-1a2b3c
	Image   string // host image tag
	Network string // Docker network name
	Subnet  string // first three octets, e.g. 10.213.42

	t       testing.TB
	mu      sync.Mutex
	members []*Member
	hosts   []*Host
}

// New builds the host image (about 2 s), creates the lab's network in a free
// 10.213.X.0/24 and registers the cleanup of everything the lab starts.
func New(t testing.TB) *Lab {
	t.Helper()
	testenv.Need(t, "docker")
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	l := &Lab{Prefix: "rdtest-mh-" + hex.EncodeToString(b), t: t}
	sweep(t)
	l.Image = l.Prefix + "-host:test"
	l.Network = l.Prefix + "-net"
	t.Cleanup(l.cleanup)
	out, err := exec.Command("bash", filepath.Join(testenv.RepoRoot(), "examples/images/host/build.sh"), l.Image).CombinedOutput()
	if err != nil {
		t.Fatalf("cannot build the host image %s: %v\n%s", l.Image, err, out)
	}
	// Pick a /24 no other network uses: other tests may run on the same engine.
	start := int(b[0])
	for i := 0; i < 256; i++ {
		x := (start + i) % 256
		subnet := fmt.Sprintf("10.213.%d", x)
		_, err := Docker("network", "create", "--driver", "bridge", "--label", Label+"="+l.Prefix, "--label", owner(),
			"--subnet", subnet+".0/24", "--gateway", subnet+".1", l.Network)
		if err == nil {
			l.Subnet = subnet
			break
		}
		if !strings.Contains(err.Error(), "overlap") {
			t.Fatalf("cannot create network %s: %v", l.Network, err)
		}
	}
	if l.Subnet == "" {
		t.Fatal("cannot create a network: every 10.213.X.0/24 overlaps another network")
	}
	return l
}

// IP returns the lab address SUBNET.n.
func (l *Lab) IP(n int) string { return fmt.Sprintf("%s.%d", l.Subnet, n) }

// cleanup removes every container, then the network and the image. On failure it logs the
// last lines of each host's and member's output first, which is where runit and the
// announcer write.
func (l *Lab) cleanup() {
	if l.t.Failed() {
		l.mu.Lock()
		var names []string
		for _, h := range l.hosts {
			names = append(names, h.Container)
		}
		for _, m := range l.members {
			names = append(names, m.Container)
		}
		l.mu.Unlock()
		for _, n := range names {
			out, _ := exec.Command("docker", "logs", "--tail", "60", n).CombinedOutput()
			l.t.Logf("--- docker logs %s ---\n%s", n, out)
		}
	}
	// Hosts first: their runit would otherwise restart the service containers.
	l.mu.Lock()
	hosts := l.hosts
	l.mu.Unlock()
	for _, h := range hosts {
		Docker("rm", "-f", h.Container)
	}
	// By label, and by name for containers a host started without the lab's labels.
	for _, filter := range []string{"label=" + Label + "=" + l.Prefix, "name=" + l.Prefix + "-"} {
		if out, err := Docker("ps", "-aq", "--filter", filter); err == nil && out != "" {
			Docker(append([]string{"rm", "-f"}, strings.Fields(out)...)...)
		}
	}
	Docker("network", "rm", l.Network)
	Docker("rmi", l.Image)
}

// OwnerLabels are the docker run --label arguments that mark a container as the lab's, for
// containers a host starts (e.g. through rundock's args option), so cleanup and the sweep
// of dead runs find them.
func (h *Host) OwnerLabels() string {
	return fmt.Sprintf("--label %s=%s --label %s=%s --label '%s'", Label, h.lab.Prefix, HostLabel, h.Name, h.owner)
}

// owner is the --label value marking what this test process creates.
func owner() string {
	return fmt.Sprintf("%s=%d %d", OwnerLabel, os.Getpid(), time.Now().Unix())
}

// sweep removes the containers, networks and images of lab runs whose test process is gone
// and which are older than staleAfter. Everything it removes is best effort.
func sweep(t testing.TB) {
	t.Helper()
	stale := func(label string) bool {
		var pid, at int64
		if _, err := fmt.Sscanf(label, "%d %d", &pid, &at); err != nil {
			return false
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			return false
		}
		return time.Since(time.Unix(at, 0)) > staleAfter
	}
	format := `{{.ID}}	{{.Label "` + OwnerLabel + `"}}`
	// Containers twice: a stale host's runit may restart a container removed in the first
	// pass; the host is gone by the second.
	for _, kind := range []string{"container", "container", "network"} {
		args := []string{"ps", "-a"}
		if kind == "network" {
			args = []string{"network", "ls"}
		}
		out, err := Docker(append(args, "--filter", "label="+OwnerLabel, "--format", format)...)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(out, "\n") {
			id, label, _ := strings.Cut(line, "\t")
			if id != "" && stale(label) {
				t.Logf("removing %s %s left by a dead test run (%s)", kind, id, label)
				if kind == "container" {
					Docker("rm", "-f", id)
				} else {
					Docker("network", "rm", id)
				}
			}
		}
	}
	// Host images carry no label (docker import); an image still in use is not removed.
	out, _ := Docker("images", "--filter", "reference=rdtest-mh-*", "--format", "{{.Repository}}:{{.Tag}}\t{{.CreatedAt}}")
	for _, line := range strings.Split(out, "\n") {
		ref, created, _ := strings.Cut(line, "\t")
		at, err := time.Parse("2006-01-02 15:04:05 -0700 MST", created)
		if ref != "" && err == nil && time.Since(at) > staleAfter {
			Docker("rmi", ref)
		}
	}
}

// Containers returns "NAME STATE" for every container of the lab (every name starts with
// the lab's prefix), sorted.
func (l *Lab) Containers(t testing.TB) []string {
	t.Helper()
	out, err := Docker("ps", "-a", "--filter", "name="+l.Prefix+"-", "--format", "{{.Names}} {{.State}}")
	if err != nil {
		t.Fatalf("cannot list the lab's containers: %v", err)
	}
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		if line != "" {
			lines = append(lines, line)
		}
	}
	sort.Strings(lines)
	return lines
}

// Docker runs the docker CLI and returns its trimmed stdout; the error holds stderr.
func Docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(stdout.String()), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// mustDocker is Docker failing the test on error.
func mustDocker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := Docker(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tempDir is a directory for bind mounts; t.TempDir would do, but the files runit and
// etcd create inside belong to root and t.TempDir's removal must not fail on them.
func tempDir(t testing.TB, name string) string {
	t.Helper()
	d, err := os.MkdirTemp("", name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
