package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rundock/rundock/internal/nginx"
	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/testenv"
	"github.com/rundock/rundock/internal/upstreams"
)

const upDomain = "s.prod.example.com"

// upNginx is a real nginx started by the test on a loopback port, with the rendered
// upstreams file at Output.
type upNginx struct {
	Dir, Conf, Output string
	Port              int
	CheckCmd          string
	ReloadCmd         string
}

// upStartNginx starts nginx with site (an examples/nginx file, its "listen 80;" moved to a
// free loopback port) and an upstreams file holding initial.
func upStartNginx(t *testing.T, site string, initial []byte) *upNginx {
	t.Helper()
	testenv.Need(t, "nginx")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	n := &upNginx{Dir: dir, Conf: filepath.Join(dir, "nginx.conf"), Output: filepath.Join(dir, "upstreams.conf"), Port: testenv.FreePort(t)}
	site = strings.Replace(site, "listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", n.Port), 1)
	conf := fmt.Sprintf(`worker_processes 1;
error_log %[1]s/error.log info;
pid %[1]s/nginx.pid;
events { worker_connections 512; }
http {
    access_log %[1]s/access.log;
    include %[1]s/upstreams.conf;
    include %[1]s/site.conf;
}
`, dir)
	for name, data := range map[string][]byte{"nginx.conf": []byte(conf), "site.conf": []byte(site), "upstreams.conf": initial} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n.CheckCmd = fmt.Sprintf("nginx -t -q -p %s -c %s", dir, n.Conf)
	n.ReloadCmd = fmt.Sprintf("echo reload >> %s/reloads && nginx -s reload -p %s -c %s", dir, dir, n.Conf)
	if out, err := exec.Command("sh", "-c", n.CheckCmd).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t rejects the test configuration: %v\n%s", err, out)
	}
	cmd := exec.Command("nginx", "-p", dir, "-c", n.Conf, "-g", "daemon off;")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start nginx: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	testenv.Eventually(t, 10*time.Second, "nginx listening", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", n.Port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return n
}

// URL is the nginx URL of path.
func (n *upNginx) URL(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", n.Port, path) }

// watch runs `rundock upstreams --watch` (binary bin, flags args) in front of n until the
// test ends; its output is logged when the test failed.
func (n *upNginx) watch(t *testing.T, bin string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	up := exec.CommandContext(ctx, bin, append([]string{"upstreams", "--watch", "--output", n.Output,
		"--check-cmd", n.CheckCmd, "--reload-cmd", n.ReloadCmd}, args...)...)
	logf, err := os.Create(filepath.Join(t.TempDir(), "upstreams.log"))
	if err != nil {
		t.Fatal(err)
	}
	up.Stdout, up.Stderr = logf, logf
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		up.Wait()
		logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("rundock upstreams --watch:\n%s", out)
		}
	})
}

// ReloadCount counts the reloads run through ReloadCmd.
func (n *upNginx) ReloadCount() int {
	b, _ := os.ReadFile(filepath.Join(n.Dir, "reloads"))
	return strings.Count(string(b), "reload\n")
}

func (n *upNginx) installed(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(n.Output)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// upBackend is an HTTP server on loopback answering its own name; it records when it first
// and last served a request.
type upBackend struct {
	Name        string
	IP          string
	Port        int
	srv         *http.Server
	first, last atomic.Int64 // unix nanos
	hits        atomic.Int64
}

func upStartBackend(t *testing.T, name, ip string, port int) *upBackend {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(port)))
	if err != nil {
		t.Fatalf("cannot listen for backend %s: %v", name, err)
	}
	b := &upBackend{Name: name, IP: ip, Port: l.Addr().(*net.TCPAddr).Port}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now().UnixNano()
		b.first.CompareAndSwap(0, now)
		b.last.Store(now)
		b.hits.Add(1)
		io.WriteString(w, b.Name)
	})}
	go b.srv.Serve(l)
	t.Cleanup(b.Stop)
	return b
}

// Stop closes the listener and every connection at once, like a killed process.
func (b *upBackend) Stop() { b.srv.Close() }

func (b *upBackend) record() string {
	return skydns.Record{Host: b.IP, Port: b.Port, TTL: 60}.Encode()
}

