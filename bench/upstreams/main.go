// Command upstreams measures `rundock upstreams --watch` in front of a real nginx: the time
// from the etcd Put of a new instance's record to the first request nginx sends to that
// instance (a loopback HTTP backend records its first request's time while a client polls
// nginx), and the nginx reloads a burst of changes costs.
//
// Each latency trial is a lone change: the previous trial's record is deleted and its
// render given time to settle first. Each burst puts -burst records, evenly spread over
// -burst-window, and counts the reloads until the renderer has been quiet for 1 s past
// --max-delay.
//
// Output: markdown table rows on stdout; progress on stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rundock/rundock/bench/internal/measure"
	"github.com/rundock/rundock/internal/skydns"
)

const domain = "s.prod.example.com"

func main() {
	var (
		rundock  = flag.String("rundock", "bin/rundock", "rundock binary")
		endpoint = flag.String("endpoint", "http://127.0.0.1:2379", "etcd (records are put below /skydns/com/example/prod/s/)")
		examples = flag.String("examples", "examples/nginx", "directory of upstreams.yml and upstreams-site.conf")
		trials   = flag.Int("trials", 20, "lone-change trials")
		bursts   = flag.Int("bursts", 3, "bursts")
		burstN   = flag.Int("burst", 50, "changes per burst")
		burstWin = flag.Duration("burst-window", 2*time.Second, "each burst's changes spread over this")
		extra    = flag.String("watch-flags", "", "extra flags for rundock upstreams --watch, space-separated")
		verbose  = flag.Bool("v", false, "copy the renderer's log to stderr at the end")
	)
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	dir, err := os.MkdirTemp("", "rdbench-upstreams-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)

	c, err := measure.EtcdClient(*endpoint)
	if err != nil {
		fatal(err)
	}
	defer c.Close()
	base, _ := skydns.ServiceKey(skydns.DefaultPrefix, domain, "web")
	// Every etcd call has a bound: a call that never returns must not hang the bench run.
	bounded := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 10*time.Second) }
	cctx, cancel := bounded()
	c.Delete(cctx, base, clientv3.WithPrefix())
	cancel()
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Delete(cctx, base, clientv3.WithPrefix())
	}()

	// nginx on a free loopback port with the example site; the upstreams file comes from
	// rundock upstreams --once before nginx starts.
	port := freePort()
	site, err := os.ReadFile(filepath.Join(*examples, "upstreams-site.conf"))
	if err != nil {
		fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	out := filepath.Join(dir, "upstreams.conf")
	reloads := filepath.Join(dir, "reloads")
	write(filepath.Join(dir, "site.conf"), strings.Replace(string(site), "listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", port), 1))
	write(conf, fmt.Sprintf("worker_processes 1;\nerror_log %[1]s/error.log warn;\npid %[1]s/nginx.pid;\n"+
		"events { worker_connections 512; }\nhttp {\n    access_log off;\n    include %[1]s/upstreams.conf;\n    include %[1]s/site.conf;\n}\n", dir))
	check := fmt.Sprintf("nginx -t -q -p %s -c %s", dir, conf)
	reload := fmt.Sprintf("echo reload >> %s && nginx -s reload -p %s -c %s", reloads, dir, conf)
	common := []string{"upstreams", "--etcd-endpoints", *endpoint, "--domain", domain,
		"--config", filepath.Join(*examples, "upstreams.yml"), "--output", out}
	if b, err := exec.Command(*rundock, append(common, "--once", "--check-cmd", "true", "--reload-cmd", "true")...).CombinedOutput(); err != nil {
		fatal(fmt.Errorf("rundock upstreams --once: %v: %s", err, b))
	}
	ngx := exec.Command("nginx", "-p", dir, "-c", conf, "-g", "daemon off;")
	ngx.Stderr = os.Stderr
	measure.OrphanProof(ngx)
	if err := ngx.Start(); err != nil {
		fatal(fmt.Errorf("cannot start nginx: %w", err))
	}
	defer measure.Stop(3*time.Second, ngx)
	nginxURL := fmt.Sprintf("http://127.0.0.1:%d/", port)
	probe := &http.Client{Timeout: time.Second}
	if !eventually(10*time.Second, func() bool {
		r, err := probe.Get(nginxURL)
		if err == nil {
			r.Body.Close()
		}
		return err == nil
	}) {
		fatal(fmt.Errorf("nginx did not listen on %d", port))
	}

	args := append(common, "--watch", "--check-cmd", check, "--reload-cmd", reload)
	if *extra != "" {
		args = append(args, strings.Fields(*extra)...)
	}
	w := exec.Command(*rundock, args...)
	logf, _ := os.Create(filepath.Join(dir, "watch.log"))
	w.Stdout, w.Stderr = logf, logf
	measure.OrphanProof(w)
	if err := w.Start(); err != nil {
		fatal(err)
	}
	defer measure.Stop(3*time.Second, w)
	if *verbose {
		defer func() { b, _ := os.ReadFile(logf.Name()); os.Stderr.Write(b) }()
	}
	if !eventually(10*time.Second, func() bool { b, _ := os.ReadFile(logf.Name()); return strings.Contains(string(b), "listed records") }) {
		fatal(fmt.Errorf("rundock upstreams --watch did not list the records"))
	}
	time.Sleep(500 * time.Millisecond)

	// Lone changes, twice: once with a client that opens a new connection per request, once
	// with one that keeps its connection alive (nginx moves it to the new worker only when
	// the old one shuts down, which nginx's master does 100 ms after starting the new one).
	for _, keepalive := range []bool{false, true} {
		rel, n, served := lone(ctx, c, nginxURL, reloads, *trials, keepalive)
		how := "a new connection per request"
		if keepalive {
			how = "one kept-alive connection"
		}
		fmt.Printf("| put -> reload command returned (client: %s) | %s | %d for %d puts |\n", how, rel.Row(), n, *trials)
		fmt.Printf("| put -> first request nginx sends to the new instance (client: %s) | %s | |\n", how, served.Row())
	}

	var perBurst []string
	for j := 0; j < *bursts && ctx.Err() == nil; j++ {
		cctx, cancel := bounded()
		c.Delete(cctx, base, clientv3.WithPrefix())
		cancel()
		time.Sleep(time.Second)
		r0 := count(reloads)
		step := *burstWin / time.Duration(max(*burstN-1, 1))
		t0 := time.Now()
		for i := 0; i < *burstN; i++ {
			time.Sleep(time.Until(t0.Add(time.Duration(i) * step)))
			key, _ := skydns.InstanceKey(skydns.DefaultPrefix, domain, "web", fmt.Sprintf("b%d-%d", j, i))
			cctx, cancel := bounded()
			_, err := c.Put(cctx, key, skydns.Record{Host: "127.0.0.1", Port: 20000 + i, TTL: 60}.Encode())
			cancel()
			if err != nil {
				fatal(err)
			}
		}
		// settled: the last render comes at most max-delay after the burst's first held change
		time.Sleep(2*time.Second + time.Second)
		b, _ := os.ReadFile(out)
		servers := strings.Count(string(b), "server 127.0.0.1:2")
		perBurst = append(perBurst, fmt.Sprintf("%d (%d/%d servers rendered)", count(reloads)-r0, servers, *burstN))
	}
	fmt.Printf("| burst: %d changes in %s (one every %s) | | | | %d bursts | %s per burst |\n", *burstN, *burstWin,
		(*burstWin / time.Duration(max(*burstN-1, 1))).Round(time.Millisecond), len(perBurst), strings.Join(perBurst, ", "))
}

