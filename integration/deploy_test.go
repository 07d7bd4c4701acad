package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/testenv"
)

// depPrefix names every container, image and temp dir of the deploy tests.
const depPrefix = "rdtest-dep-"

// depEnv is one host's worth of parts for deploys: runsvdir, etcd, CoreDNS, nginx fed by
// `rundock upstreams --watch`, and the test images: v1 and v2 (healthy, with a health
// check) and bad (its health check never passes).
type depEnv struct {
	r      *testenv.Runit
	etcd   *testenv.Etcd
	dns    *testenv.CoreDNS
	nginx  *upNginx
	bin    string
	cli    *clientv3.Client
	port   int // the announced port, the same on every instance
	images map[string]string
}

// depImages builds the test images once per test binary, from the echo image.
var (
	depImagesOnce sync.Once
	depImagesErr  error
)

func depBuildImages(t *testing.T) map[string]string {
	t.Helper()
	base := testenv.BuildEchoImage(t)
	images := map[string]string{"v1": depPrefix + "echo:v1", "v2": depPrefix + "echo:v2", "bad": depPrefix + "echo:bad"}
	health := `HEALTHCHECK --interval=1s --timeout=2s --retries=1 CMD ["/echo", "-check"]`
	files := map[string]string{
		"v1":  "FROM " + base + "\nENV VERSION=v1\n" + health + "\n",
		"v2":  "FROM " + base + "\nENV VERSION=v2\n" + health + "\n",
		"bad": "FROM " + base + "\nENV VERSION=bad\n" + `HEALTHCHECK --interval=1s --timeout=2s --retries=1 CMD ["/bin/sh", "-c", "exit 1"]` + "\n",
	}
	depImagesOnce.Do(func() {
		for name, df := range files {
			cmd := exec.Command("docker", "build", "-q", "-t", images[name], "-")
			cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
			cmd.Stdin = strings.NewReader(df)
			if out, err := cmd.CombinedOutput(); err != nil {
				depImagesErr = fmt.Errorf("cannot build %s: %v\n%s", images[name], err, out)
				return
			}
		}
	})
	if depImagesErr != nil {
		t.Fatal(depImagesErr)
	}
	return images
}

const depSite = `server {
    listen 80;
    proxy_connect_timeout 2s;
    # No retry on another instance: every request that reaches a stopped instance counts
    # as failed, as it would for a POST.
    proxy_next_upstream off;
    location / {
        proxy_pass http://docker_dep;
    }
}
`

func newDepEnv(t *testing.T) *depEnv {
	t.Helper()
	testenv.Need(t, "docker", "sv", "runsvdir", "nginx", "dig")
	e := &depEnv{images: depBuildImages(t)}
	e.etcd = testenv.StartEtcd(t)
	e.cli = testenv.EtcdClient(t, e.etcd.Endpoint)
	e.dns = testenv.StartCoreDNS(t, upDomain, e.etcd.Endpoint)
	e.r = testenv.StartRunit(t, depPrefix)
	e.r.InstallBinaries(t)
	e.bin = filepath.Join(e.r.BinDir, "rundock")
	e.port = testenv.FreePort(t)

	cfg := filepath.Join(e.r.Root, "upstreams.yml")
	os.WriteFile(cfg, []byte("services:\n  dep: {}\nallow_networks: [127.0.0.0/8]\n"), 0o644)
	e.nginx = upStartNginx(t, depSite, []byte("upstream docker_dep { server 127.0.0.1:1 down; }\n"))
	e.nginx.watch(t, e.bin, "--etcd-endpoints", e.etcd.Endpoint, "--config", cfg)
	return e
}

// opts are the rundock apply flags of instance inst ("a" or "b") with image.
func (e *depEnv) opts(inst, image string, extra ...string) []string {
	ip := map[string]string{"a": "127.0.0.2", "b": "127.0.0.3"}[inst]
	args := []string{"apply", "--name", depPrefix + inst, "--image", image,
		"--announce", strconv.Itoa(e.port), "--port", "8080", "--host", ip,
		"--announce-name", "dep", "--instance", inst, "--ttl", "5", "--dns-ttl", "2",
		"--etcd-endpoints", e.etcd.Endpoint, "--wait-timeout", "20", "--stop-timeout", "5",
		"--sv-dir", e.r.SvDir, "--service-dir", e.r.ServiceDir, "--log-dir", e.r.LogDir, "--bin-dir", e.r.BinDir}
	return append(args, extra...)
}

