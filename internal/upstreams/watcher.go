package upstreams

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"text/template"
	"time"

	"github.com/rundock/rundock/internal/backoff"
	"github.com/rundock/rundock/internal/defaults"
	"github.com/rundock/rundock/internal/etcd"
	"github.com/rundock/rundock/internal/nginx"
	"github.com/rundock/rundock/internal/skydns"
)

// Debounce defaults. A change is rendered at once when nothing was rendered within the last
// Quiet; changes that follow sooner are held until Quiet passes without one, and at the
// latest MaxDelay after the first held change (a rolling restart keeps changing records for
// a while).
const (
	DefaultQuiet    = 200 * time.Millisecond
	DefaultMaxDelay = 2 * time.Second
)

// Retry delays of Run after etcd cannot be listed.
const (
	listRetryMin = 500 * time.Millisecond
	listRetryMax = 10 * time.Second
)

// Watcher reads the records of one domain from etcd and keeps nginx's upstream file in
// step with them.
type Watcher struct {
	Client   *etcd.Client
	Prefix   string // etcd prefix, defaults.Prefix when empty
	Domain   string
	Config   *Config
	Template *template.Template
	Nginx    *nginx.Installer
	Quiet    time.Duration // DefaultQuiet when 0
	MaxDelay time.Duration // DefaultMaxDelay when 0
	Log      *slog.Logger  // slog.Default() when nil

	last     []byte    // last rendered bytes that were installed or rejected by nginx -t
	rendered time.Time // end of the last render, kept across re-listings for the debounce
}

// NewWatcher returns a Watcher with the documented defaults.
func NewWatcher(c *etcd.Client, domain string, cfg *Config, t *template.Template, n *nginx.Installer) *Watcher {
	return &Watcher{Client: c, Prefix: defaults.Prefix, Domain: domain, Config: cfg, Template: t, Nginx: n,
		Quiet: DefaultQuiet, MaxDelay: DefaultMaxDelay, Log: slog.Default()}
}

func (w *Watcher) defaults() {
	if w.Prefix == "" {
		w.Prefix = defaults.Prefix
	}
	if w.Quiet == 0 {
		w.Quiet = DefaultQuiet
	}
	if w.MaxDelay == 0 {
		w.MaxDelay = DefaultMaxDelay
	}
	if w.Log == nil {
		w.Log = slog.Default()
	}
	if w.Config == nil {
		w.Config = &Config{}
	}
}

// base is the etcd prefix holding every service of the domain, with a trailing '/'.
func (w *Watcher) base() (string, error) {
	k, err := skydns.ServiceKey(w.Prefix, w.Domain, "x")
	if err != nil {
		return "", fmt.Errorf("cannot use domain %q: %w", w.Domain, err)
	}
	return strings.TrimSuffix(k, "x"), nil
}

// list reads every key below the domain and the revision of that read.
func (w *Watcher) list(ctx context.Context) (map[string][]byte, int64, error) {
	base, err := w.base()
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := w.Client.GetPrefix(ctx, base)
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
func (w *Watcher) Output(ctx context.Context) ([]byte, error) {
	w.defaults()
	kvs, _, err := w.list(ctx)
	if err != nil {
		return nil, err
	}
	out, _, err := w.render(kvs)
	return out, err
}

func (w *Watcher) render(kvs map[string][]byte) ([]byte, []Skipped, error) {
	d, warnings, err := w.Config.Build(w.Prefix, w.Domain, kvs)
	if err != nil {
		return nil, nil, err
	}
	out, err := Render(w.Template, d)
	return out, warnings, err
}

// Once renders the current records and installs them; an ErrCheck means nginx rejected
// them and still runs the previous file.
func (w *Watcher) Once(ctx context.Context) (changed bool, err error) {
	w.defaults()
	kvs, _, err := w.list(ctx)
	if err != nil {
		return false, err
	}
	out, warnings, err := w.render(kvs)
	if err != nil {
		return false, err
	}
	w.logSkipped(warnings)
	return w.Nginx.Apply(ctx, out)
}

// maxLoggedValue is how much of a skipped record's value the log shows.
const maxLoggedValue = 256

// logSkipped logs each skipped record: key, value (cut to maxLoggedValue bytes) and why.
func (w *Watcher) logSkipped(skipped []Skipped) {
	for _, s := range skipped {
		v := s.Value
		if len(v) > maxLoggedValue {
			v = v[:maxLoggedValue] + "..."
		}
		w.Log.Warn("record skipped", "key", s.Key, "value", v, "why", s.Why)
	}
}

// Run follows etcd until ctx ends: list, install, then watch from the listed revision + 1,
// re-rendering each lone change at once and each burst when it settles (see debounce). A lost or compacted watch re-lists. Errors are
// logged here, once; Run returns nil when ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	w.defaults()
	if _, err := w.base(); err != nil {
		return err
	}
	bo := backoff.Backoff{Min: listRetryMin, Max: listRetryMax}
	for ctx.Err() == nil {
		kvs, rev, err := w.list(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			wait := bo.Next()
			w.Log.Error("cannot list records; retrying", "err", err, "retry_in", wait.Round(time.Millisecond))
			if !backoff.Sleep(ctx, wait) {
				break
			}
			continue
		}
		bo.Reset()
		w.Log.Info("listed records", "keys", len(kvs), "revision", rev)
		w.apply(ctx, kvs, time.Time{})
		w.rendered = time.Now()
		err = w.watch(ctx, kvs, rev)
		if ctx.Err() != nil {
			break
		}
		w.Log.Warn("watch ended; listing again", "err", err)
		if !backoff.Sleep(ctx, 200*time.Millisecond) {
			break
		}
	}
	return nil
}

