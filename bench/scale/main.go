// Command scale runs N announcers in one process against one etcd and reports what etcd
// and the announcers saw: leases lost, keep-alive round trips, etcd CPU and memory, and
// how long it took to bring all N up.
//
// Each announcer is the announcer's own code (internal/announce: New + Run, with
// --watch-container=false and an explicit --host), and each builds its own etcd client,
// so etcd sees what it would see from N announcer processes: N HTTP/2 connections (package
// etcd's client), one Grant + Put per announcer and one keep-alive (a short LeaseKeepAlive
// stream) every TTL/3. What
// one process does not show is the per-process cost on the hosts (memory, CPU of N
// runtimes); the footprint rows measure that for one real announcer process.
//
// Leases lost and etcd errors are counted from the announcers' own log lines. Keep-alive
// latency is sampled by a probe client holding its own leases on the loaded etcd: every
// -probe-every it sends one KeepAliveOnce and times the round trip.
//
// Output: one markdown table row on stdout; progress on stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rundock/rundock/bench/internal/measure"
	"github.com/rundock/rundock/internal/announce"
	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/testenv/procfs"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// counter is a slog handler that counts the announcers' state-change lines by message
// and passes warnings on to stderr (sampled).
type counter struct {
	announced, lost, unreachable, noWithdraw atomic.Int64
	warned                                   atomic.Int64
	out                                      slog.Handler
}

func (c *counter) Enabled(context.Context, slog.Level) bool { return true }
func (c *counter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *counter) WithGroup(string) slog.Handler            { return c }
func (c *counter) Handle(ctx context.Context, r slog.Record) error {
	switch {
	case r.Message == "announced":
		c.announced.Add(1)
	case strings.HasPrefix(r.Message, "lease lost"):
		c.lost.Add(1)
	case strings.HasPrefix(r.Message, "etcd unreachable"):
		c.unreachable.Add(1)
	case strings.HasPrefix(r.Message, "stopped; cannot withdraw"):
		c.noWithdraw.Add(1)
	}
	if r.Level >= slog.LevelWarn && c.warned.Add(1) <= 5 {
		return c.out.Handle(ctx, r)
	}
	return nil
}

func main() {
	var (
		endpoints  = flag.String("endpoints", "http://127.0.0.1:2379", "etcd endpoints, comma-separated")
		n          = flag.Int("n", 1000, "number of announcers")
		ttl        = flag.Int64("ttl", 30, "lease TTL in seconds (the announcer's default)")
		hold       = flag.Duration("hold", 2*time.Minute, "how long to hold all N records after start-up")
		parallel   = flag.Int("parallel", 50, "announcers started at once during ramp-up")
		etcdPID    = flag.Int("etcd-pid", 0, "PID of the etcd server, for its CPU and memory")
		probeEvery = flag.Duration("probe-every", 100*time.Millisecond, "interval between keep-alive latency probes")
	)
	flag.Parse()
	stderr := slog.NewTextHandler(os.Stderr, nil)
	log := slog.New(stderr)
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	eps := strings.Split(*endpoints, ",")
	name := fmt.Sprintf("scale%d", *n)

	cnt := &counter{out: stderr}
	logger := slog.New(cnt)
	selfRSS0, _ := procfs.RSS(os.Getpid())
	cpu0, _ := procfs.CPU(*etcdPID, false)
	runCtx, stopAll := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var startErrors atomic.Int64
	t0 := time.Now()
	sem := make(chan struct{}, *parallel)
	for i := 0; i < *n && ctx.Err() == nil; i++ {
		a, err := announce.New(announce.Config{
			Name: name, Port: 8080, Instance: fmt.Sprintf("host-%05d", i),
			Host:            fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255),
			IgnoreContainer: true, TTL: *ttl,
			Etcd:   announce.Etcd{Endpoints: eps},
			Logger: logger,
		})
		if err != nil {
			log.Error("cannot configure announcer", "err", err)
			os.Exit(1)
		}
		// Ramp-up: at most -parallel announcers between start and first announcement.
		sem <- struct{}{}
		before := cnt.announced.Load()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Run(runCtx); err != nil {
				startErrors.Add(1)
				log.Error("announcer stopped", "err", err)
			}
		}()
		go func() {
			for cnt.announced.Load() == before && runCtx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			<-sem
		}()
	}
	for cnt.announced.Load() < int64(*n) && ctx.Err() == nil && time.Since(t0) < 5*time.Minute {
		time.Sleep(50 * time.Millisecond)
	}
	ramp := time.Since(t0)
	up := cnt.announced.Load()
	rampRetries := cnt.unreachable.Load()
	log.Info("ramp-up done", "n", *n, "announced", up, "took", ramp.Round(time.Millisecond), "etcd_errors", cnt.unreachable.Load())
	selfRSS1, _ := procfs.RSS(os.Getpid())

	probe, err := measure.EtcdClient(eps...)
	if err != nil {
		log.Error("cannot create probe client", "err", err)
		os.Exit(1)
	}
	defer probe.Close()
	g, err := probe.Grant(ctx, 60)
	if err != nil {
		log.Error("cannot grant probe lease", "err", err)
		os.Exit(1)
	}

	lost0, unr0 := cnt.lost.Load(), cnt.unreachable.Load()
	cpu1, _ := procfs.CPU(*etcdPID, false)
	h0 := time.Now()
	var lat measure.Durations
	probeErrors := 0
	maxRSS := int64(0)
	tick := time.NewTicker(*probeEvery)
	sample := time.NewTicker(time.Second)
	deadline := time.After(*hold)