// apply runs rundock with args and returns its output and whether it exited 0.
func (e *depEnv) apply(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	out, err := exec.Command(e.bin, args...).CombinedOutput()
	return string(out), err == nil
}

func (e *depEnv) mustApply(t *testing.T, args ...string) string {
	t.Helper()
	out, ok := e.apply(t, args...)
	if !ok {
		t.Fatalf("rundock %s failed:\n%s", strings.Join(args, " "), out)
	}
	return out
}

// containerID is the ID of the instance's container, "" when none.
func (e *depEnv) containerID(inst string) string {
	out, err := exec.Command("docker", "inspect", "-f", "{{.Id}}", depPrefix+inst).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// record is the instance's record in etcd, "" when none.
func (e *depEnv) record(t *testing.T, inst string) string {
	t.Helper()
	k, _ := skydns.InstanceKey(skydns.DefaultPrefix, upDomain, "dep", inst)
	resp, err := e.cli.Get(context.Background(), k)
	if err != nil || len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// load sends requests at a steady rate, through nginx and as a client that resolves
// dep.DOMAIN through CoreDNS and keeps the answer for its TTL (like a resolver cache),
// never retrying. It counts what it sent and what failed.
type load struct {
	sent, failed, dnsSent, dnsFailed atomic.Int64
	stop                             chan struct{}
	done                             sync.WaitGroup
	mu                               sync.Mutex
	errs                             []string
}

func (e *depEnv) startLoad(t *testing.T) *load {
	return e.startLoadTo(t, func() ([]string, int) {
		addrs, ttl := e.resolve()
		urls := make([]string, len(addrs))
		for i, a := range addrs {
			urls[i] = fmt.Sprintf("http://%s:%d/", a, e.port)
		}
		return urls, ttl
	})
}

// startLoadTo sends a request every 20 ms through nginx and, as a DNS client that keeps
// each answer for its TTL, to the URLs resolve returns, in turn; nothing is retried.
// l.dnsSent and l.dnsFailed count the DNS client's requests.
func (e *depEnv) startLoadTo(t *testing.T, resolve func() (urls []string, ttl int)) *load {
	return startLoadAt(e.nginx.URL("/"), resolve)
}

// startLoadAt is startLoadTo through the nginx at nginxURL; with resolve nil there is
// no DNS client.
func startLoadAt(nginxURL string, resolve func() (urls []string, ttl int)) *load {
	l := &load{stop: make(chan struct{})}
	c := &http.Client{Timeout: 2 * time.Second}
	get := func(url string, sent, failed *atomic.Int64) {
		sent.Add(1)
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		if err != nil {
			failed.Add(1)
			l.mu.Lock()
			if len(l.errs) < 10 {
				l.errs = append(l.errs, time.Now().Format("15:04:05.000")+" "+url+": "+err.Error())
			}
			l.mu.Unlock()
		}
	}
	l.done.Add(2)
	go func() {
		defer l.done.Done()
		for {
			select {
			case <-l.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			get(nginxURL, &l.sent, &l.failed)
		}
	}()
	if resolve == nil {
		l.done.Done()
		return l
	}
	go func() {
		defer l.done.Done()
		var urls []string
		var expires time.Time
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(expires) {
				var ttl int
				urls, ttl = resolve()
				expires = time.Now().Add(time.Duration(ttl) * time.Second)
			}
			if len(urls) == 0 {
				continue // no answer: nothing to send to (not a request)
			}
			get(urls[i%len(urls)], &l.dnsSent, &l.dnsFailed)
		}
	}()
	return l
}

// resolve asks CoreDNS for the A records of dep.DOMAIN and returns them with the answer's
// TTL (at least 1 s).
func (e *depEnv) resolve() ([]string, int) {
	host, port, _ := strings.Cut(e.dns.Addr, ":")
	out, err := exec.Command("dig", "@"+host, "-p", port, "+noall", "+answer", "+tries=1", "+time=2", "dep."+upDomain, "A").Output()
	if err != nil {
		return nil, 1
	}
	var addrs []string
	ttl := 0
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 5 && f[3] == "A" {
			addrs = append(addrs, f[4])
			if n, _ := strconv.Atoi(f[1]); ttl == 0 || n < ttl {
				ttl = n
			}
		}
	}
	return addrs, max(ttl, 1)
}

func (l *load) end(t *testing.T, what string) (sent, failed, dnsSent, dnsFailed int64) {
	close(l.stop)
	l.done.Wait()
	t.Logf("FIGURE %s: through nginx %d requests, %d failed; DNS-caching client %d requests, %d failed", what,
		l.sent.Load(), l.failed.Load(), l.dnsSent.Load(), l.dnsFailed.Load())
	for _, e := range l.errs {
		t.Logf("  failed: %s", e)
	}
	return l.sent.Load(), l.failed.Load(), l.dnsSent.Load(), l.dnsFailed.Load()
}

// serving waits until both instances serve through nginx and DNS.
func (e *depEnv) serving(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, "both instances in DNS", func() bool {
		a, _ := e.resolve()
		return len(a) == 2
	})
	testenv.Eventually(t, 10*time.Second, "nginx serving", func() bool {
		code, _, err := testenv.HTTPGet(&http.Client{Timeout: time.Second}, e.nginx.URL("/"))
		return err == nil && code == http.StatusOK
	})
}

