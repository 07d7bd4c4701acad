// Command memory measures what N announcers on one host cost in memory, beside N copies of
// the baseline timer loop: for each N it starts N processes, waits until all N records are
// in etcd, lets them idle, and reads /proc/PID/smaps_rollup of each.
//
// RSS counts the announcer's binary text once per process although the kernel holds it
// once; PSS shares each page among the processes that map it (the PSS of all N adds up to
// what they cost together); private memory (Private_Clean + Private_Dirty) is what one more
// process costs. The table gives the median per process of each, and the PSS of all N.
//
// The announcers follow a container through a fake Docker Engine API on a unix socket
// (DOCKER_HOST), which answers the calls the container watcher makes: the /_ping of the
// version negotiation, the inspect of a running container, and an events stream that stays
// open and quiet. It writes one etcd started here (or --etcd). The loops are
// bench/baseline/announce-loop.sh as bench/footprint runs it: bash, its sleep, and an
// etcdctl twice per period; the figures are the bash and its children at the time of
// reading (the sleep: the etcdctl runs are over by then).
//
// Output: a markdown table on stdout; progress on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rundock/rundock/bench/internal/measure"
	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/testenv/procfs"
	"github.com/rundock/rundock/templates"
)

const domain = "s.prod.example.com"

// prSetChildSubreaper is prctl's PR_SET_CHILD_SUBREAPER (linux/prctl.h).
const prSetChildSubreaper = 36

func main() {
	var (
		announcer = flag.String("announcer", "bin/announcer", "announcer binary; empty skips the announcer rows")
		loopSh    = flag.String("loop", "bench/baseline/announce-loop.sh", "baseline timer loop script; empty skips the loop rows")
		etcdEP    = flag.String("etcd", "", "etcd endpoint to use (default: start an etcd of our own with --etcd-bin)")
		etcdBin   = flag.String("etcd-bin", "etcd", "etcd binary for the etcd started here")
		sizes     = flag.String("sizes", "1,10,50", "numbers of processes, comma-separated")
		idle      = flag.Duration("idle", 5*time.Second, "idle time after the last record is in etcd, before reading")
		label     = flag.String("label", "", "text after the announcer's name in its rows (e.g. the --env tried)")
	)
	var env []string
	flag.Func("env", "extra environment variable K=V of the announcers (e.g. GOMAXPROCS=1); repeatable", func(kv string) error {
		if !strings.Contains(kv, "=") {
			return fmt.Errorf("%q: want K=V", kv)
		}
		env = append(env, kv)
		return nil
	})
	flag.Parse()
	if err := run(options{announcer: *announcer, loop: *loopSh, etcd: *etcdEP, etcdBin: *etcdBin, sizes: *sizes,
		idle: *idle, label: *label, env: env}); err != nil {
		fatal(err)
	}
}

// options are the command's flags.
type options struct {
	announcer, loop, etcd, etcdBin, sizes, label string
	idle                                         time.Duration
	env                                          []string
}

// run measures every size, announcers then loops; it returns the first error, after
// stopping what it started.
func run(o options) error {
	ns, err := parseSizes(o.sizes)
	if err != nil {
		return err
	}
	// The subreaper of what it starts: a loop's sleep, orphaned when its loop exits, comes
	// here to be reaped rather than left to init.
	syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	work, err := os.MkdirTemp("", "rdbench-memory.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	ep := o.etcd
	if ep == "" {
		stop, e, err := startEtcd(ctx, o.etcdBin, work)
		if err != nil {
			return err
		}
		defer stop()
		ep = e
	}
	cli, err := measure.EtcdClient(ep)
	if err != nil {
		return err
	}
	defer cli.Close()

	sock := filepath.Join(work, "docker.sock")
	fake := &fakeDocker{}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", sock, err)
	}
	srv := &http.Server{Handler: fake}
	go srv.Serve(ln)
	defer srv.Close()

	runEnv, err := runScriptEnv()
	if err != nil {
		return err
	}
	extra := append(append(runEnv, "DOCKER_HOST=unix://"+sock), o.env...)
	fmt.Fprintf(os.Stderr, "memory: announcer environment: %s\n", strings.Join(extra, " "))
	name := "announcer (Go)"
	if o.label != "" {
		name += ", " + o.label
	}
	fmt.Println("| who | N | RSS per process | PSS per process | private per process | PSS of all N |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	for _, n := range ns {
		if o.announcer == "" {
			break
		}
		row, err := measureGroup(ctx, cli, n, o.idle, func(i int) (*exec.Cmd, string) {
			svc := fmt.Sprintf("mem-a%d-%d", n, i)
			c := exec.Command(o.announcer, "--name", svc, "--port", "8080", "--domain", domain, "--instance", "bench",
				"--announce-as", "private", "--container", svc, "--ttl", "30", "--dns-ttl", "30",
				"--etcd-endpoints", ep, "--state-dir", filepath.Join(work, "state", svc))
			c.Env = extra
			return c, key(svc)
		})
		if err != nil {
			return fmt.Errorf("%s, N=%d: %w", name, n, err)
		}
		fmt.Printf("| %s | %d | %s |\n", name, n, row)
	}
	if u := fake.unknown.Load(); u > 0 {
		fmt.Fprintf(os.Stderr, "memory: the fake Docker API answered %d requests it does not know with 404 (see above)\n", u)
	}
	if o.loop == "" {
		return nil
	}
	for _, n := range ns {
		row, err := measureGroup(ctx, cli, n, o.idle, func(i int) (*exec.Cmd, string) {
			svc := fmt.Sprintf("mem-l%d-%d", n, i)
			value := skydns.Record{Host: "127.0.0.1", Port: 8080, TTL: 60}.Encode()
			return exec.Command("bash", o.loop, ep, key(svc), value), key(svc)
		})
		if err != nil {
			return fmt.Errorf("timer loop, N=%d: %w", n, err)
		}
		fmt.Printf("| timer loop (bash + sleep) | %d | %s |\n", n, row)
	}
	return nil
}