hold:
	for {
		select {
		case <-ctx.Done():
			break hold
		case <-deadline:
			break hold
		case <-sample.C:
			maxRSS = measure.MaxRSS(*etcdPID, maxRSS)
		case <-tick.C:
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			t := time.Now()
			_, err := probe.KeepAliveOnce(pctx, g.ID)
			pcancel()
			if err != nil {
				probeErrors++
				continue
			}
			lat = append(lat, time.Since(t))
		}
	}
	tick.Stop()
	sample.Stop()
	held := time.Since(h0)
	cpu2, _ := procfs.CPU(*etcdPID, false)
	maxRSS = measure.MaxRSS(*etcdPID, maxRSS)
	lost, unr := cnt.lost.Load()-lost0, cnt.unreachable.Load()-unr0

	present := "?"
	base, _ := skydns.ServiceKey(skydns.DefaultPrefix, announce.DefaultDomain, name)
	if resp, err := probe.Get(ctx, base+"/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err == nil {
		present = fmt.Sprintf("%d / %d", resp.Count, *n)
	}
	probe.Revoke(context.Background(), g.ID)
	// Stop: every announcer deletes its record and revokes its lease, as on TERM.
	t2 := time.Now()
	stopAll()
	wg.Wait()
	stopTook := time.Since(t2)
	noWithdraw := cnt.noWithdraw.Load()
	log.Info("stopped", "n", *n, "took", stopTook.Round(time.Millisecond), "not_withdrawn", noWithdraw)

	rampCPU := float64(cpu1-cpu0) / procfs.ClockTicks / ramp.Seconds() * 100
	holdCPU := float64(cpu2-cpu1) / procfs.ClockTicks / held.Seconds() * 100
	perAnn := float64(selfRSS1-selfRSS0) / float64(max(up, 1)) / 1024
	// What gave first, in the order an operator would notice it.
	var strain []string
	if up < int64(*n) {
		strain = append(strain, fmt.Sprintf("%d never announced", int64(*n)-up))
	}
	if lost > 0 {
		strain = append(strain, fmt.Sprintf("%d leases lost", lost))
	}
	if rampRetries > 0 {
		strain = append(strain, "etcd calls over the announcer's 2 s timeout during ramp-up (retried)")
	}
	if unr > 0 {
		strain = append(strain, "etcd calls over the timeout while holding")
	}
	if noWithdraw > 0 {
		strain = append(strain, fmt.Sprintf("all stopped at once: %d could not withdraw within the announcer's 700 ms shutdown budget (their records expire with the lease)", noWithdraw))
	}
	if p := lat.Pct(99); p > time.Second {
		strain = append(strain, "keep-alive p99 over 1 s")
	} else if p > 100*time.Millisecond {
		strain = append(strain, "keep-alive p99 over 100 ms")
	}
	if len(strain) == 0 {
		strain = append(strain, "none seen")
	}
	// | N | announced (etcd retries during ramp-up) | ramp-up | leases lost / etcd errors during hold | records present at end | keep-alive p50 / p95 / p99 / max | etcd CPU ramp / hold | etcd RSS max | bench RSS per announcer | all stop at once | strain |
	fmt.Printf("| %d | %d (%d retries) | %.1f s | %d / %d in %s | %s | %s / %s / %s / %s (%d probes, %d errors) | %.0f%% / %.1f%% | %s | %.0f KiB | %.1f s, %d not withdrawn | %s |\n",
		*n, up, rampRetries, ramp.Seconds(), lost, unr, held.Round(time.Second), present,
		measure.Ms(lat.Pct(50)), measure.Ms(lat.Pct(95)), measure.Ms(lat.Pct(99)), measure.Ms(lat.Pct(100)), len(lat), probeErrors,
		rampCPU, holdCPU, measure.MiB(maxRSS), perAnn, stopTook.Seconds(), noWithdraw, strings.Join(strain, "; "))
}