func upPut(t *testing.T, c *clientv3.Client, svc, inst, value string) {
	t.Helper()
	k, err := skydns.InstanceKey(skydns.DefaultPrefix, upDomain, svc, inst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(context.Background(), k, value); err != nil {
		t.Fatal(err)
	}
}

func upDelete(t *testing.T, c *clientv3.Client, svc, inst string) {
	t.Helper()
	k, _ := skydns.InstanceKey(skydns.DefaultPrefix, upDomain, svc, inst)
	if _, err := c.Delete(context.Background(), k); err != nil {
		t.Fatal(err)
	}
}

func upExample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "nginx", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// upSetup starts etcd, loads examples/nginx/upstreams.yml and starts nginx with
// examples/nginx/upstreams-site.conf and the upstreams of no instance at all.
func upSetup(t *testing.T) (*clientv3.Client, *upstreams.Config, *template.Template, *upNginx) {
	t.Helper()
	c := testenv.EtcdClient(t, testenv.StartEtcd(t).Endpoint)
	cfg, err := upstreams.LoadConfig(filepath.Join(testenv.RepoRoot(), "examples", "nginx", "upstreams.yml"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := upstreams.NewTemplate("built-in", upstreams.DefaultTemplate)
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := cfg.Build(skydns.DefaultPrefix, upDomain, nil)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := upstreams.Render(tmpl, d)
	if err != nil {
		t.Fatal(err)
	}
	return c, cfg, tmpl, upStartNginx(t, upExample(t, "upstreams-site.conf"), empty)
}

type upLogWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	t   *testing.T
}

func (w *upLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Logf("renderer: %s", bytes.TrimSpace(p))
	return w.buf.Write(p)
}

func (w *upLogWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func upRenderer(t *testing.T, c *clientv3.Client, cfg *upstreams.Config, tmpl *template.Template, n *upNginx) (*upstreams.Watcher, *upLogWriter) {
	lw := &upLogWriter{t: t}
	r := upstreams.NewWatcher(testenv.WireClient(t, c.Endpoints()...), upDomain, cfg, tmpl, &nginx.Installer{Output: n.Output, CheckCmd: n.CheckCmd, ReloadCmd: n.ReloadCmd})
	r.Log = slog.New(slog.NewTextHandler(lw, nil))
	return r, lw
}

// upRun runs r.Run until the test ends.
func upRun(t *testing.T, r *upstreams.Watcher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// upHTTP is the client of every GET through nginx: several connections kept open per host,
// as under load.
var upHTTP = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

// upSeen returns which bodies n GETs of url answered; failures count under "!failed".
func upSeen(t *testing.T, url string, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for i := 0; i < n; i++ {
		code, body, err := testenv.HTTPGet(upHTTP, url)
		if err != nil || code != 200 {
			body = "!failed"
		}
		seen[body]++
	}
	return seen
}

// upLoad sends GETs from 4 clients until stop is called and returns the failures
// (anything but 200) and the request count.
func upLoad(url string) (stop func() (failures []string, requests int)) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		fail []string
		reqs atomic.Int64
		quit atomic.Bool
	)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !quit.Load() {
				code, body, err := testenv.HTTPGet(upHTTP, url)
				reqs.Add(1)
				if err != nil || code != 200 {
					mu.Lock()
					fail = append(fail, fmt.Sprintf("%d %q %v", code, body, err))
					mu.Unlock()
				}
			}
		}()
	}
	return func() ([]string, int) {
		quit.Store(true)
		wg.Wait()
		return fail, int(reqs.Load())
	}
}

