// Command latency measures how fast records follow containers: the announcer (a real
// process, as runit runs it) against real Docker, etcd and CoreDNS, and beside it the
// baseline timer loop (bench/baseline/announce-loop.sh). Times are taken on one clock:
// the Docker API call or signal, an etcd watch event for the key, and a 5 ms DNS poll
// against CoreDNS.
//
// Output: markdown table rows on stdout (| what | p50 | p95 | max | n |); progress on
// stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rundock/rundock/bench/internal/measure"
	"github.com/rundock/rundock/internal/dockerapi"
	"github.com/rundock/rundock/internal/skydns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const domain = "s.prod.example.com"

type bench struct {
	announcer string
	loopSh    string
	endpoint  string
	image     string
	trials    int
	prefix    string
	log       *slog.Logger
	etcd      *clientv3.Client
	docker    *dockerapi.Client
	dns       *net.Resolver

	mu    sync.Mutex
	procs []*exec.Cmd
	names []string
}

func main() {
	b := &bench{log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	var dnsAddr string
	var killTTLs string
	var loopKills int
	flag.StringVar(&b.announcer, "announcer", "bin/announcer", "announcer binary")
	flag.StringVar(&b.loopSh, "loop", "bench/baseline/announce-loop.sh", "baseline timer loop script")
	flag.StringVar(&b.endpoint, "endpoint", "http://127.0.0.1:2379", "etcd endpoint")
	flag.StringVar(&dnsAddr, "dns", "127.0.0.1:1053", "CoreDNS address serving "+domain)
	flag.StringVar(&b.image, "image", "rundock-echo:test", "echo image (examples/images/build.sh)")
	flag.IntVar(&b.trials, "trials", 30, "trials per latency row")
	flag.StringVar(&killTTLs, "kill-ttls", "5,30", "announcer --ttl values for the SIGKILL rows")
	flag.IntVar(&loopKills, "loop-kills", 30, "timer loops killed for the baseline SIGKILL row (0: skip)")
	flag.Parse()
	b.prefix = fmt.Sprintf("rdbench-lat-%d", os.Getpid())
	b.dns = measure.Resolver(dnsAddr)

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var err error
	b.etcd, err = measure.EtcdClient(b.endpoint)
	if err != nil {
		fatal(err)
	}
	b.docker, err = dockerapi.FromEnv()
	if err != nil {
		fatal(err)
	}
	atExit = b.cleanup
	defer b.cleanup()

	// The baseline SIGKILL row needs loops staggered over their 45 s period and then up to
	// 60 s of lease: it runs in the background while the other rows run.
	var loopRows []string
	var lw sync.WaitGroup
	if loopKills > 0 {
		lw.Add(1)
		go func() {
			defer lw.Done()
			loopRows = b.loopKill(ctx, loopKills)
		}()
	}
	var rows []string
	rows = append(rows, b.startStop(ctx)...)
	rows = append(rows, b.health(ctx)...)
	for _, s := range strings.Split(killTTLs, ",") {
		var ttl int
		fmt.Sscan(s, &ttl)
		if ttl > 0 {
			rows = append(rows, b.announcerKill(ctx, ttl))
		}
	}
	rows = append(rows, b.loopStart(ctx)...)
	rows = append(rows, b.crashLoop(ctx)...)
	lw.Wait()
	rows = append(rows, loopRows...)
	for _, r := range rows {
		fmt.Println(r)
	}
}

// atExit is the cleanup fatal runs before exiting.
var atExit func()

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "latency:", err)
	if atExit != nil {
		atExit()
	}
	os.Exit(1)
}

func (b *bench) key(name, instance string) string {
	k, err := skydns.InstanceKey(skydns.DefaultPrefix, domain, name, instance)
	if err != nil {
		fatal(err)
	}
	return k
}

// startAnnouncer runs the announcer binary as runit would, with extra flags.
func (b *bench) startAnnouncer(name, instance string, ttl int, extra ...string) *exec.Cmd {
	args := append([]string{"--name", name, "--port", "8080", "--host", "127.0.0.1", "--instance", instance,
		"--domain", domain, "--etcd-endpoints", b.endpoint, "--ttl", fmt.Sprint(ttl)}, extra...)
	cmd := exec.Command(b.announcer, args...)
	lf, _ := os.CreateTemp("", b.prefix+"-announcer-*.log")
	cmd.Stdout, cmd.Stderr = lf, lf
	return b.spawn(cmd, b.announcer)
}

// spawn starts cmd, orphan-proof, and keeps it for cleanup; what names it in the error.
func (b *bench) spawn(cmd *exec.Cmd, what string) *exec.Cmd {
	measure.OrphanProof(cmd)
	if err := cmd.Start(); err != nil {
		fatal(fmt.Errorf("cannot start %s: %w", what, err))
	}
	b.mu.Lock()
	b.procs = append(b.procs, cmd)
	b.mu.Unlock()
	return cmd
}

