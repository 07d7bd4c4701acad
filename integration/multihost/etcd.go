package multihost

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rundock/rundock/internal/testenv"
)

// Member is one etcd member: Debian's etcd 3.4 in a container of the lab, its data in a
// bind-mounted directory so a killed member can be started again with its data.
type Member struct {
	Name      string // etcd member name, e.g. etcd1
	IP        string
	Container string
	Endpoint  string // http://IP:2379
}

// StartEtcd starts an n-member etcd cluster at SUBNET.11, .12, ... and waits until every
// member answers; it returns the members.
func (l *Lab) StartEtcd(t testing.TB, n int) []*Member {
	t.Helper()
	var peers []string
	var members []*Member
	for i := 1; i <= n; i++ {
		m := &Member{Name: fmt.Sprintf("etcd%d", i), IP: l.IP(10 + i), Container: fmt.Sprintf("%s-etcd%d", l.Prefix, i)}
		m.Endpoint = "http://" + m.IP + ":2379"
		peers = append(peers, fmt.Sprintf("%s=http://%s:2380", m.Name, m.IP))
		members = append(members, m)
	}
	for _, m := range members {
		data := tempDir(t, m.Container)
		mustDocker(t, "run", "-d", "--name", m.Container, "--label", Label+"="+l.Prefix, "--label", owner(),
			"--network", l.Network, "--ip", m.IP, "-v", data+":/data", l.Image,
			"etcd", "--name", m.Name, "--data-dir", "/data/"+m.Name,
			"--listen-client-urls", "http://0.0.0.0:2379", "--advertise-client-urls", m.Endpoint,
			"--listen-peer-urls", "http://0.0.0.0:2380", "--initial-advertise-peer-urls", "http://"+m.IP+":2380",
			"--initial-cluster", strings.Join(peers, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", l.Prefix, "--logger", "zap", "--log-level", "warn",
			// A member that comes back after a kill or cut would otherwise start an election and
			// depose a healthy leader; a leader change resets every lease's remaining TTL
			// (FIELD-NOTES), which stretches how long a dead host's records live.
			"--pre-vote")
	}
	l.mu.Lock()
	l.members = members
	l.mu.Unlock()
	for _, m := range members {
		l.WaitMember(t, m, 30*time.Second)
	}
	return members
}

// Members returns the lab's etcd members.
func (l *Lab) Members() []*Member {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Member(nil), l.members...)
}

// Endpoints returns the client URLs of every member.
func (l *Lab) Endpoints() []string {
	var eps []string
	for _, m := range l.Members() {
		eps = append(eps, m.Endpoint)
	}
	return eps
}

// Client returns an etcd client on every member, closed when the test ends.
func (l *Lab) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	return testenv.EtcdClient(t, l.Endpoints()...)
}

// status asks one member directly for its status.
func status(ctx context.Context, m *Member) (*clientv3.StatusResponse, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{m.Endpoint}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Status(ctx, m.Endpoint)
}

// WaitMember waits until m answers a status request and knows a leader.
func (l *Lab) WaitMember(t testing.TB, m *Member, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := status(ctx, m)
		cancel()
		if err == nil && st.Leader != 0 {
			return
		}
		if time.Now().After(deadline) {
			out, _ := Docker("logs", "--tail", "30", m.Container)
			t.Fatalf("etcd member %s (%s) not ready after %s: %v\n%s", m.Name, m.Endpoint, timeout, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Leader returns the member that is the raft leader, asking the members in turn.
func (l *Lab) Leader(t testing.TB) *Member {
	t.Helper()
	members := l.Members()
	for _, m := range members {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := status(ctx, m)
		cancel()
		if err != nil || st.Leader == 0 {
			continue
		}
		for _, c := range members {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			cs, err := status(ctx, c)
			cancel()
			if err == nil && cs.Header.MemberId == st.Leader {
				return c
			}
		}
	}
	t.Fatal("no etcd member knows a leader")
	return nil
}

// StableLeader waits until every member answers and names the same leader, unchanged for
// hold: faults timed against the lease TTL must not overlap an election, which resets the
// remaining TTL of every lease.
func (l *Lab) StableLeader(t testing.TB, hold, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var leader uint64
	var since time.Time
	for {
		agreed := uint64(0)
		for _, m := range l.Members() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := status(ctx, m)
			cancel()
			if err != nil || st.Leader == 0 || (agreed != 0 && st.Leader != agreed) {
				agreed = 0
				break
			}
			agreed = st.Leader
		}
		switch {
		case agreed == 0:
			leader = 0
		case agreed != leader:
			leader, since = agreed, time.Now()
		case time.Since(since) >= hold:
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd members did not agree on one leader for %s within %s", hold, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// MemberAt returns the member with address ip.
func (l *Lab) MemberAt(t testing.TB, ip string) *Member {
	t.Helper()
	for _, m := range l.Members() {
		if m.IP == ip {
			return m
		}
	}
	t.Fatalf("no etcd member at %s", ip)
	return nil
}

// Kill SIGKILLs the member's container: the process dies with no chance to hand over.
func (m *Member) Kill(t testing.TB) {
	t.Helper()
	mustDocker(t, "kill", m.Container)
}

// Disconnect cuts the member off the lab network: it stays alive, and connections to it
// hang without a reset, as when its machine loses power or its link.
func (m *Member) Disconnect(t testing.TB, l *Lab) {
	t.Helper()
	mustDocker(t, "network", "disconnect", l.Network, m.Container)
}

// Reconnect heals Disconnect, with the same address.
func (m *Member) Reconnect(t testing.TB, l *Lab) {
	t.Helper()
	mustDocker(t, "network", "connect", "--ip", m.IP, l.Network, m.Container)
}

// Start starts a killed member again with its data and address.
func (m *Member) Start(t testing.TB) {
	t.Helper()
	mustDocker(t, "start", m.Container)
}