// TestUpstreams_Traffic: --once renders every announced instance at its announced port,
// and a listed service with no instance is a valid upstream that answers 502 at once.
func TestUpstreams_Traffic(t *testing.T) {
	c, cfg, tmpl, n := upSetup(t)
	var backends []*upBackend
	for i := 1; i <= 3; i++ {
		b := upStartBackend(t, fmt.Sprintf("web-%d", i), "127.0.0.1", 0)
		upPut(t, c, "web", b.Name, b.record())
		backends = append(backends, b)
	}
	r, _ := upRenderer(t, c, cfg, tmpl, n)
	changed, err := r.Once(context.Background())
	if err != nil || !changed {
		t.Fatalf("Once: changed=%v err=%v", changed, err)
	}
	conf := n.installed(t)
	for _, b := range backends {
		if !strings.Contains(conf, fmt.Sprintf("server 127.0.0.1:%d ", b.Port)) {
			t.Errorf("installed upstreams lack %s's port %d:\n%s", b.Name, b.Port, conf)
		}
	}
	testenv.Eventually(t, 5*time.Second, "nginx serving every instance", func() bool {
		seen := upSeen(t, n.URL("/"), 30)
		return len(seen) == 3 && seen["!failed"] == 0
	})
	seen := upSeen(t, n.URL("/"), 60)
	if seen["!failed"] > 0 {
		t.Errorf("%d of 60 requests failed", seen["!failed"])
	}
	for _, b := range backends {
		if seen[b.Name] == 0 {
			t.Errorf("%s (port %d) got no request: %v", b.Name, b.Port, seen)
		}
	}
	start := time.Now()
	code, _, err := testenv.HTTPGet(upHTTP, n.URL("/api/x"))
	took := time.Since(start)
	if err != nil || code != http.StatusBadGateway {
		t.Fatalf("GET /api/x with no api instance: %d %v, want 502", code, err)
	}
	t.Logf("FIGURE no-instance 502 answered in %s", took.Round(time.Microsecond))
	log, _ := os.ReadFile(filepath.Join(n.Dir, "error.log"))
	if !strings.Contains(string(log), "no live upstreams") {
		t.Errorf("the 502 did not come from the down-only upstream; error.log:\n%s", log)
	}
	if changed, err := r.Once(context.Background()); err != nil || changed {
		t.Fatalf("second Once: changed=%v err=%v, want no change", changed, err)
	}
	if got := n.ReloadCount(); got != 1 {
		t.Fatalf("%d reloads, want 1 (the second Once changed nothing)", got)
	}
}

// TestUpstreams_WatchChanges: with --watch, a removed record leaves nginx's rotation
// within a second, a crashed instance whose record is removed after it died costs no
// failed request (nginx retries), and an added instance is served.
func TestUpstreams_WatchChanges(t *testing.T) {
	c, cfg, tmpl, n := upSetup(t)
	bs := map[string]*upBackend{}
	for i := 1; i <= 3; i++ {
		b := upStartBackend(t, fmt.Sprintf("web-%d", i), "127.0.0.1", 0)
		upPut(t, c, "web", b.Name, b.record())
		bs[b.Name] = b
	}
	r, _ := upRenderer(t, c, cfg, tmpl, n)
	upRun(t, r)
	testenv.Eventually(t, 5*time.Second, "nginx serving 3 instances", func() bool {
		seen := upSeen(t, n.URL("/"), 30)
		return len(seen) == 3 && seen["!failed"] == 0
	})
	stop := upLoad(n.URL("/"))

	// graceful: the record goes first (as the announcer does on TERM), the process later
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	upDelete(t, c, "web", "web-2")
	time.Sleep(1500 * time.Millisecond)
	dropped := time.Unix(0, bs["web-2"].last.Load()).Sub(t0)
	t.Logf("FIGURE removal: last request reached the removed instance %s after its record was deleted", dropped.Round(time.Millisecond))
	if dropped > time.Second {
		t.Errorf("removed instance still served %s after its record was deleted, want within 1s", dropped)
	}
	if strings.Contains(n.installed(t), fmt.Sprintf(":%d", bs["web-2"].Port)) {
		t.Errorf("installed upstreams still hold web-2")
	}
	bs["web-2"].Stop()

	// crash: the process dies first, the record goes 500 ms later
	bs["web-3"].Stop()
	time.Sleep(500 * time.Millisecond)
	upDelete(t, c, "web", "web-3")

	// add: a new instance is served
	b4 := upStartBackend(t, "web-4", "127.0.0.1", 0)
	t0 = time.Now()
	upPut(t, c, "web", b4.Name, b4.record())
	testenv.Eventually(t, 5*time.Second, "web-4 served", func() bool { return b4.first.Load() != 0 })
	t.Logf("FIGURE addition: first request reached the new instance %s after its record was written", time.Unix(0, b4.first.Load()).Sub(t0).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)

	failures, requests := stop()
	t.Logf("FIGURE in-flight traffic: %d requests, %d failed, %d reloads", requests, len(failures), n.ReloadCount())
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed during the changes, e.g. %s", len(failures), requests, failures[0])
	}
	seen := upSeen(t, n.URL("/"), 20)
	if len(seen) != 2 || seen["web-1"] == 0 || seen["web-4"] == 0 {
		t.Errorf("final rotation %v, want web-1 and web-4", seen)
	}
}