// status is rundock status --output json of the instance.
func (e *depEnv) status(t *testing.T, inst string) map[string]any {
	t.Helper()
	out, err := exec.Command(e.bin, "status", depPrefix+inst, "--sv-dir", e.r.SvDir, "--service-dir", e.r.ServiceDir, "--output", "json").Output()
	if err != nil {
		t.Fatalf("rundock status: %v\n%s", err, out)
	}
	var st []map[string]any
	if err := json.Unmarshal(out, &st); err != nil || len(st) != 1 {
		t.Fatalf("rundock status output: %v\n%s", err, out)
	}
	return st[0]
}

// TestDeploy_RollingUpdate updates two instances behind nginx and a DNS-caching client one
// after the other under a steady load: with the drain, no request fails; with drain 0 the
// same run shows what the drain buys.
func TestDeploy_RollingUpdate(t *testing.T) {
	e := newDepEnv(t)
	for _, inst := range []string{"a", "b"} {
		e.mustApply(t, e.opts(inst, e.images["v1"])...)
	}
	e.serving(t)
	for _, c := range []struct {
		name  string
		image string
		drain []string
	}{
		{"drain default (dns_ttl)", e.images["v2"], nil},
		{"drain 0", e.images["v1"], []string{"--drain", "0"}},
	} {
		l := e.startLoad(t)
		time.Sleep(time.Second)
		start := time.Now()
		for _, inst := range []string{"a", "b"} {
			old := e.containerID(inst)
			t0 := time.Now()
			out := e.mustApply(t, e.opts(inst, c.image, c.drain...)...)
			t.Logf("FIGURE %s: deploy of instance %s took %s", c.name, inst, time.Since(t0).Round(10*time.Millisecond))
			if id := e.containerID(inst); id == "" || id == old {
				t.Fatalf("%s: instance %s runs container %q after the deploy (was %q):\n%s", c.name, inst, id, old, out)
			}
			if e.record(t, inst) == "" {
				t.Fatalf("%s: apply returned before the record of %s was back", c.name, inst)
			}
		}
		t.Logf("FIGURE %s: rolling update of 2 instances took %s", c.name, time.Since(start).Round(10*time.Millisecond))
		time.Sleep(3 * time.Second) // the caches of the last answer run out
		sent, failed, dnsSent, dnsFailed := l.end(t, c.name)
		if sent < 100 || dnsSent < 100 {
			t.Fatalf("%s: the load sent only %d/%d requests", c.name, sent, dnsSent)
		}
		if c.drain == nil && (failed != 0 || dnsFailed != 0) {
			t.Errorf("%s: %d of %d requests through nginx and %d of %d from the DNS-caching client failed, want 0",
				c.name, failed, sent, dnsFailed, dnsSent)
		}
	}
	if st := e.status(t, "a"); st["image"] != e.images["v1"] || st["image_id"] == "" {
		t.Errorf("rundock status after the deploys: image %v id %v, want %s and an ID", st["image"], st["image_id"], e.images["v1"])
	}
}

