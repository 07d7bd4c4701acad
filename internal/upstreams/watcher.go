package upstreams

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"text/template"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rundock/rundock/internal/skydns"
)

// Debounce defaults: render after this much quiet, and at the latest this long after the
// first change of a burst (a rolling restart keeps changing records for a while).
const (
	DefaultQuiet    = 200 * time.Millisecond
	DefaultMaxDelay = 2 * time.Second
)

// Renderer reads the records of one domain from etcd and keeps nginx's upstream file in
// step with them.
type Renderer struct {
	Client   *clientv3.Client
	Prefix   string // etcd prefix, skydns.DefaultPrefix when empty
	Domain   string
	Config   *Config
	Template *template.Template
	Nginx    *Nginx
	Quiet    time.Duration // DefaultQuiet when 0
	MaxDelay time.Duration // DefaultMaxDelay when 0
	Log      *slog.Logger  // slog.Default() when nil

	last []byte // last rendered bytes that were installed or rejected by nginx -t
}

// NewRenderer returns a Renderer with the documented defaults.
func NewRenderer(c *clientv3.Client, domain string, cfg *Config, t *template.Template, n *Nginx) *Renderer {
	return &Renderer{Client: c, Prefix: skydns.DefaultPrefix, Domain: domain, Config: cfg, Template: t, Nginx: n,
		Quiet: DefaultQuiet, MaxDelay: DefaultMaxDelay, Log: slog.Default()}
}

func (r *Renderer) defaults() {
	if r.Prefix == "" {
		r.Prefix = skydns.DefaultPrefix
	}
	if r.Quiet == 0 {
		r.Quiet = DefaultQuiet
	}
	if r.MaxDelay == 0 {
		r.MaxDelay = DefaultMaxDelay
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	if r.Config == nil {
		r.Config = &Config{}
	}
}

// base is the etcd prefix holding every service of the domain, with a trailing '/'.
func (r *Renderer) base() (string, error) {
	k, err := skydns.ServiceKey(r.Prefix, r.Domain, "x")
	if err != nil {
		return "", fmt.Errorf("cannot use domain %q: %w", r.Domain, err)
	}
	return strings.TrimSuffix(k, "x"), nil
}

// list reads every key below the domain and the revision of that read.
func (r *Renderer) list(ctx context.Context) (map[string][]byte, int64, error) {
	base, err := r.base()
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := r.Client.Get(ctx, base, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("cannot list %s in etcd: %w", base, err)
	}
	kvs := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		kvs[string(kv.Key)] = kv.Value
	}
	return kvs, resp.Header.Revision, nil
}

// Output renders the current records without installing them.
func (r *Renderer) Output(ctx context.Context) ([]byte, error) {
	r.defaults()
	kvs, _, err := r.list(ctx)
	if err != nil {
		return nil, err
	}
	out, _, err := r.render(kvs)
	return out, err
}

func (r *Renderer) render(kvs map[string][]byte) ([]byte, []string, error) {
	d, warnings, err := r.Config.Build(r.Prefix, r.Domain, kvs)
	if err != nil {
		return nil, nil, err
	}
	out, err := Render(r.Template, d)
	return out, warnings, err
}

// Once renders the current records and installs them; an ErrCheck means nginx rejected
// them and still runs the previous file.
func (r *Renderer) Once(ctx context.Context) (changed bool, err error) {
	r.defaults()
	kvs, _, err := r.list(ctx)
	if err != nil {
		return false, err
	}
	out, warnings, err := r.render(kvs)
	if err != nil {
		return false, err
	}
	for _, w := range warnings {
		r.Log.Warn("record skipped", "why", w)
	}
	return r.Nginx.Apply(ctx, out)
}

// Run follows etcd until ctx ends: list, install, then watch from the listed revision + 1,
// re-rendering after each debounced burst. A lost or compacted watch re-lists. Errors are
// logged here, once; Run returns nil when ctx ends.
func (r *Renderer) Run(ctx context.Context) error {
	r.defaults()
	if _, err := r.base(); err != nil {
		return err
	}
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		kvs, rev, err := r.list(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			wait := backoff/2 + rand.N(backoff/2+1)
			r.Log.Error("cannot list records; retrying", "err", err, "retry_in", wait.Round(time.Millisecond))
			if !sleep(ctx, wait) {
				break
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 500 * time.Millisecond
		r.Log.Info("listed records", "keys", len(kvs), "revision", rev)
		r.apply(ctx, kvs, time.Time{})
		err = r.watch(ctx, kvs, rev)
		if ctx.Err() != nil {
			break
		}
		r.Log.Warn("watch ended; listing again", "err", err)
		if !sleep(ctx, 200*time.Millisecond) {
			break
		}
	}
	return nil
}

// watch applies watch events to kvs and renders after each burst; it returns when the
// watch fails (compaction, lost leader, closed channel).
func (r *Renderer) watch(ctx context.Context, kvs map[string][]byte, rev int64) error {
	base, _ := r.base()
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := r.Client.Watch(wctx, base, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	var (
		first time.Time // first change of the pending burst; zero when none pending
		timer = time.NewTimer(time.Hour)
	)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-wch:
			if !ok {
				return errors.New("watch channel closed")
			}
			if err := resp.Err(); err != nil {
				return err
			}
			if len(resp.Events) == 0 {
				continue
			}
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					delete(kvs, string(ev.Kv.Key))
				} else {
					kvs[string(ev.Kv.Key)] = ev.Kv.Value
				}
			}
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			wait := min(r.Quiet, max(first.Add(r.MaxDelay).Sub(now), 0))
			timer.Reset(wait)
		case <-timer.C:
			r.apply(ctx, kvs, first)
			first = time.Time{}
		}
	}
}

// apply renders kvs and installs the result if its bytes differ from the last attempt;
// since is the first change of the burst, for the latency in the log.
func (r *Renderer) apply(ctx context.Context, kvs map[string][]byte, since time.Time) {
	out, warnings, err := r.render(kvs)
	if err != nil {
		r.Log.Error("cannot render upstreams; keeping the last good file", "err", err)
		return
	}
	if r.last != nil && bytes.Equal(out, r.last) {
		return
	}
	for _, w := range warnings {
		r.Log.Warn("record skipped", "why", w)
	}
	changed, err := r.Nginx.Apply(ctx, out)
	switch {
	case errors.Is(err, ErrCheck):
		r.last = out // retry on the next change, not on every event
		r.Log.Error("nginx check failed; kept the last good upstreams, will retry on the next change", "output", r.Nginx.Output, "err", err)
	case err != nil:
		r.last = nil
		r.Log.Error("cannot install upstreams", "output", r.Nginx.Output, "err", err)
	default:
		r.last = out
		attrs := []any{"output", r.Nginx.Output, "changed", changed, "bytes", len(out), "reloads", r.Nginx.Reloads()}
		if !since.IsZero() {
			attrs = append(attrs, "latency", time.Since(since).Round(time.Millisecond))
		}
		if changed {
			r.Log.Info("upstreams installed and nginx reloaded", attrs...)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