// runScriptEnv returns the variables the announcer's run script sets and exports
// (templates/announcer-run.tmpl: PATH, GOMAXPROCS), as K=V, so that the announcers here
// run as runit runs them.
func runScriptEnv() ([]string, error) {
	b, err := templates.FS.ReadFile("announcer-run.tmpl")
	if err != nil {
		return nil, err
	}
	set := map[string]string{}
	var env []string
	for _, line := range strings.Split(string(b), "\n") {
		if m := assignment.FindStringSubmatch(line); m != nil {
			set[m[1]] = m[0]
		}
		if names, ok := strings.CutPrefix(line, "export "); ok {
			for _, n := range strings.Fields(names) {
				if kv, ok := set[n]; ok {
					env = append(env, kv)
				}
			}
		}
	}
	if len(env) == 0 {
		return nil, errors.New("templates/announcer-run.tmpl exports no variable: cannot tell the announcer's environment")
	}
	return env, nil
}

var assignment = regexp.MustCompile(`^([A-Z_][A-Z0-9_]*)=([^ $'"]+)$`)

// key is the record key of the service svc.
func key(svc string) string {
	k, err := skydns.InstanceKey(skydns.DefaultPrefix, domain, svc, "bench")
	if err != nil {
		panic(err) // the names above are DNS labels
	}
	return k
}

// measureGroup starts n processes made by mk (each with the record key it writes), waits
// until all n records are in etcd and then idle, reads their memory, stops them and
// returns the row's cells after N.
func measureGroup(ctx context.Context, cli *clientv3.Client, n int, idle time.Duration, mk func(int) (*exec.Cmd, string)) (string, error) {
	// Their stderr goes to a file, not a pipe: a loop's sleep outlives it and would hold
	// a pipe open, so that Wait waited for the sleep too.
	log, err := os.CreateTemp("", "rdbench-memory-log.")
	if err != nil {
		return "", err
	}
	defer os.Remove(log.Name())
	defer log.Close()
	var cmds []*exec.Cmd
	var keys []string
	// A loop's sleep outlives it (its trap exits without killing it); as the subreaper
	// (see run), this process inherits, kills and reaps it.
	var sleeps []int
	defer func() {
		measure.Stop(5*time.Second, cmds...)
		for _, pid := range sleeps {
			if syscall.Kill(pid, syscall.SIGTERM) == nil {
				var ws syscall.WaitStatus
				syscall.Wait4(pid, &ws, 0, nil)
			}
		}
	}()
	for i := range n {
		c, k := mk(i)
		c.Stdout, c.Stderr = log, log
		measure.OrphanProof(c)
		if err := c.Start(); err != nil {
			return "", fmt.Errorf("cannot start %s: %w", c.Path, err)
		}
		cmds, keys = append(cmds, c), append(keys, k)
	}
	t0 := time.Now()
	if err := waitKeys(ctx, cli, keys, 60*time.Second); err != nil {
		b, _ := os.ReadFile(log.Name())
		return "", fmt.Errorf("%w; their output ends: %s", err, b[max(0, len(b)-2048):])
	}
	fmt.Fprintf(os.Stderr, "memory: %d records in etcd after %s; idle %s\n", n, time.Since(t0).Round(time.Millisecond), idle)
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case <-time.After(idle):
	}
	var rss, pss, priv []int64
	var pssAll int64
	for _, c := range cmds {
		m, err := treeMemory(c.Process.Pid)
		sleeps = append(sleeps, procfs.Children(c.Process.Pid)...)
		if err != nil {
			return "", err
		}
		rss, pss, priv = append(rss, m.Rss), append(pss, m.Pss), append(priv, m.Private())
		pssAll += m.Pss
	}
	return fmt.Sprintf("%s | %s | %s | %s", measure.MiB(median(rss)), measure.MiB(median(pss)), measure.MiB(median(priv)), measure.MiB(pssAll)), nil
}