// TestDeploy_BrokenImage: a new image whose health check never passes fails the apply
// within wait_timeout, and the old container's tree serves again with its record.
func TestDeploy_BrokenImage(t *testing.T) {
	e := newDepEnv(t)
	for _, inst := range []string{"a", "b"} {
		e.mustApply(t, e.opts(inst, e.images["v1"])...)
	}
	e.serving(t)
	l := e.startLoad(t)
	start := time.Now()
	out, ok := e.apply(t, e.opts("a", e.images["bad"], "--wait-timeout", "8")...)
	took := time.Since(start)
	t.Logf("FIGURE broken image: apply failed after %s (wait_timeout 8 s, drain 2 s)", took.Round(10*time.Millisecond))
	if ok {
		t.Fatalf("apply of a never-healthy image succeeded:\n%s", out)
	}
	for _, want := range []string{"did not serve within wait_timeout 8 s", "unhealthy", "rolled back", e.images["v1"]} {
		if !strings.Contains(out, want) {
			t.Errorf("the failure does not say %q:\n%s", want, out)
		}
	}
	if took > 8*time.Second+40*time.Second {
		t.Errorf("apply took %s", took)
	}
	st := e.status(t, "a")
	if st["image"] != e.images["v1"] || !strings.HasPrefix(fmt.Sprint(st["container"]), "running,healthy") {
		t.Errorf("after the rollback instance a runs %v (%v), want %s healthy", st["image"], st["container"], e.images["v1"])
	}
	if d, _ := st["deploy"].(map[string]any); d["outcome"] != "rolled back" {
		t.Errorf("status shows the deploy as %v, want rolled back", d)
	}
	if e.record(t, "a") == "" {
		t.Errorf("no record for instance a after the rollback")
	}
	time.Sleep(3 * time.Second)
	if _, failed, _, dnsFailed := l.end(t, "broken image"); failed != 0 || dnsFailed != 0 {
		t.Errorf("%d requests through nginx and %d from the DNS client failed during the failed deploy, want 0", failed, dnsFailed)
	}
}

// TestDeploy_PullFails: with pull always and an unreachable registry, the apply fails with
// the pull error and the running container is never stopped.
func TestDeploy_PullFails(t *testing.T) {
	e := newDepEnv(t)
	e.mustApply(t, e.opts("a", e.images["v1"])...)
	testenv.Eventually(t, 30*time.Second, "instance a announced", func() bool { return e.record(t, "a") != "" })
	old := e.containerID("a")
	out, ok := e.apply(t, e.opts("a", "127.0.0.1:9/rundock/echo:v9", "--pull", "always")...)
	if ok {
		t.Fatalf("apply with an unreachable registry succeeded:\n%s", out)
	}
	if !strings.Contains(out, "cannot pull 127.0.0.1:9/rundock/echo:v9") || !strings.Contains(out, "not touched") {
		t.Errorf("the failure does not name the pull:\n%s", out)
	}
	if id := e.containerID("a"); id != old {
		t.Errorf("the container changed from %s to %s: a failed pull touched it", old, id)
	}
	run, _ := os.ReadFile(filepath.Join(e.r.SvDir, "docker-"+depPrefix+"a", "run"))
	if strings.Contains(string(run), "echo:v9") {
		t.Errorf("the run script was rewritten for the image that could not be pulled")
	}
	if e.record(t, "a") == "" {
		t.Errorf("the record went away")
	}
}