// container creates a stopped container with --init, so SIGTERM stops the echo server,
// and with no network: the announcer is given --host, and the rows must not depend on
// the state of a bridge that other tests on this engine may be restarting.
func (b *bench) container(name string, args ...string) string {
	full := b.prefix + "-" + name
	b.mu.Lock()
	b.names = append(b.names, full)
	b.mu.Unlock()
	cargs := append([]string{"create", "--init", "--network", "none", "--name", full}, args...)
	cargs = append(cargs, b.image)
	if out, err := exec.Command("docker", cargs...).CombinedOutput(); err != nil {
		fatal(fmt.Errorf("cannot create container %s: %v: %s", full, err, out))
	}
	return full
}

func (b *bench) cleanup() {
	b.mu.Lock()
	defer b.mu.Unlock()
	measure.Stop(2*time.Second, b.procs...)
	if len(b.names) > 0 {
		exec.Command("docker", append([]string{"rm", "-f"}, b.names...)...).Run()
	}
}

// watcher sends the time of every PUT (true) and DELETE (false) of key.
type watcher struct {
	ch chan ev
}

type ev struct {
	put bool
	at  time.Time
}

func (b *bench) watch(ctx context.Context, key string) *watcher {
	w := &watcher{ch: make(chan ev, 1024)}
	wc := b.etcd.Watch(ctx, key)
	go func() {
		for resp := range wc {
			at := time.Now()
			for _, e := range resp.Events {
				w.ch <- ev{put: e.Type == clientv3.EventTypePut, at: at}
			}
		}
	}()
	return w
}

// next waits for the next event of the given kind, up to timeout; -1 on timeout.
func (w *watcher) next(put bool, since time.Time, timeout time.Duration) time.Duration {
	t := time.After(timeout)
	for {
		select {
		case e := <-w.ch:
			if e.put == put {
				return e.at.Sub(since)
			}
		case <-t:
			return -1
		}
	}
}

func (w *watcher) drain() {
	for {
		select {
		case <-w.ch:
		default:
			return
		}
	}
}

func row(what string, d measure.Durations) string {
	return fmt.Sprintf("| %s | %s |", what, d.Row())
}

// waitNotRunning waits up to 15 s until ctr no longer runs (or Docker gives up waiting).
func (b *bench) waitNotRunning(ctx context.Context, ctr string) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	b.docker.ContainerWait(ctx, ctr)
}

// startStop: docker start -> record, then docker stop or docker kill -> gone.
func (b *bench) startStop(ctx context.Context) []string {
	name := "latplain"
	ctr := b.container("plain")
	key := b.key(name, "bench")
	fqdn := name + "." + domain
	w := b.watch(ctx, key)
	b.startAnnouncer(name, "bench", 5, "--container", ctr)
	evs := b.dockerEvents(ctx, ctr)
	var upEtcd, upDNS, upEvEtcd, stopEtcd, stopDNS, killEtcd, killDNS measure.Durations
	b.log.Info("start/stop trials", "trials", b.trials)
	for i := 0; i < 2*b.trials && ctx.Err() == nil; i++ {
		w.drain()
		evs.drain()
		t0 := time.Now()
		if err := b.docker.ContainerStart(ctx, ctr); err != nil {
			fatal(err)
		}
		dnsUp := make(chan time.Duration, 1)
		go func() { dnsUp <- measure.WaitDNS(ctx, b.dns, fqdn, true, t0) }()
		d := w.next(true, t0, 10*time.Second)
		if i%2 == 0 && d >= 0 {
			upEtcd = append(upEtcd, d)
			if st := evs.when("start", 2*time.Second); !st.IsZero() {
				upEvEtcd = append(upEvEtcd, t0.Add(d).Sub(st))
			}
		}
		if dd := <-dnsUp; i%2 == 0 && dd >= 0 {
			upDNS = append(upDNS, dd)
		}
		time.Sleep(200 * time.Millisecond)
		t1 := time.Now()
		dnsGone := make(chan time.Duration, 1)
		go func() { dnsGone <- measure.WaitDNS(ctx, b.dns, fqdn, false, t1) }()
		var err error
		if i%2 == 0 {
			err = b.docker.ContainerStop(ctx, ctr, 10)
		} else {
			err = b.docker.ContainerKill(ctx, ctr, "KILL")
		}
		if err != nil {
			fatal(err)
		}
		g := w.next(false, t1, 10*time.Second)
		gd := <-dnsGone
		if i%2 == 0 {
			stopEtcd, stopDNS = append(stopEtcd, g), append(stopDNS, gd)
		} else {
			killEtcd, killDNS = append(killEtcd, g), append(killDNS, gd)
		}
		b.waitNotRunning(ctx, ctr)
	}
	return []string{
		row("rundock announcer: `docker start` → record in etcd", upEtcd),
		row("rundock announcer: Docker `start` event → record in etcd", upEvEtcd),
		row("rundock announcer: `docker start` → A answer from CoreDNS", upDNS),
		row("rundock announcer: `docker stop` → record gone from etcd", stopEtcd),
		row("rundock announcer: `docker stop` → NXDOMAIN", stopDNS),
		row("rundock announcer: `docker kill` → record gone from etcd", killEtcd),
		row("rundock announcer: `docker kill` → NXDOMAIN", killDNS),
	}
}

