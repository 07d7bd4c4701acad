// Package measure holds what the bench programs share: percentiles, /proc readings, etcd
// request counters from its /metrics endpoint, DNS probes against CoreDNS, and process
// helpers. It is bench-only code; nothing in rundock imports it.
package measure

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
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

// ClockTicks is USER_HZ: 100 on every Linux this runs on.
const ClockTicks = 100

// ProcCPU returns utime+stime of pid in clock ticks; with children, also the CPU of its
// reaped children (cutime+cstime), which is where a shell loop's etcdctl runs show up.
func ProcCPU(pid int, children bool) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cannot read CPU of %d: %w", pid, err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var sum int64
	n := 2
	if children {
		n = 4
	}
	for _, v := range f[11 : 11+n] {
		x, _ := strconv.ParseInt(v, 10, 64)
		sum += x
	}
	return sum, nil
}

// ProcRSS returns VmRSS of pid in bytes.
func ProcRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("cannot read memory of %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
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