// TestDeploy_Maintenance: maint on withdraws the record and keeps it withdrawn across an
// announcer restart while the container runs; maint off brings it back.
func TestDeploy_Maintenance(t *testing.T) {
	e := newDepEnv(t)
	e.mustApply(t, e.opts("a", e.images["v1"])...)
	testenv.Eventually(t, 30*time.Second, "instance a announced", func() bool { return e.record(t, "a") != "" })
	id := e.containerID("a")
	out := e.mustApply(t, "maint", depPrefix+"a", "on", "--reason", "reindexing", "--sv-dir", e.r.SvDir)
	if !strings.Contains(out, "changed") {
		t.Errorf("maint on: %s", out)
	}
	d := testenv.Eventually(t, 5*time.Second, "record withdrawn by maint on", func() bool { return e.record(t, "a") == "" })
	t.Logf("FIGURE maint on -> record gone: %s", d.Round(time.Millisecond))
	ann := filepath.Join(e.r.SvDir, "docker-"+depPrefix+"a", "announcer")
	if out, err := exec.Command("sv", "-w", "10", "restart", ann).CombinedOutput(); err != nil {
		t.Fatalf("sv restart announcer: %v %s", err, out)
	}
	time.Sleep(3 * time.Second)
	if r := e.record(t, "a"); r != "" {
		t.Errorf("the record %s is back after an announcer restart in maintenance", r)
	}
	if e.containerID("a") != id {
		t.Errorf("maintenance stopped or replaced the container")
	}
	st := e.status(t, "a")
	if st["maintenance"] != true || st["maintenance_reason"] != "reindexing" {
		t.Errorf("status: maintenance %v reason %v", st["maintenance"], st["maintenance_reason"])
	}
	if out := e.mustApply(t, "maint", depPrefix+"a", "on", "--reason", "reindexing", "--sv-dir", e.r.SvDir); !strings.Contains(out, "ok") {
		t.Errorf("maint on again: %s, want ok (unchanged)", out)
	}
	e.mustApply(t, "maint", depPrefix+"a", "off", "--sv-dir", e.r.SvDir)
	d = testenv.Eventually(t, 5*time.Second, "record back after maint off", func() bool { return e.record(t, "a") != "" })
	t.Logf("FIGURE maint off -> record back: %s", d.Round(time.Millisecond))
}

// TestDeploy_AnsibleSerial: a rolling update by an Ansible play with serial: 1 and
// max_fail_percentage: 0 over two hosts stops after the first when its new image never
// becomes healthy: the module reports failed, the first host is rolled back, the second
// is never touched.
func TestDeploy_AnsibleSerial(t *testing.T) {
	testenv.Need(t, "ansible-playbook")
	e := newDepEnv(t)
	for _, inst := range []string{"a", "b"} {
		e.mustApply(t, e.opts(inst, e.images["v1"])...)
	}
	e.serving(t)
	oldB := e.containerID("b")
	mod := filepath.Join(e.r.Root, "modules")
	os.MkdirAll(mod, 0o755)
	data, _ := os.ReadFile(e.bin)
	os.WriteFile(filepath.Join(mod, "rundock"), data, 0o755)
	inv := "[dep]\nhost-a ansible_connection=local inst=a ip=127.0.0.2\nhost-b ansible_connection=local inst=b ip=127.0.0.3\n"
	play := fmt.Sprintf(`- hosts: dep
  gather_facts: false
  serial: 1
  max_fail_percentage: 0
  tasks:
    - name: deploy the new image
      rundock:
        name: "%[1]s{{ inst }}"
        image: %[2]s
        announce: %[3]d
        port: 8080
        host: "{{ ip }}"
        announce_name: dep
        instance: "{{ inst }}"
        ttl: 5
        dns_ttl: 2
        etcd_endpoints: %[4]s
        wait_timeout: 8
        stop_timeout: 5
        sv_dir: %[5]s
        service_dir: %[6]s
        log_dir: %[7]s
        bin_dir: %[8]s
`, depPrefix, e.images["bad"], e.port, e.etcd.Endpoint, e.r.SvDir, e.r.ServiceDir, e.r.LogDir, e.r.BinDir)
	os.WriteFile(filepath.Join(e.r.Root, "inventory"), []byte(inv), 0o644)
	os.WriteFile(filepath.Join(e.r.Root, "play.yml"), []byte(play), 0o644)
	l := e.startLoad(t)
	cmd := exec.Command("ansible-playbook", "-i", filepath.Join(e.r.Root, "inventory"), "-M", mod, filepath.Join(e.r.Root, "play.yml"))
	cmd.Env = append(os.Environ(), "ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_NOCOLOR=1", "ANSIBLE_RETRY_FILES_ENABLED=False")
	out, err := cmd.CombinedOutput()
	t.Logf("ansible-playbook:\n%s", out)
	if err == nil {
		t.Fatalf("the play succeeded with a never-healthy image")
	}
	s := string(out)
	if !strings.Contains(s, "host-a") || !strings.Contains(s, "rolled back") {
		t.Errorf("the play output does not show host-a failing with a rollback")
	}
	if strings.Contains(s, "changed: [host-b]") || strings.Contains(s, "ok: [host-b]") || strings.Contains(s, "failed: [host-b]") {
		t.Errorf("the play went on to host-b")
	}
	if id := e.containerID("b"); id != oldB {
		t.Errorf("host-b's container changed from %s to %s", oldB, id)
	}
	if st := e.status(t, "a"); st["image"] != e.images["v1"] {
		t.Errorf("host-a runs %v after the failed play, want %s", st["image"], e.images["v1"])
	}
	time.Sleep(3 * time.Second)
	if _, failed, _, dnsFailed := l.end(t, "ansible serial 1, broken image"); failed != 0 || dnsFailed != 0 {
		t.Errorf("%d requests through nginx and %d from the DNS client failed, want 0", failed, dnsFailed)
	}
}

