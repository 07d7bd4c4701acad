// Command scale runs N announcer lease loops in one process against one etcd, each with
// its own client (its own gRPC connection and lease keep-alive stream, as N announcer
// processes would have), and reports what etcd and the loops saw: leases lost, keep-alive
// round trips, etcd CPU and memory, and how long it took to bring all N up.
//
// Each loop does what the announcer does for etcd: Grant(ttl), Put(key, record,
// WithLease), KeepAlive and drain the channel; when the channel closes (lease lost) it
// grants a new lease and puts the record again. Keep-alive latency is sampled by probes:
// every -probe-every one random loop sends a KeepAliveOnce on its own connection and the
// round trip is timed.
//
// Output: one markdown table row on stdout; progress on stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rundock/rundock/internal/skydns"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

type loop struct {
	client *clientv3.Client
	key    string
	value  string
	ttl    int64

	mu    sync.Mutex
	lease clientv3.LeaseID
}

type stats struct {
	lost      atomic.Int64 // keep-alive channels closed while the run was on
	putErrors atomic.Int64
	renewals  atomic.Int64
}

func main() {
	var (
		endpoints  = flag.String("endpoints", "http://127.0.0.1:2379", "etcd endpoints, comma-separated")
		n          = flag.Int("n", 1000, "number of announcer loops")
		ttl        = flag.Int64("ttl", 30, "lease TTL in seconds (the announcer's default)")
		hold       = flag.Duration("hold", 2*time.Minute, "how long to hold all N leases after start-up")
		parallel   = flag.Int("parallel", 50, "loops started at once during ramp-up")
		etcdPID    = flag.Int("etcd-pid", 0, "PID of the etcd server, for its CPU and memory")
		probeEvery = flag.Duration("probe-every", 100*time.Millisecond, "interval between keep-alive latency probes")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	eps := strings.Split(*endpoints, ",")
	st := &stats{}
	loops := make([]*loop, *n)
	started := make(chan int, *n)
	var (
		wg        sync.WaitGroup
		failedMu  sync.Mutex
		firstFail error
		failed    int
	)
	runCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()

	cpu0, _ := procCPU(*etcdPID)
	t0 := time.Now()
	sem := make(chan struct{}, *parallel)
	for i := 0; i < *n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			l, err := newLoop(eps, i, *ttl)
			if err == nil {
				err = l.announce(runCtx)
			}
			<-sem
			if err != nil {
				failedMu.Lock()
				failed++
				if firstFail == nil {
					firstFail = err
				}
				failedMu.Unlock()
				return
			}
			loops[i] = l
			started <- i
			l.keep(runCtx, st, log)
		}(i)
	}
	// Wait until every loop is up or failed.
	up := 0
	for up+failedCount(&failedMu, &failed) < *n && ctx.Err() == nil {
		select {
		case <-started:
			up++
		case <-time.After(100 * time.Millisecond):
		}
	}
	ramp := time.Since(t0)
	log.Info("ramp-up done", "up", up, "failed", failed, "took", ramp.Round(time.Millisecond), "first_error", firstFail)

	live := make([]*loop, 0, up)
	for _, l := range loops {
		if l != nil {
			live = append(live, l)
		}
	}
	// Hold: probe keep-alive round trips on random loops' own connections.
	lost0 := st.lost.Load()
	cpu1, _ := procCPU(*etcdPID)
	h0 := time.Now()
	var lat []time.Duration
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
			if r, err := procRSS(*etcdPID); err == nil && r > maxRSS {
				maxRSS = r
			}
		case <-tick.C:
			if len(live) == 0 {
				continue
			}
			l := live[rand.IntN(len(live))]
			d, err := l.probe(ctx)
			if err != nil {
				probeErrors++
				continue
			}
			lat = append(lat, d)
		}
	}
	tick.Stop()
	sample.Stop()
	held := time.Since(h0)
	cpu2, _ := procCPU(*etcdPID)
	rss, _ := procRSS(*etcdPID)
	if rss > maxRSS {
		maxRSS = rss
	}
	lost := st.lost.Load() - lost0

	// Count the records still in etcd before stopping anything.
	present := -1
	if len(live) > 0 {
		pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
		base, _ := skydns.ServiceKey(skydns.DefaultPrefix, "s.prod.example.com", "scale")
		resp, err := live[0].client.Get(pctx, base+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		pcancel()
		if err == nil {
			present = int(resp.Count)
		}
	}
	stopLoops()
	// Revoke in parallel so the next size starts on a clean etcd.
	var cw sync.WaitGroup
	csem := make(chan struct{}, 100)
	for _, l := range live {
		cw.Add(1)
		csem <- struct{}{}
		go func(l *loop) {
			defer cw.Done()
			defer func() { <-csem }()
			l.close()
		}(l)
	}
	cw.Wait()
	wg.Wait()

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	tck := float64(clockTicks())
	rampCPU := float64(cpu1-cpu0) / tck / ramp.Seconds() * 100
	holdCPU := float64(cpu2-cpu1) / tck / held.Seconds() * 100
	// | N | up/failed | ramp-up | leases lost | records present | keepalive p50 / p95 / p99 / max (probes) | etcd CPU ramp | etcd CPU hold | etcd RSS max |
	fmt.Printf("| %d | %d / %d | %.1f s | %d in %s | %s | %s / %s / %s / %s (%d, %d errors) | %.0f%% | %.1f%% | %s |\n",
		*n, up, failed, ramp.Seconds(), lost, held.Round(time.Second), presentStr(present, up),
		ms(pct(lat, 50)), ms(pct(lat, 95)), ms(pct(lat, 99)), ms(pct(lat, 100)), len(lat), probeErrors,
		rampCPU, holdCPU, mib(maxRSS))
	if firstFail != nil {
		fmt.Fprintf(os.Stderr, "scale: first start-up error: %v\n", firstFail)
	}
}

