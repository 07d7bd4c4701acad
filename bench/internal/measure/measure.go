// Package measure holds what the bench programs share: percentiles, peak memory (the /proc
// readings themselves are internal/testenv/procfs, shared with the tests), the etcd client
// and request counters from its /metrics endpoint, DNS probes against CoreDNS, and process
// helpers. It is bench-only code; nothing in rundock imports it.
package measure

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rundock/rundock/internal/testenv/procfs"
)

// Durations is a sample of durations, for percentiles.
type Durations []time.Duration

// Pct returns the p-th percentile (nearest rank), or -1 for an empty sample.
func (d Durations) Pct(p int) time.Duration {
	if len(d) == 0 {
		return -1
	}
	s := append(Durations(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1]
}

// Row returns "p50 | p95 | max | n" cells for a markdown table.
func (d Durations) Row() string {
	return fmt.Sprintf("%s | %s | %s | %d", Ms(d.Pct(50)), Ms(d.Pct(95)), Ms(d.Pct(100)), len(d))
}

// Ms formats a duration in milliseconds (seconds when large); "n/a" for a negative one.
func Ms(d time.Duration) string {
	switch {
	case d < 0:
		return "n/a"
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	default:
		return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000)
	}
}

// MiB formats bytes in MiB.
func MiB(b int64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// MaxRSS returns the larger of max and pid's resident memory now (procfs.RSS); max when
// that cannot be read. Sampled every second, it keeps a process's peak.
func MaxRSS(pid int, max int64) int64 {
	if r, err := procfs.RSS(pid); err == nil && r > max {
		return r
	}
	return max
}

// EtcdRequests returns the number of gRPC messages etcd has received (unary requests and
// stream messages such as lease keep-alives), summed over methods, from /metrics.
func EtcdRequests(endpoint string) (map[string]float64, float64, error) {
	resp, err := http.Get(strings.TrimSuffix(endpoint, "/") + "/metrics")
	if err != nil {
		return nil, 0, fmt.Errorf("cannot read etcd metrics from %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	by := map[string]float64{}
	var total float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "grpc_server_msg_received_total{") {
			continue
		}
		i := strings.Index(line, `grpc_method="`)
		sp := strings.LastIndexByte(line, ' ')
		if i < 0 || sp < 0 {
			continue
		}
		method := line[i+len(`grpc_method="`):]
		method = method[:strings.IndexByte(method, '"')]
		v, _ := strconv.ParseFloat(line[sp+1:], 64)
		by[method] += v
		total += v
	}
	return by, total, sc.Err()
}

// Resolver returns a resolver that asks only the DNS server at addr.
func Resolver(addr string) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
}

// Resolves reports whether name has an A record at r: false on NXDOMAIN or an empty
// answer, an error for anything else (timeouts, SERVFAIL).
func Resolves(ctx context.Context, r *net.Resolver, name string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	ips, err := r.LookupIP(ctx, "ip4", strings.TrimSuffix(name, ".")+".")
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return len(ips) > 0, nil
}

// WaitDNS polls name every 5 ms until its presence equals want; it returns the time
// since start, or -1 when that takes more than 15 s or ctx ends first.
func WaitDNS(ctx context.Context, r *net.Resolver, name string, want bool, start time.Time) time.Duration {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if ok, err := Resolves(ctx, r, name); err == nil && ok == want {
			return time.Since(start)
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
	return -1
}

// EtcdClient returns a client on endpoints that gives up dialing after 5 s and logs
// nothing.
func EtcdClient(endpoints ...string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
}

// HasKey reports whether key exists in etcd; false when etcd does not answer.
func HasKey(ctx context.Context, c *clientv3.Client, key string) bool {
	r, err := c.Get(ctx, key, clientv3.WithCountOnly())
	return err == nil && r.Count > 0
}

// OrphanProof makes cmd's process get SIGTERM when the bench program dies, however it
// dies, so no announcer or loop outlives a failed run. Call it before cmd.Start.
func OrphanProof(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// Stop sends SIGTERM to every started process of cmds at once, then waits for each in
// turn, SIGKILLing one that has not exited grace after its wait began. A process already
// waited for is passed over.
func Stop(grace time.Duration, cmds ...*exec.Cmd) {
	for _, c := range cmds {
		if c.Process != nil {
			c.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, c := range cmds {
		if c.Process == nil {
			continue
		}
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(grace):
			c.Process.Kill()
			<-done
		}
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("cannot find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