// TestUpstreams_Burst: 50 record changes in half a second are one or two reloads.
func TestUpstreams_Burst(t *testing.T) {
	c, cfg, tmpl, n := upSetup(t)
	b := upStartBackend(t, "web-1", "127.0.0.1", 0)
	upPut(t, c, "web", b.Name, b.record())
	r, lw := upRenderer(t, c, cfg, tmpl, n)
	upRun(t, r)
	testenv.Eventually(t, 5*time.Second, "nginx serving web-1", func() bool { return upSeen(t, n.URL("/"), 1)["web-1"] == 1 })
	before := n.ReloadCount()
	stop := upLoad(n.URL("/"))
	// a rolling restart of 10 instances: each one appears, changes weight, and stays
	extra := make([]*upBackend, 10)
	for i := range extra {
		extra[i] = upStartBackend(t, fmt.Sprintf("roll-%d", i), "127.0.0.1", 0)
	}
	start := time.Now()
	for i := 0; i < 50; i++ {
		e := extra[i%10]
		upPut(t, c, "web", e.Name, skydns.Record{Host: e.IP, Port: e.Port, Weight: 1 + i/10, TTL: 60}.Encode())
		time.Sleep(10 * time.Millisecond)
	}
	burst := time.Since(start)
	testenv.Eventually(t, 5*time.Second, "every rolled instance installed", func() bool {
		return strings.Count(n.installed(t), "weight=5") == 10
	})
	time.Sleep(time.Second) // let any late reload show
	failures, requests := stop()
	reloads := n.ReloadCount() - before
	t.Logf("FIGURE burst: 50 changes over %s caused %d reload(s); %d requests, %d failed", burst.Round(time.Millisecond), reloads, requests, len(failures))
	// one per --max-delay (2s) while the burst lasts, one at its end, and one more if a
	// slow Put on a loaded machine left a 200 ms gap
	if limit := 2 + int(burst/upstreams.DefaultMaxDelay); reloads < 1 || reloads > limit {
		t.Errorf("%d reloads for a 50-change burst over %s, want 1 to %d\n%s", reloads, burst, limit, lw.String())
	}
	if len(failures) > 0 {
		t.Errorf("%d requests failed, e.g. %s", len(failures), failures[0])
	}
	want, err := r.Output(context.Background())
	if err != nil || string(want) != n.installed(t) {
		t.Errorf("installed file is not the render of the final records (err %v)", err)
	}
}