// lone runs trials lone changes while a client polls nginx (every 1 ms), and returns the
// times from each put to the reload command's return and to the new instance's first
// request, and the reloads they cost.
func lone(ctx context.Context, c *clientv3.Client, nginxURL, reloads string, trials int, keepalive bool) (rel measure.Durations, nReloads int, served measure.Durations) {
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go func() {
		hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableKeepAlives: !keepalive}}
		for pollCtx.Err() == nil {
			if r, err := hc.Get(nginxURL); err == nil {
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for i := 0; i < trials && ctx.Err() == nil; i++ {
		b := startBackend()
		key, _ := skydns.InstanceKey(skydns.DefaultPrefix, domain, "web", fmt.Sprintf("t%d", i))
		r0 := count(reloads)
		t0 := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.Put(cctx, key, skydns.Record{Host: "127.0.0.1", Port: b.port, TTL: 60}.Encode())
		cancel()
		if err != nil {
			fatal(err)
		}
		if eventually(5*time.Second, func() bool { return count(reloads) > r0 }) {
			rel = append(rel, time.Since(t0))
		}
		if eventually(5*time.Second, func() bool { return b.first.Load() != 0 }) {
			served = append(served, time.Unix(0, b.first.Load()).Sub(t0))
		} else {
			fmt.Fprintf(os.Stderr, "upstreams: trial %d: not served within 5 s\n", i)
		}
		nReloads += count(reloads) - r0
		cctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		c.Delete(cctx, key)
		cancel()
		time.Sleep(600 * time.Millisecond) // the delete renders; then quiet again
		b.srv.Close()
		time.Sleep(200 * time.Millisecond)
	}
	return rel, nReloads, served
}

type backend struct {
	port  int
	srv   *http.Server
	first atomic.Int64
}

func startBackend() *backend {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	b := &backend{port: l.Addr().(*net.TCPAddr).Port}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.first.CompareAndSwap(0, time.Now().UnixNano())
		io.WriteString(w, "ok")
	})}
	go b.srv.Serve(l)
	return b
}

func count(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "reload\n")
}

func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

func freePort() int {
	p, err := measure.FreePort()
	if err != nil {
		fatal(err)
	}
	return p
}

func write(path, s string) {
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "upstreams:", err)
	os.Exit(1)
}