// debounce decides when a change is rendered: at once when nothing was rendered within the
// last Quiet (a lone change: the leading edge), otherwise after Quiet without a change, and
// at the latest MaxDelay after the first change held back (a burst: the trailing edge).
// A burst thus costs one render at its start and one per MaxDelay while it lasts. It holds
// no clock of its own: callers pass the time, so tests drive it with a fake one.
type debounce struct {
	quiet, maxDelay time.Duration

	last  time.Time // end of the last render; zero before the first
	first time.Time // first change held back; zero when none is pending
}

// change records a change at now: render reports whether to render at once; otherwise the
// caller renders when wait has passed without another change (and calls rendered).
func (d *debounce) change(now time.Time) (render bool, wait time.Duration) {
	if d.first.IsZero() && (d.last.IsZero() || now.Sub(d.last) >= d.quiet) {
		return true, 0
	}
	if d.first.IsZero() {
		d.first = now
	}
	return false, min(d.quiet, max(d.first.Add(d.maxDelay).Sub(now), 0))
}

// pending is the first change held back, zero when none.
func (d *debounce) pending() time.Time { return d.first }

// rendered records a render that ended at now; nothing is pending after it.
func (d *debounce) rendered(now time.Time) {
	d.last, d.first = now, time.Time{}
}

// watch applies watch events to kvs and renders after each change or burst (see
// debounce); it returns when the watch fails (compaction, lost leader, closed channel).
func (w *Watcher) watch(ctx context.Context, kvs map[string][]byte, rev int64) error {
	base, _ := w.base()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := w.Client.Watch(wctx, base, etcd.WatchOptions{Prefix: true, Rev: rev + 1, RequireLeader: true})
	db := debounce{quiet: w.Quiet, maxDelay: w.MaxDelay, last: w.rendered}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	defer func() { w.rendered = db.last }()
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
				if ev.Type == etcd.EventTypeDelete {
					delete(kvs, string(ev.Kv.Key))
				} else {
					kvs[string(ev.Kv.Key)] = ev.Kv.Value
				}
			}
			now := time.Now()
			render, wait := db.change(now)
			if render {
				w.apply(ctx, kvs, now)
				db.rendered(time.Now())
				continue
			}
			timer.Reset(wait)
		case <-timer.C:
			w.apply(ctx, kvs, db.pending())
			db.rendered(time.Now())
		}
	}
}

// apply renders kvs and installs the result if its bytes differ from the last attempt;
// since is the first change of the burst, for the latency in the log.
func (w *Watcher) apply(ctx context.Context, kvs map[string][]byte, since time.Time) {
	out, warnings, err := w.render(kvs)
	if err != nil {
		w.Log.Error("cannot render upstreams; keeping the last good file", "err", err)
		return
	}
	if w.last != nil && bytes.Equal(out, w.last) {
		return
	}
	w.logSkipped(warnings)
	changed, err := w.Nginx.Apply(ctx, out)
	switch {
	case errors.Is(err, nginx.ErrCheck):
		w.last = out // retry on the next change, not on every event
		w.Log.Error("nginx check failed; kept the last good upstreams, will retry on the next change", "output", w.Nginx.Output, "err", err)
	case err != nil:
		w.last = nil
		w.Log.Error("cannot install upstreams", "output", w.Nginx.Output, "err", err)
	default:
		w.last = out
		attrs := []any{"output", w.Nginx.Output, "changed", changed, "bytes", len(out), "reloads", w.Nginx.Reloads()}
		if !since.IsZero() {
			attrs = append(attrs, "latency", time.Since(since).Round(time.Millisecond))
		}
		if changed {
			w.Log.Info("upstreams installed and nginx reloaded", attrs...)
		}
	}
}