// health: a container with a health check is announced only once healthy.
func (b *bench) health(ctx context.Context) []string {
	name := "lathealth"
	ctr := b.container("health", "--health-cmd", "/echo -check", "--health-interval", "1s", "--health-timeout", "1s", "--health-retries", "1")
	key := b.key(name, "bench")
	w := b.watch(ctx, key)
	b.startAnnouncer(name, "bench", 5, "--container", ctr)
	evs := b.dockerEvents(ctx, ctr)
	var fromStart, fromHealthy measure.Durations
	early := 0
	b.log.Info("health trials", "trials", b.trials)
	for i := 0; i < b.trials && ctx.Err() == nil; i++ {
		w.drain()
		evs.drain()
		t0 := time.Now()
		if err := b.docker.ContainerStart(ctx, ctr); err != nil {
			fatal(err)
		}
		d := w.next(true, t0, 20*time.Second)
		if d >= 0 {
			fromStart = append(fromStart, d)
			h := evs.when("health_status: healthy", 5*time.Second)
			if !h.IsZero() {
				if t0.Add(d).Before(h) {
					early++
				}
				fromHealthy = append(fromHealthy, t0.Add(d).Sub(h))
			}
		}
		b.docker.ContainerKill(ctx, ctr, "KILL")
		w.next(false, time.Now(), 10*time.Second)
		b.waitNotRunning(ctx, ctr)
	}
	rows := []string{
		row("rundock announcer, health check every 1 s: `docker start` → record in etcd", fromStart),
		row("rundock announcer: Docker `health_status: healthy` event → record in etcd", fromHealthy),
	}
	if early > 0 {
		rows = append(rows, fmt.Sprintf("| rundock announcer: records put BEFORE the container was healthy | %d of %d | | | |", early, len(fromStart)))
	}
	return rows
}

// announcerKill: SIGKILL n announcers at once; each record must go when its lease expires.
func (b *bench) announcerKill(ctx context.Context, ttl int) string {
	n := b.trials
	name := fmt.Sprintf("latkill%d", ttl)
	var cmds []*exec.Cmd
	var ws []*watcher
	b.log.Info("announcer SIGKILL round", "announcers", n, "ttl", ttl)
	for i := 0; i < n; i++ {
		inst := fmt.Sprintf("k%d", i)
		ws = append(ws, b.watch(ctx, b.key(name, inst)))
		cmds = append(cmds, b.startAnnouncer(name, inst, ttl, "--watch-container=false"))
		time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
	}
	for _, w := range ws {
		w.next(true, time.Now(), 15*time.Second)
	}
	// let keep-alives run a little so each lease is at a random point of its period
	time.Sleep(time.Duration(ttl) * time.Second / 2)
	t1 := time.Now()
	for _, c := range cmds {
		c.Process.Kill()
	}
	var gone measure.Durations
	lost := 0
	for _, w := range ws {
		d := w.next(false, t1, time.Duration(ttl+15)*time.Second)
		if d < 0 {
			lost++
			continue
		}
		gone = append(gone, d)
	}
	extra := ""
	if lost > 0 {
		extra = fmt.Sprintf(" (%d records NOT gone after TTL+15 s)", lost)
	}
	return row(fmt.Sprintf("rundock announcer: SIGKILL → record gone (lease expiry, --ttl %d)%s", ttl, extra), gone)
}

// startLoop runs the baseline timer loop for one key.
func (b *bench) startLoop(key, value string) *exec.Cmd {
	return b.spawn(exec.Command("bash", b.loopSh, b.endpoint, key, value), b.loopSh)
}

func (b *bench) value() string {
	return skydns.Record{Host: "127.0.0.1", Port: 8080, TTL: 60}.Encode()
}