// exactlyOneServing checks that the instance has one container, supervised by runit, that
// answers on its address, and its record in etcd.
func (e *depEnv) exactlyOneServing(t *testing.T, inst, why string) {
	t.Helper()
	ip := map[string]string{"a": "127.0.0.2", "b": "127.0.0.3"}[inst]
	testenv.EventuallyMsg(t, 40*time.Second, func() string {
		out, _ := exec.Command("docker", "ps", "-a", "--filter", "name=^/"+depPrefix+inst+"$", "--format", "{{.ID}} {{.Status}}").Output()
		sv, _ := exec.Command("sv", "status", filepath.Join(e.r.SvDir, "docker-"+depPrefix+inst)).CombinedOutput()
		return fmt.Sprintf("%s: instance %s does not serve as one supervised container with its record: containers %q, %s, record %q",
			why, inst, out, sv, e.record(t, inst))
	}, func() bool {
		out, _ := exec.Command("docker", "ps", "-a", "--filter", "name=^/"+depPrefix+inst+"$", "--format", "{{.ID}}").Output()
		sv, _ := exec.Command("sv", "status", filepath.Join(e.r.SvDir, "docker-"+depPrefix+inst)).CombinedOutput()
		body := testenv.HTTPBody(fmt.Sprintf("http://%s:%d/", ip, e.port), time.Second)
		return len(strings.Fields(string(out))) == 1 && strings.HasPrefix(string(sv), "run:") && body != "" && e.record(t, inst) != ""
	})
}

