package apply

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"

	"github.com/rundock/rundock/internal/etcd"
	"github.com/rundock/rundock/internal/etcdclient"
	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/skydns"
)

// recordTimeout bounds the etcd questions of one status run per etcd cluster: an
// unreachable cluster costs this once, not once per service.
const recordTimeout = 3 * time.Second

// Record is what etcd holds for a service's announcer: read with the key and the
// connection flags of the rendered announcer/run, so it is the record that announcer
// writes, on the cluster it writes to.
type Record struct {
	// Key is the etcd key the announcer writes.
	Key string `json:"key"`
	// Present is true when the key is in etcd.
	Present bool `json:"present"`
	// Value is the record's JSON as stored.
	Value string `json:"value,omitempty"`
	// Host and Port are the address the record announces.
	Host string `json:"host,omitempty"`
	Port int    `json:"port,omitempty"`
	// LeaseTTL is the seconds left on the record's lease; -1 when the record has no lease
	// (it never expires: not the announcer's).
	LeaseTTL int64 `json:"lease_ttl_seconds,omitempty"`
	// Error says why etcd could not be asked ("" when it answered); Present is then
	// unknown, not false.
	Error string `json:"error,omitempty"`
}

// announcerConfig reads the record key and etcd settings from the tree's announcer/run;
// ok is false when the tree announces nothing.
func announcerConfig(root string) (key string, cfg etcdclient.Config, ok bool, err error) {
	p := filepath.Join(root, filepath.FromSlash(render.AnnouncerPath), "run")
	data, err := safefs.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return "", cfg, false, nil
	}
	if err != nil {
		return "", cfg, false, err
	}
	if key = recordKey(data); key == "" {
		return "", cfg, false, nil
	}
	cfg, err = etcdFlags(data)
	if err != nil {
		return key, cfg, true, fmt.Errorf("cannot read the etcd settings of %s: %w", p, err)
	}
	return key, cfg, true, nil
}

// etcdFlags parses the announcer's command in a rendered run script with the same flag
// definitions the announcer uses (etcdclient.Flags), ignoring its other flags.
func etcdFlags(script []byte) (etcdclient.Config, error) {
	f, err := syntax.NewParser().Parse(strings.NewReader(string(script)), "run")
	if err != nil {
		return etcdclient.Config{}, err
	}
	var args []string
	syntax.Walk(f, func(n syntax.Node) bool {
		call, ok := n.(*syntax.CallExpr)
		if !ok || args != nil {
			return args == nil
		}
		// Fields does sh's quote removal ('it'\''s' is it's); the rendered words hold
		// no expansions.
		words, err := expand.Fields(nil, call.Args...)
		if err != nil {
			return true
		}
		for _, w := range words {
			if w == "--etcd-endpoints" {
				args = words
				break
			}
		}
		return true
	})
	if args == nil {
		return etcdclient.Config{}, errors.New("no announcer command with --etcd-endpoints")
	}
	fs := pflag.NewFlagSet("announcer", pflag.ContinueOnError)
	fs.ParseErrorsAllowlist.UnknownFlags = true
	var ef etcdclient.Flags
	ef.Register(fs)
	if err := fs.Parse(args); err != nil {
		return etcdclient.Config{}, err
	}
	return ef.Config()
}

// recordQuery is one service's record to look up.
type recordQuery struct {
	i   int // index into the statuses
	key string
}

// readRecords fills in the Record of each status whose tree announces, grouping the
// services by etcd settings so each cluster gets one client.
func readRecords(ctx context.Context, roots []string, sts []Status) {
	type group struct {
		cfg etcdclient.Config
		qs  []recordQuery
	}
	groups := map[string]*group{}
	var order []string
	for i, root := range roots {
		if root == "" {
			continue
		}
		key, cfg, ok, err := announcerConfig(root)
		if !ok {
			continue
		}
		sts[i].Record = &Record{Key: key}
		if err != nil {
			sts[i].Record.Error = err.Error()
			continue
		}
		id := fmt.Sprintf("%q", cfg)
		g := groups[id]
		if g == nil {
			g = &group{cfg: cfg}
			groups[id] = g
			order = append(order, id)
		}
		g.qs = append(g.qs, recordQuery{i: i, key: key})
	}
	for _, id := range order {
		g := groups[id]
		lookupRecords(ctx, g.cfg, g.qs, sts)
	}
}

// lookupRecords asks one cluster for the records: one Get per key and a lease question
// per leased record. Once etcd fails to answer, the rest get the same error rather than
// another timeout each.
func lookupRecords(ctx context.Context, cfg etcdclient.Config, qs []recordQuery, sts []Status) {
	fail := func(from int, err error) {
		msg := err.Error()
		if eps := strings.Join(cfg.Endpoints, ","); !strings.Contains(msg, eps) {
			msg = "etcd " + eps + ": " + msg // the client's error may not name them
		}
		for _, q := range qs[from:] {
			sts[q.i].Record.Error = msg
		}
	}
	cli, err := etcdclient.New(cfg)
	if err != nil {
		fail(0, err)
		return
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	for n, q := range qs {
		r := sts[q.i].Record
		resp, err := cli.Get(ctx, q.key)
		if err != nil {
			fail(n, err)
			return
		}
		if len(resp.Kvs) == 0 {
			continue
		}
		kv := resp.Kvs[0]
		r.Present, r.Value = true, string(kv.Value)
		if rec, err := skydns.Decode(kv.Value); err == nil {
			r.Host, r.Port = rec.Host, rec.Port
		}
		r.LeaseTTL = -1
		if kv.Lease != 0 {
			lr, err := cli.TimeToLive(ctx, etcd.LeaseID(kv.Lease))
			if err != nil {
				fail(n, err)
				return
			}
			r.LeaseTTL = lr.TTL
		}
	}
}