// loopStart: timer loop start -> record, and TERM -> gone (the loop deletes on TERM).
func (b *bench) loopStart(ctx context.Context) []string {
	name := "latloop"
	key := b.key(name, "bench")
	w := b.watch(ctx, key)
	var up, down measure.Durations
	b.log.Info("timer loop start/TERM trials", "trials", b.trials)
	for i := 0; i < b.trials && ctx.Err() == nil; i++ {
		w.drain()
		t0 := time.Now()
		c := b.startLoop(key, b.value())
		if d := w.next(true, t0, 10*time.Second); d >= 0 {
			up = append(up, d)
		}
		t1 := time.Now()
		c.Process.Signal(syscall.SIGTERM)
		if d := w.next(false, t1, 10*time.Second); d >= 0 {
			down = append(down, d)
		}
		c.Wait()
	}
	return []string{
		row("timer loop: loop start → record in etcd (it does not follow the container)", up),
		row("timer loop: loop TERM → record gone", down),
	}
}

// crashLoop: a container that exits at once, restarted every second (runit's restart
// delay), followed by the announcer and announced by the timer loop; the share of time
// each record is visible.
func (b *bench) crashLoop(ctx context.Context) []string {
	const window = 20 * time.Second
	ctr := b.container("crash", "-e", "EXIT_CODE=1")
	rdKey, loopKey := b.key("latcrash", "rundock"), b.key("latcrash", "loop")
	b.startAnnouncer("latcrash", "rundock", 5, "--container", ctr)
	b.startLoop(loopKey, b.value())
	cctx, cancel := context.WithTimeout(ctx, window+2*time.Second)
	defer cancel()
	var starts atomic.Int64
	go func() {
		for cctx.Err() == nil {
			b.docker.ContainerStart(cctx, ctr)
			starts.Add(1)
			b.docker.ContainerWait(cctx, ctr)
			time.Sleep(time.Second)
		}
	}()
	time.Sleep(time.Second)
	var n, rd, lp int
	end := time.Now().Add(window)
	for time.Now().Before(end) && ctx.Err() == nil {
		n++
		if measure.HasKey(ctx, b.etcd, rdKey) {
			rd++
		}
		if measure.HasKey(ctx, b.etcd, loopKey) {
			lp++
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.log.Info("crash loop", "starts", starts.Load(), "samples", n)
	return []string{
		fmt.Sprintf("| rundock announcer: share of a %s crash loop (%d starts) the record was in etcd | %.1f%% of %d samples | | | |", window, starts.Load(), 100*float64(rd)/float64(max(n, 1)), n),
		fmt.Sprintf("| timer loop: share of the same crash loop the record was in etcd | %.1f%% of %d samples | | | |", 100*float64(lp)/float64(max(n, 1)), n),
	}
}

// loopKill: n timer loops started over one 45 s period, all SIGKILLed at once (host or
// supervisor death: no TERM handler runs); each record stays until its 60 s lease ends.
func (b *bench) loopKill(ctx context.Context, n int) []string {
	var cmds []*exec.Cmd
	var ws []*watcher
	for i := 0; i < n && ctx.Err() == nil; i++ {
		key := b.key("latloopkill", fmt.Sprintf("l%d", i))
		ws = append(ws, b.watch(ctx, key))
		cmds = append(cmds, b.startLoop(key, b.value()))
		select {
		case <-ctx.Done():
		case <-time.After(45 * time.Second / time.Duration(n)):
		}
	}
	t1 := time.Now()
	for _, c := range cmds {
		// kill the whole loop: bash and its sleep, as a host death would
		c.Process.Kill()
	}
	var gone measure.Durations
	for _, w := range ws {
		if d := w.next(false, t1, 75*time.Second); d >= 0 {
			gone = append(gone, d)
		}
	}
	return []string{row("timer loop: SIGKILL → record gone (lease expiry, 60 s lease renewed every 45 s)", gone)}
}

// dockerEvents collects the container's events with Docker's own timestamps.
type dockerEvents struct {
	mu  sync.Mutex
	got []dockerapi.Message
	ch  chan struct{}
}

func (b *bench) dockerEvents(ctx context.Context, ctr string) *dockerEvents {
	d := &dockerEvents{ch: make(chan struct{}, 64)}
	msgs, errs := b.docker.Events(ctx, map[string][]string{"container": {ctr}, "type": {"container"}})
	go func() {
		for {
			var m dockerapi.Message
			select {
			case m = <-msgs:
			case <-errs:
				return
			}
			d.mu.Lock()
			d.got = append(d.got, m)
			d.mu.Unlock()
			select {
			case d.ch <- struct{}{}:
			default:
			}
		}
	}()
	return d
}

func (d *dockerEvents) drain() {
	d.mu.Lock()
	d.got = nil
	d.mu.Unlock()
}

// when returns the time of the first event with this action since drain, waiting up to
// timeout; zero when none came.
func (d *dockerEvents) when(action string, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		d.mu.Lock()
		for _, m := range d.got {
			if m.Action == action {
				d.mu.Unlock()
				return time.Unix(0, m.TimeNano)
			}
		}
		d.mu.Unlock()
		select {
		case <-d.ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
	return time.Time{}
}