// TestDeploy_Killed: a SIGKILL of rundock at each step of a deploy leaves one serving,
// supervised container with its record, and the next apply finishes the job.
func TestDeploy_Killed(t *testing.T) {
	e := newDepEnv(t)
	e.mustApply(t, e.opts("a", e.images["v1"])...)
	state := filepath.Join(e.r.SvDir, "docker-"+depPrefix+"a", ".rundock")
	killWhen := func(t *testing.T, args []string, step func() bool) {
		t.Helper()
		cmd := exec.Command(e.bin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 60*time.Second, "the deploy step never came", step)
		cmd.Process.Kill()
		cmd.Wait()
	}
	t.Run("during the pull", func(t *testing.T) {
		old := e.containerID("a")
		// 10.255.255.1 drops the SYN: the pull hangs until it is killed.
		killWhen(t, e.opts("a", "10.255.255.1:5000/rundock/echo:v9", "--pull", "always"), func() bool {
			time.Sleep(2 * time.Second)
			return true
		})
		if id := e.containerID("a"); id != old {
			t.Errorf("the container changed from %s to %s", old, id)
		}
		e.exactlyOneServing(t, "a", "killed during the pull")
	})
	t.Run("during the drain", func(t *testing.T) {
		old := e.containerID("a")
		killWhen(t, e.opts("a", e.images["v2"]), func() bool {
			b, _ := os.ReadFile(filepath.Join(state, "drain"))
			return strings.TrimSpace(string(b)) == old
		})
		e.exactlyOneServing(t, "a", "killed during the drain")
		out := e.mustApply(t, e.opts("a", e.images["v2"])...)
		if st := e.status(t, "a"); st["image"] != e.images["v2"] {
			t.Errorf("the next apply left %v running, want %s:\n%s", st["image"], e.images["v2"], out)
		}
		if d, _ := e.status(t, "a")["deploy"].(map[string]any); d["outcome"] != "ok" {
			t.Errorf("the next apply did not finish the deploy: %v", d)
		}
	})
	t.Run("during the wait", func(t *testing.T) {
		old := e.containerID("a")
		killWhen(t, e.opts("a", e.images["v1"]), func() bool {
			id := e.containerID("a")
			return id != "" && id != old
		})
		e.exactlyOneServing(t, "a", "killed during the wait")
		e.mustApply(t, e.opts("a", e.images["v1"])...)
		if d, _ := e.status(t, "a")["deploy"].(map[string]any); d["outcome"] != "ok" {
			t.Errorf("the next apply did not finish the deploy: %v", d)
		}
	})
	t.Run("during the wait for a broken image", func(t *testing.T) {
		old := e.containerID("a")
		killWhen(t, e.opts("a", e.images["bad"], "--wait-timeout", "6"), func() bool {
			id := e.containerID("a")
			return id != "" && id != old
		})
		// Nobody waits for the broken container now: the next apply finds the deploy
		// half-done, waits for it and rolls back.
		out, ok := e.apply(t, e.opts("a", e.images["bad"], "--wait-timeout", "6")...)
		if ok || !strings.Contains(out, "rolled back") {
			t.Fatalf("the next apply: ok=%v, want a failure with a rollback:\n%s", ok, out)
		}
		e.exactlyOneServing(t, "a", "after the next apply")
		if st := e.status(t, "a"); st["image"] != e.images["v1"] {
			t.Errorf("after the rollback instance a runs %v, want %s", st["image"], e.images["v1"])
		}
	})
	t.Run("during the rollback", func(t *testing.T) {
		run := filepath.Join(e.r.SvDir, "docker-"+depPrefix+"a", "run")
		sawBad := false
		killWhen(t, e.opts("a", e.images["bad"], "--wait-timeout", "4"), func() bool {
			// The deploy writes the broken image's run script; the rollback puts v1's back.
			b, _ := os.ReadFile(run)
			if strings.Contains(string(b), e.images["bad"]) {
				sawBad = true
			}
			return sawBad && strings.Contains(string(b), e.images["v1"])
		})
		e.exactlyOneServing(t, "a", "killed during the rollback")
		e.mustApply(t, e.opts("a", e.images["v1"])...)
		if st := e.status(t, "a"); st["image"] != e.images["v1"] {
			t.Errorf("the next apply left %v running, want %s", st["image"], e.images["v1"])
		}
	})
}

// TestDeploy_RecordHeals: a live record deleted with etcdctl is back within a second; a
// deliberate sv down of the announcer is not undone.
func TestDeploy_RecordHeals(t *testing.T) {
	testenv.Need(t, "etcdctl")
	e := newDepEnv(t)
	e.mustApply(t, e.opts("a", e.images["v1"])...)
	testenv.Eventually(t, 30*time.Second, "instance a announced", func() bool { return e.record(t, "a") != "" })
	k, _ := skydns.InstanceKey(skydns.DefaultPrefix, upDomain, "dep", "a")
	var worst time.Duration
	for i := 0; i < 5; i++ {
		del := exec.Command("etcdctl", "--endpoints", e.etcd.Endpoint, "del", "--prefix", "/skydns/")
		del.Env = append(os.Environ(), "ETCDCTL_API=3")
		if out, err := del.CombinedOutput(); err != nil {
			t.Fatalf("etcdctl del: %v %s", err, out)
		}
		d := testenv.Eventually(t, 5*time.Second, "record back after etcdctl del", func() bool { return e.record(t, "a") != "" })
		worst = max(worst, d)
	}
	t.Logf("FIGURE etcdctl del --prefix of a live record -> back: worst of 5 %s (%s)", worst.Round(time.Millisecond), k)
	if worst > time.Second {
		t.Errorf("the record took %s to come back, want within 1 s", worst)
	}
	ann := filepath.Join(e.r.SvDir, "docker-"+depPrefix+"a", "announcer")
	if out, err := exec.Command("sv", "-w", "10", "down", ann).CombinedOutput(); err != nil {
		t.Fatalf("sv down announcer: %v %s", err, out)
	}
	testenv.Eventually(t, 5*time.Second, "record withdrawn by sv down of the announcer", func() bool { return e.record(t, "a") == "" })
	time.Sleep(3 * time.Second)
	if r := e.record(t, "a"); r != "" {
		t.Errorf("the record %s came back with the announcer down", r)
	}
}
