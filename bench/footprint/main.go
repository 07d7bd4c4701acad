// Command footprint measures what one idle announcer costs (resident memory, CPU, etcd
// requests) beside the baseline timer loop, over the same window. Each runs against its
// own etcd, so each etcd's request counters count one client only.
//
// Output: markdown table rows on stdout; progress on stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rundock/rundock/bench/internal/measure"
	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/testenv/procfs"
)

const domain = "s.prod.example.com"

type subject struct {
	name     string
	cmd      *exec.Cmd
	endpoint string
	children bool // count reaped children's CPU (the loop's etcdctl runs)

	cpu0, req0 float64
	rssMax     int64
	byMethod0  map[string]float64
}

func main() {
	var (
		announcer = flag.String("announcer", "bin/announcer", "announcer binary")
		loopSh    = flag.String("loop", "bench/baseline/announce-loop.sh", "baseline timer loop script")
		epA       = flag.String("endpoint-announcer", "http://127.0.0.1:2379", "etcd for the announcer alone")
		epB       = flag.String("endpoint-loop", "http://127.0.0.1:2479", "etcd for the timer loop alone")
		image     = flag.String("image", "rundock-echo:test", "echo image")
		window    = flag.Duration("window", 2*time.Minute, "idle window (scaled to per-minute figures)")
	)
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	ctr := fmt.Sprintf("rdbench-fp-%d", os.Getpid())
	if out, err := exec.Command("docker", "run", "-d", "--init", "--network", "none", "--name", ctr, *image).CombinedOutput(); err != nil {
		fatal(fmt.Errorf("cannot start container %s: %v: %s", ctr, err, out))
	}
	defer exec.Command("docker", "rm", "-f", ctr).Run()

	key, _ := skydns.InstanceKey(skydns.DefaultPrefix, domain, "fp", "bench")
	ann := &subject{name: "rundock announcer (following a running container, --ttl 30)", endpoint: *epA,
		cmd: exec.Command(*announcer, "--name", "fp", "--port", "8080", "--host", "127.0.0.1", "--instance", "bench",
			"--domain", domain, "--etcd-endpoints", *epA, "--container", ctr)}
	loop := &subject{name: "timer loop (bash + etcdctl, 60 s lease every 45 s)", endpoint: *epB, children: true,
		cmd: exec.Command("bash", *loopSh, *epB, key, skydns.Record{Host: "127.0.0.1", Port: 8080, TTL: 60}.Encode())}
	subjects := []*subject{ann, loop}
	for _, s := range subjects {
		s.cmd.Stderr = os.Stderr
		measure.OrphanProof(s.cmd)
		if err := s.cmd.Start(); err != nil {
			fatal(fmt.Errorf("cannot start %s: %w", s.name, err))
		}
		defer measure.Stop(3*time.Second, s.cmd)
	}
	for _, s := range subjects {
		if !waitKey(ctx, s.endpoint, key) {
			fatal(fmt.Errorf("%s did not put %s within 20 s", s.name, key))
		}
	}
	time.Sleep(2 * time.Second) // past start-up
	for _, s := range subjects {
		c, err := procfs.CPU(s.cmd.Process.Pid, s.children)
		if err != nil {
			fatal(err)
		}
		s.cpu0 = float64(c)
		s.byMethod0, s.req0, err = measure.EtcdRequests(s.endpoint)
		if err != nil {
			fatal(err)
		}
	}
	fmt.Fprintf(os.Stderr, "footprint: idle window %s\n", *window)
	t0 := time.Now()
	tick := time.NewTicker(time.Second)
	end := time.After(*window)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-end:
			break loop
		case <-tick.C:
			for _, s := range subjects {
				s.rssMax = measure.MaxRSS(s.cmd.Process.Pid, s.rssMax)
			}
		}
	}
	el := time.Since(t0)
	perMin := time.Minute.Seconds() / el.Seconds()
	for _, s := range subjects {
		c, _ := procfs.CPU(s.cmd.Process.Pid, s.children)
		rss, _ := procfs.RSS(s.cmd.Process.Pid)
		by, req, _ := measure.EtcdRequests(s.endpoint)
		var methods []string
		for m, v := range by {
			if d := v - s.byMethod0[m]; d > 0 {
				methods = append(methods, fmt.Sprintf("%s %.1f", m, d*perMin))
			}
		}
		cpuS := (float64(c) - s.cpu0) / procfs.ClockTicks
		// | who | RSS end / max | CPU s per minute | CPU % of one core | etcd requests per minute (by method) | window |
		fmt.Printf("| %s | %s / %s | %.3f s | %.3f%% | %.1f (%s) | %s |\n", s.name, measure.MiB(rss), measure.MiB(s.rssMax),
			cpuS*perMin, 100*cpuS/el.Seconds(), (req-s.req0)*perMin, strings.Join(sorted(methods), ", "), el.Round(time.Second))
	}
	// etcdctl runs too briefly to sample: measure one run's peak RSS from its rusage.
	et := exec.Command("etcdctl", "--endpoints", *epB, "endpoint", "health")
	et.Env = append(os.Environ(), "ETCDCTL_API=3")
	if err := et.Run(); err == nil {
		if ru, ok := et.ProcessState.SysUsage().(*syscall.Rusage); ok {
			fmt.Printf("| timer loop: one etcdctl run (2 per period; counted in the CPU above) | peak %s | %s CPU per run | | | |\n",
				measure.MiB(ru.Maxrss*1024), measure.Ms(et.ProcessState.UserTime()+et.ProcessState.SystemTime()))
		}
	}
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

func waitKey(ctx context.Context, endpoint, key string) bool {
	c, err := measure.EtcdClient(endpoint)
	if err != nil {
		return false
	}
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if measure.HasKey(ctx, c, key) {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "footprint:", err)
	exec.Command("docker", "rm", "-f", fmt.Sprintf("rdbench-fp-%d", os.Getpid())).Run()
	os.Exit(1)
}