// TestUpstreams_BrokenTemplate: a template that fails, or renders a configuration nginx
// rejects, never reaches nginx: the last good file stays and nginx keeps serving; in
// --watch mode the next change is tried again.
func TestUpstreams_BrokenTemplate(t *testing.T) {
	c, cfg, tmpl, n := upSetup(t)
	b := upStartBackend(t, "web-1", "127.0.0.1", 0)
	upPut(t, c, "web", b.Name, b.record())
	good, _ := upRenderer(t, c, cfg, tmpl, n)
	if _, err := good.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	lastGood := n.installed(t)
	testenv.Eventually(t, 5*time.Second, "nginx serving web-1", func() bool { return upSeen(t, n.URL("/"), 4)["web-1"] == 4 })
	b2 := upStartBackend(t, "web-2", "127.0.0.1", 0)
	upPut(t, c, "web", b2.Name, b2.record())

	tests := []struct {
		name, text string
		check      bool // fails at nginx -t, not at render
	}{
		{name: "ErrExecute", text: "{{range .Upstreams}}upstream {{.Nope}} {}{{end}}"},
		{name: "ErrMissingKey", text: `{{index .Upstreams 7}}`},
		{name: "ErrNginxRejects", text: upstreams.DefaultTemplate + "\nupstream broken { server 127.0.0.1:1 bogus_param; }\n", check: true},
		{name: "ErrEmptyUpstream", text: "{{range .Upstreams}}upstream {{.Name}} {}\n{{end}}", check: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad, err := upstreams.NewTemplate(tt.name, tt.text)
			if err != nil {
				t.Fatal(err)
			}
			r, _ := upRenderer(t, c, cfg, bad, n)
			reloads := n.ReloadCount()
			_, err = r.Once(context.Background())
			if err == nil || errors.Is(err, nginx.ErrCheck) != tt.check {
				t.Fatalf("Once with a broken template: %v (want ErrCheck: %v)", err, tt.check)
			}
			t.Logf("rejected: %v", err)
			if got := n.installed(t); got != lastGood {
				t.Fatalf("the broken render reached nginx's file:\n%s", got)
			}
			if n.ReloadCount() != reloads {
				t.Fatal("nginx was reloaded")
			}
			if seen := upSeen(t, n.URL("/"), 4); seen["web-1"] != 4 {
				t.Fatalf("nginx no longer serves the last good set: %v", seen)
			}
			leftovers, _ := filepath.Glob(filepath.Join(n.Dir, ".upstreams.conf.*"))
			if len(leftovers) > 0 {
				t.Fatalf("staged files left behind: %v", leftovers)
			}
		})
	}

	t.Run("WatchRetriesOnNextChange", func(t *testing.T) {
		// valid except when web has exactly 3 servers
		text := upstreams.DefaultTemplate + "{{range .Upstreams}}{{if eq (len .Servers) 3}}\nbogus_directive on;\n{{end}}{{end}}"
		bad, err := upstreams.NewTemplate("data-dependent", text)
		if err != nil {
			t.Fatal(err)
		}
		r, lw := upRenderer(t, c, cfg, bad, n)
		upRun(t, r)
		testenv.Eventually(t, 5*time.Second, "web-2 installed", func() bool { return upSeen(t, n.URL("/"), 10)["web-2"] > 0 })
		installed := n.installed(t)
		b3 := upStartBackend(t, "web-3", "127.0.0.1", 0)
		upPut(t, c, "web", b3.Name, b3.record())
		testenv.Eventually(t, 5*time.Second, "check failure logged", func() bool { return strings.Contains(lw.String(), "nginx check failed") })
		if n.installed(t) != installed {
			t.Fatal("the rejected render replaced the last good file")
		}
		if b3.hits.Load() != 0 || upSeen(t, n.URL("/"), 10)["web-3"] != 0 {
			t.Fatal("nginx serves the rejected set")
		}
		b4 := upStartBackend(t, "web-4", "127.0.0.1", 0)
		upPut(t, c, "web", b4.Name, b4.record())
		testenv.Eventually(t, 5*time.Second, "the next change installed", func() bool { return upSeen(t, n.URL("/"), 20)["web-4"] > 0 })
	})
}

// TestUpstreams_ResolverExample: the nginx 1.22 resolver + variable proxy_pass example
// re-resolves through a real CoreDNS as records come and go (ports by hand).
func TestUpstreams_ResolverExample(t *testing.T) {
	testenv.Need(t, "nginx", "coredns")
	e := testenv.StartEtcd(t)
	c := testenv.EtcdClient(t, e.Endpoint)
	dns := testenv.StartCoreDNS(t, upDomain, e.Endpoint)
	port := testenv.FreePort(t)
	b2 := upStartBackend(t, "at-127.0.0.2", "127.0.0.2", port)
	b3 := upStartBackend(t, "at-127.0.0.3", "127.0.0.3", port)
	site := upExample(t, "resolver-site.conf")
	for old, new := range map[string]string{"127.0.0.1:1053": dns.Addr, "valid=5s": "valid=1s", ":8080;": fmt.Sprintf(":%d;", port)} {
		if !strings.Contains(site, old) {
			t.Fatalf("examples/nginx/resolver-site.conf no longer holds %q", old)
		}
		site = strings.Replace(site, old, new, 1)
	}
	n := upStartNginx(t, site, nil)
	if code, _, _ := testenv.HTTPGet(upHTTP, n.URL("/")); code != http.StatusBadGateway {
		t.Fatalf("no record: %d, want 502", code)
	}
	upPut(t, c, "web", "h2", b2.record())
	d := testenv.Eventually(t, 10*time.Second, "127.0.0.2 served", func() bool { return upSeen1(n.URL("/")) == b2.Name })
	t.Logf("FIGURE resolver approach: new record served after %s (valid=1s, CoreDNS TTL from the record)", d.Round(time.Millisecond))
	upPut(t, c, "web", "h3", b3.record())
	testenv.Eventually(t, 10*time.Second, "both addresses served", func() bool {
		seen := map[string]bool{}
		for i := 0; i < 10; i++ {
			seen[upSeen1(n.URL("/"))] = true
		}
		return seen[b2.Name] && seen[b3.Name]
	})
	upDelete(t, c, "web", "h2")
	d = testenv.Eventually(t, 10*time.Second, "only 127.0.0.3 served", func() bool {
		for i := 0; i < 10; i++ {
			if upSeen1(n.URL("/")) != b3.Name {
				return false
			}
		}
		return true
	})
	t.Logf("FIGURE resolver approach: removed record left the rotation after %s", d.Round(time.Millisecond))
}