func failedCount(mu *sync.Mutex, n *int) int {
	mu.Lock()
	defer mu.Unlock()
	return *n
}

func presentStr(present, up int) string {
	if present < 0 {
		return "?"
	}
	return fmt.Sprintf("%d / %d", present, up)
}

func newLoop(eps []string, i int, ttl int64) (*loop, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create etcd client %d: %w", i, err)
	}
	instance := fmt.Sprintf("host-%05d", i)
	key, err := skydns.InstanceKey(skydns.DefaultPrefix, "s.prod.example.com", "scale", instance)
	if err != nil {
		c.Close()
		return nil, err
	}
	rec := skydns.Record{Host: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Port: 8080, TTL: uint32(ttl)}
	return &loop{client: c, key: key, value: rec.Encode(), ttl: ttl}, nil
}

// announce grants a lease and puts the record with it.
func (l *loop) announce(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	g, err := l.client.Grant(cctx, l.ttl)
	if err != nil {
		return fmt.Errorf("cannot grant lease for %s: %w", l.key, err)
	}
	if _, err := l.client.Put(cctx, l.key, l.value, clientv3.WithLease(g.ID)); err != nil {
		return fmt.Errorf("cannot put %s: %w", l.key, err)
	}
	l.mu.Lock()
	l.lease = g.ID
	l.mu.Unlock()
	return nil
}

// keep drains KeepAlive until ctx ends; a closed channel is a lost lease: count it,
// back off briefly, grant a new one and put again.
func (l *loop) keep(ctx context.Context, st *stats, log *slog.Logger) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		l.mu.Lock()
		id := l.lease
		l.mu.Unlock()
		ch, err := l.client.KeepAlive(ctx, id)
		if err == nil {
			for range ch {
				st.renewals.Add(1)
			}
		}
		if ctx.Err() != nil {
			return
		}
		st.lost.Add(1)
		log.Warn("lease lost", "key", l.key, "err", err)
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff + rand.N(backoff/2)):
			}
			if err := l.announce(ctx); err != nil {
				st.putErrors.Add(1)
				backoff = min(backoff*2, 10*time.Second)
				continue
			}
			backoff = 500 * time.Millisecond
			break
		}
	}
}

// probe times one keep-alive round trip on this loop's own connection.
func (l *loop) probe(ctx context.Context) (time.Duration, error) {
	l.mu.Lock()
	id := l.lease
	l.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	t := time.Now()
	_, err := l.client.KeepAliveOnce(cctx, id)
	return time.Since(t), err
}

// close deletes the record and revokes the lease, as the announcer does on TERM.
func (l *loop) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l.mu.Lock()
	id := l.lease
	l.mu.Unlock()
	l.client.Delete(ctx, l.key)
	l.client.Revoke(ctx, id)
	l.client.Close()
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return -1
	}
	i := (len(d)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return d[i-1]
}

func ms(d time.Duration) string {
	if d < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}

func mib(b int64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// procCPU returns utime+stime of pid in clock ticks.
func procCPU(pid int) (int64, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("no pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k, nil
}

// procRSS returns VmRSS of pid in bytes.
func procRSS(pid int) (int64, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("no pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
func clockTicks() int { return 100 }