// treeMemory is the memory of pid and its children (a loop's sleep), summed.
func treeMemory(pid int) (procfs.Memory, error) {
	m, err := procfs.Rollup(pid)
	if err != nil {
		return m, err
	}
	for _, c := range procfs.Children(pid) {
		if cm, err := treeMemory(c); err == nil {
			m = m.Add(cm)
		}
	}
	return m, nil
}

func waitKeys(ctx context.Context, cli *clientv3.Client, keys []string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	missing := keys
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var left []string
		for _, k := range missing {
			if !measure.HasKey(ctx, cli, k) {
				left = append(left, k)
			}
		}
		if missing = left; len(missing) == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%d of %d records not in etcd after %s (first: %s)", len(missing), len(keys), limit, missing[0])
}

func median(v []int64) int64 {
	if len(v) == 0 {
		return -1
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func parseSizes(s string) ([]int, error) {
	var ns []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--sizes %q: %q is not a positive number", s, f)
		}
		ns = append(ns, n)
	}
	if len(ns) == 0 {
		return nil, fmt.Errorf("--sizes %q: no size", s)
	}
	return ns, nil
}

// startEtcd starts an etcd on two free loopback ports with its data in work; stop kills it.
func startEtcd(ctx context.Context, bin, work string) (stop func(), endpoint string, err error) {
	cport, err := measure.FreePort()
	if err != nil {
		return nil, "", err
	}
	pport, err := measure.FreePort()
	if err != nil {
		return nil, "", err
	}
	client, peer := fmt.Sprintf("http://127.0.0.1:%d", cport), fmt.Sprintf("http://127.0.0.1:%d", pport)
	log := &tail{}
	c := exec.Command(bin, "--name", "memory", "--data-dir", filepath.Join(work, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "memory="+peer, "--log-level", "error")
	c.Stdout, c.Stderr = log, log
	measure.OrphanProof(c)
	if err := c.Start(); err != nil {
		return nil, "", fmt.Errorf("cannot start %s: %w", bin, err)
	}
	stop = func() { measure.Stop(5*time.Second, c) }
	for range 100 {
		if r, err := http.Get(client + "/health"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return stop, client, nil
			}
		}
		select {
		case <-ctx.Done():
			stop()
			return nil, "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	stop()
	return nil, "", fmt.Errorf("etcd did not start on %s: %s", client, log.String())
}

// fakeDocker answers the Docker Engine API calls of the announcer's container watcher
// for any container name: each is running, on the bridge network, with no health check.
// Paths may carry any /vMAJOR.MINOR version prefix. Whatever else is asked gets a 404 and
// is counted, so a watcher that asks more shows up in the run's log.
type fakeDocker struct {
	unknown atomic.Int64
}

var (
	versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+/`)
	inspectPath   = regexp.MustCompile(`^/containers/([^/]+)/json$`)
)

// apiVersion is what the fake says it speaks (Docker 27's).
const apiVersion = "1.47"

func (f *fakeDocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if loc := versionPrefix.FindStringIndex(p); loc != nil {
		p = p[loc[1]-1:]
	}
	w.Header().Set("Api-Version", apiVersion)
	w.Header().Set("Ostype", "linux")
	switch m := inspectPath.FindStringSubmatch(p); {
	case p == "/_ping" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("OK"))
	case p == "/version" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"Version":"27.5.1","ApiVersion":%q,"MinAPIVersion":"1.24","Os":"linux","Arch":"amd64"}`, apiVersion)
	case m != nil && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"Id":%q,"Name":"/%s","State":{"Status":"running","Running":true,"Paused":false,"Restarting":false,"Pid":4242,"StartedAt":"2026-01-01T00:00:00Z"},`+
			`"Config":{"Image":"rundock-echo:bench"},"NetworkSettings":{"Ports":{},"Networks":{"bridge":{"IPAddress":"172.17.0.2","IPPrefixLen":16,"Gateway":"172.17.0.1"}}}}`,
			containerID(m[1]), m[1])
	case p == "/events" && r.Method == http.MethodGet:
		// An events stream that stays open and quiet: headers now, then nothing until the
		// client goes.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	default:
		f.unknown.Add(1)
		fmt.Fprintf(os.Stderr, "memory: fake Docker API: no answer for %s %s\n", r.Method, r.URL)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"message":"page not found: %s"}`, p)
	}
}

// containerID is a stable 64-hex-digit ID for a container name.
func containerID(name string) string {
	var h uint64 = 14695981039346656037
	for i := range len(name) {
		h = (h ^ uint64(name[i])) * 1099511628211
	}
	return strings.Repeat(fmt.Sprintf("%016x", h), 4)
}

// tail keeps the last 2 KiB written to it, for error messages.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2048 {
		t.b = t.b[len(t.b)-2048:]
	}
	return len(p), nil
}

func (t *tail) String() string { return strings.TrimSpace(string(t.b)) }

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "memory:", err)
	os.Exit(1)
}