func upSeen1(url string) string {
	_, body, _ := testenv.HTTPGet(upHTTP, url)
	return body
}

// TestUpstreams_CLI drives the real binary: --dry-run prints the diff and changes nothing,
// --once installs, --install-service writes a runit service that, run by a real runsv,
// follows etcd with --watch.
func TestUpstreams_CLI(t *testing.T) {
	testenv.Need(t, "runsv", "sv", "svlogd")
	c, _, _, n := upSetup(t)
	e := c.Endpoints()[0]
	bin := filepath.Join(testenv.Binaries(t), "rundock")
	b1 := upStartBackend(t, "web-1", "127.0.0.1", 0)
	upPut(t, c, "web", b1.Name, b1.record())
	common := []string{"upstreams", "--etcd-endpoints", e, "--config", filepath.Join(testenv.RepoRoot(), "examples", "nginx", "upstreams.yml"),
		"--output", n.Output, "--check-cmd", n.CheckCmd, "--reload-cmd", n.ReloadCmd}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append(append([]string{}, common...), args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err != nil {
			err = fmt.Errorf("%v: %s", err, stderr.String())
		}
		return stdout.String(), err
	}

	before := n.installed(t)
	diff, err := run("--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	wantLine := fmt.Sprintf("+    server 127.0.0.1:%d max_fails=1 fail_timeout=5s;", b1.Port)
	if !strings.Contains(diff, wantLine) || !strings.Contains(diff, "-    server 127.0.0.1:1 down;") {
		t.Fatalf("--dry-run printed\n%s\nwant it to add %q and drop the down server", diff, wantLine)
	}
	if n.installed(t) != before || n.ReloadCount() != 0 {
		t.Fatal("--dry-run changed the file or reloaded nginx")
	}
	if _, err := run("--once"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "web-1 served after --once", func() bool { return upSeen(t, n.URL("/"), 2)["web-1"] == 2 })
	if diff, err := run("--dry-run"); err != nil || diff != "" {
		t.Fatalf("--dry-run after --once: %q %v, want no diff", diff, err)
	}
	if _, err := run("--once", "--watch"); err == nil {
		t.Fatal("--once --watch accepted")
	}

	sv := filepath.Join(t.TempDir(), "sv")
	logDir := filepath.Join(t.TempDir(), "log")
	if _, err := run("--install-service", "--sv-dir", sv, "--log-dir", logDir, "--debounce", "100ms"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(sv, render.UpstreamsService)
	script, _ := os.ReadFile(filepath.Join(dir, "run"))
	t.Logf("run:\n%s", script)
	if !strings.Contains(string(script), "exec 2>&1\n") || !strings.Contains(string(script), "\nexec "+render.Quote(bin)+" 'upstreams' '--watch' ") || !strings.Contains(string(script), "'--reload-cmd=echo reload") {
		t.Fatalf("unexpected run script:\n%s", script)
	}
	runsv := exec.Command("runsv", dir)
	if err := runsv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("sv", "-w", "5", "exit", dir).Run()
		runsv.Process.Signal(syscall.SIGTERM)
		runsv.Wait()
	})
	testenv.Eventually(t, 10*time.Second, "rundock-upstreams up under runsv", func() bool {
		out, _ := exec.Command("sv", "status", dir).Output()
		return strings.HasPrefix(string(out), "run: ")
	})
	b2 := upStartBackend(t, "web-2", "127.0.0.1", 0)
	upPut(t, c, "web", b2.Name, b2.record())
	testenv.Eventually(t, 10*time.Second, "web-2 served through the runit service", func() bool { return upSeen(t, n.URL("/"), 10)["web-2"] > 0 })
	testenv.Eventually(t, 5*time.Second, "svlogd wrote the service log", func() bool {
		b, _ := os.ReadFile(filepath.Join(logDir, "current"))
		return strings.Contains(string(b), "upstreams installed and nginx reloaded")
	})
}
