package announce

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rundock/rundock/internal/backoff"
	"github.com/rundock/rundock/internal/container"
	"github.com/rundock/rundock/internal/dockerapi"
	"github.com/rundock/rundock/internal/etcd"
	"github.com/rundock/rundock/internal/etcdclient"
	"github.com/rundock/rundock/internal/lease"
)

const (
	// shutdownTimeout bounds the cleanup after a stop: well under MinTTL, and short
	// enough that the process exits within a second even when etcd is gone.
	shutdownTimeout = 500 * time.Millisecond
	// opTimeout bounds each etcd call in the loop, so a state change waits at most this
	// long behind a call to an unreachable etcd.
	opTimeout = 2 * time.Second
	// backoffMin and backoffMax bound the retry delay after etcd or address errors, and
	// the re-establishment of the key's watch.
	backoffMin = 200 * time.Millisecond
	backoffMax = 5 * time.Second
	// watchStable is how long a watch must have lasted for its end to count as news
	// rather than a repeat failure: its re-establishment backoff starts again from
	// backoffMin.
	watchStable = 10 * time.Second
)

// loop is the state of one Run; only Run's goroutine touches it.
type loop struct {
	a   *Announcer
	cli *etcd.Client
	h   *lease.Holder

	st    container.State
	known bool // is st the container's real state yet?
	dir   *stateDir
	hold  hold
	// logged transitions, so each is logged once
	draining string // the container ID being drained, "" when none
	badDrain string
	dirErr   string

	published string   // the value put under the current lease; "" when withdrawn
	extra     []string // the values of the extra keys put with it (Announcer.Keys)
	mayHold   bool     // may etcd hold a record of ours (so a stop must withdraw)?
	verify    bool     // put again even if published says it is there
	dirty     bool
	retry     <-chan time.Time
	bo        backoff.Backoff
	lastErr   string
	reached   bool // did the last sync get its answers from etcd?

	watch        <-chan etcd.WatchResponse // nil when not watching
	stopWatch    context.CancelFunc
	watchStarted time.Time
	rewatch      <-chan time.Time // not before this fires may a watch start again
	wbo          backoff.Backoff
}

// Run keeps the record in line with the container and the state directory until ctx is
// done, then deletes its own record and revokes the lease (on a fresh context, within
// shutdownTimeout) and returns nil. It returns an error only when it cannot start (bad
// TLS files, no Docker client).
func (a *Announcer) Run(ctx context.Context) error {
	cli, err := etcdclient.Dial(ctx, a.cfg.Etcd, func(err error) {
		a.log.Error("cannot reach etcd, retrying", "key", a.key, "err", err)
	})
	if ctx.Err() != nil {
		return nil // stopped before etcd was reached: nothing was announced
	}
	if err != nil {
		return err
	}
	defer cli.Close()
	l := &loop{a: a, cli: cli, h: &lease.Holder{Client: cli, Key: a.key, Extra: a.extra, TTL: a.cfg.TTL},
		bo: backoff.Backoff{Min: backoffMin, Max: backoffMax}, wbo: backoff.Backoff{Min: backoffMin, Max: backoffMax}}

	states := a.cfg.States
	switch {
	case a.cfg.IgnoreContainer:
		l.st, l.known = container.State{Exists: true, Running: true, Reason: "not watched"}, true
		states = nil
	case states == nil:
		dc, err := dockerapi.FromEnv()
		if err != nil {
			return fmt.Errorf("cannot create docker client: %w", err)
		}
		defer dc.Close()
		ch := make(chan container.State)
		w := &container.Watcher{Name: a.cfg.Container, Network: a.cfg.Network, Port: a.cfg.PublishedPort, Client: dc, Logger: a.log}
		wctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		defer func() { stop(); <-done }()
		go func() { defer close(done); w.Run(wctx, ch) }()
		states = ch
	}
	var poll <-chan time.Time
	if a.cfg.StateDir != "" {
		l.dir = &stateDir{dir: a.cfg.StateDir}
		t := time.NewTicker(holdPoll)
		defer t.Stop()
		poll = t.C
	}
	a.log.Info("starting", "key", a.key, "announce_as", a.cfg.AnnounceAs, "container", a.cfg.Container,
		"watch", !a.cfg.IgnoreContainer, "ttl", a.cfg.TTL, "state_dir", a.cfg.StateDir,
		"endpoints", strings.Join(a.cfg.Etcd.Endpoints, ","))
	l.reload(true) // before the first put: a maintenance survives an announcer restart
	l.dirty = l.known
	defer func() { l.unwatch() }()
	for {
		l.step(ctx)
		select {
		case <-ctx.Done():
			l.unwatch()
			a.shutdown(l.h, l.mayHold, l.published != "")
			return nil
		case s := <-states:
			a.log.Info("container state", "container", a.cfg.Container, "id", shortID(s.ID), "up", s.Up(), "reason", s.Reason, "ip", s.IP)
			l.st, l.known = s, true
			l.reload(true)
			l.kick()
		case <-a.cfg.Reload:
			l.reload(true)
		case <-poll:
			l.reload(false)
		case <-l.h.Lost():
			a.log.Warn("lease lost, granting a new one", "key", a.key, "lease", fmt.Sprintf("%x", l.h.ID()))
			l.h.Drop()
			l.unwatch() // re-established after the next answer from etcd
			l.rewatch = nil
			l.published = ""
			l.kick()
		case wr, ok := <-l.watch:
			l.onWatch(wr, ok)
		case <-l.rewatch:
			l.rewatch = nil
		case <-l.retry:
			l.retry = nil
		}
	}
}

// kick makes the next step sync at once, without waiting for a pending retry.
func (l *loop) kick() { l.dirty, l.retry = true, nil }

// step syncs when something changed and no retry is pending, and (re)starts the watch on
// the key once etcd has answered.
func (l *loop) step(ctx context.Context) {
	if l.dirty && l.retry == nil && l.known {
		err := l.sync(ctx)
		var held *lease.HeldError
		l.reached = err == nil || errors.As(err, &held)
		switch {
		case ctx.Err() != nil:
			return
		case held != nil:
			if msg := err.Error(); msg != l.lastErr {
				l.a.log.Error("record key held by another live lease: not touching it, retrying", "key", l.a.key,
					"lease", fmt.Sprintf("%x", held.Lease), "value", held.Value, "revision", held.ModRevision,
					"hint", "another announcer writes this key (two services with the same name and instance?), or this announcer's previous run announced another value and its lease has not expired yet")
				l.lastErr = msg
			}
			l.published = "" // whatever we published, the key is not ours now
			l.retry = time.After(l.bo.Next())
		case err != nil:
			if msg := err.Error(); msg != l.lastErr { // one line per failure kind, not per retry
				l.a.log.Warn("etcd unreachable or address unknown, retrying", "key", l.a.key, "err", err)
				l.lastErr = msg
			}
			l.retry = time.After(l.bo.Next())
		default:
			l.dirty, l.lastErr = false, ""
			l.bo.Reset()
		}
	}
	if l.watch == nil && l.rewatch == nil && l.reached && l.h.Rev() != 0 && ctx.Err() == nil {
		l.startWatch(ctx)
	}
}

// reason says why the record must not be announced now, "" when it should be.
func (l *loop) reason() string {
	switch {
	case !l.st.Up():
		return l.st.Reason
	case l.a.cfg.PublishedPort != "" && l.st.HostPort == 0:
		return "the container publishes no host port for " + l.a.cfg.PublishedPort
	case l.hold.maintenance:
		return "maintenance: " + l.hold.reason
	case l.draining != "":
		return "draining container " + l.draining
	}
	return ""
}

// sync makes etcd match the wanted state: our record under a live lease when the
// container is up and nothing withholds it, none of ours otherwise.
func (l *loop) sync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if why := l.reason(); why != "" {
		if !l.mayHold {
			return nil
		}
		if err := l.h.Withdraw(ctx); err != nil {
			return err
		}
		if l.published != "" {
			l.a.log.Info("withdrawn", "key", l.a.key, "reason", why)
		}
		l.published, l.extra, l.mayHold, l.verify = "", nil, false, false
		return nil
	}
	host, err := l.a.host(l.st)
	if err != nil {
		return err
	}
	host6, err := l.a.host6()
	if err != nil {
		return err
	}
	rec, err := l.a.record(host, l.st)
	if err != nil {
		return err
	}
	value, extra := rec.Encode(), l.a.Extra(rec, host6)
	if value == l.published && slices.Equal(extra, l.extra) && l.h.ID() != 0 && !l.verify {
		return nil
	}
	l.mayHold = true
	if err := l.h.Put(ctx, value, extra...); err != nil {
		return err
	}
	l.extra = extra
	if from := l.h.Adopted(); from != 0 {
		l.a.log.Info("announced, adopted the identical record on another lease (likely this announcer's killed previous run)",
			"key", l.a.key, "value", value, "lease", fmt.Sprintf("%x", l.h.ID()), "from_lease", fmt.Sprintf("%x", from), "revision", l.h.Rev())
	} else if value != l.published || l.verify {
		l.a.log.Info("announced", "key", l.a.key, "value", value, "lease", fmt.Sprintf("%x", l.h.ID()), "revision", l.h.Rev())
	}
	l.published, l.verify = value, false
	return nil
}

// reload re-reads the state directory (at once when forced, else when a stat shows a
// change), logs each transition and kicks a sync when the hold changed.
func (l *loop) reload(force bool) {
	if l.dir != nil {
		h, changed, err := l.dir.poll(force)
		switch {
		case err != nil:
			if msg := err.Error(); msg != l.dirErr {
				l.a.log.Warn("cannot read the state directory; keeping the last maintenance and drain state", "dir", l.dir.dir, "err", err)
				l.dirErr = msg
			}
		case changed:
			l.dirErr = ""
			l.setHold(h)
		}
	}
	l.noteDrain()
}

func (l *loop) setHold(h hold) {
	old := l.hold
	l.hold = h
	switch {
	case h.maintenance && !old.maintenance:
		l.a.log.Info("entering maintenance, record withheld", "key", l.a.key, "reason", h.reason)
	case !h.maintenance && old.maintenance:
		l.a.log.Info("leaving maintenance", "key", l.a.key)
	}
	if h.badDrain != l.badDrain && h.badDrain != "" {
		l.a.log.Warn("drain file does not hold a container ID (64 hex digits); ignored", "file", DrainFile, "content", h.badDrain)
	}
	l.badDrain = h.badDrain
	if h.maintenance != old.maintenance {
		l.kick()
	}
}

// noteDrain updates the drained container ID from the hold and the container's state.
func (l *loop) noteDrain() {
	id := ""
	if l.known && l.hold.drain != "" && l.hold.drain == l.st.ID {
		id = l.st.ID
	}
	switch {
	case id == l.draining:
		return
	case id != "":
		l.a.log.Info("draining container, record withheld", "key", l.a.key, "container_id", id)
	default:
		why := "drain file removed"
		if l.hold.drain != "" {
			why = "container replaced or gone"
		}
		l.a.log.Info("drain over", "key", l.a.key, "container_id", l.draining, "why", why, "now", shortID(l.st.ID))
	}
	l.draining = id
	l.kick()
}

// startWatch watches the record's key, or with extra keys the service's whole subtree
// (onWatch picks out its own keys): one watch either way.
func (l *loop) startWatch(ctx context.Context) {
	wctx, cancel := context.WithCancel(ctx)
	opts := etcd.WatchOptions{Rev: l.h.Rev() + 1, RequireLeader: true}
	key := l.a.key
	if len(l.a.extra) > 0 {
		key = l.a.svcKey
		opts.Prefix = true
	}
	l.watch = l.cli.Watch(wctx, key, opts)
	l.stopWatch, l.watchStarted = cancel, time.Now()
	l.a.log.Debug("watching the record", "key", key, "from_revision", l.h.Rev()+1)
}

// ownValue returns what the loop last put at key and whether key is one of its keys.
func (l *loop) ownValue(key string) (value string, ok bool) {
	if key == l.a.key {
		return l.published, true
	}
	for i, k := range l.a.extra {
		if k == key {
			if i < len(l.extra) {
				return l.extra[i], true
			}
			return "", true
		}
	}
	return "", false
}

func (l *loop) unwatch() {
	if l.stopWatch != nil {
		l.stopWatch()
	}
	l.watch, l.stopWatch = nil, nil
}

// onWatch handles one answer of the watch on the key: a change someone else made is
// logged and, when the record should be announced, undone.
func (l *loop) onWatch(wr etcd.WatchResponse, ok bool) {
	if !ok || wr.Err() != nil || wr.Canceled {
		err := wr.Err()
		if err == nil {
			err = errors.New("watch closed")
		}
		l.a.log.Warn("record watch ended, re-establishing", "key", l.a.key, "err", err)
		l.unwatch()
		if time.Since(l.watchStarted) > watchStable {
			l.wbo.Reset()
		}
		l.rewatch = time.After(l.wbo.Next())
		// The next watch starts after the holder's last revision, so it sees what this
		// one missed, unless that was compacted: then only a put can tell. A watch
		// that merely lost its member (etcd's client ends it, unlike gRPC's, which
		// resumed it) must not make a put that fails and drops a lease still alive.
		l.verify = true
		if errors.Is(err, etcd.ErrCompacted) {
			l.kick()
		}
		return
	}
	for _, ev := range wr.Events {
		kv := ev.Kv
		mine, own := l.ownValue(string(kv.Key))
		if !own {
			continue // another instance's record, seen through the subtree watch
		}
		if kv.ModRevision <= l.h.Rev() {
			continue // the holder knows this state: its own write, or older than its last look
		}
		lease := etcd.LeaseID(kv.Lease)
		if ev.Type == etcd.EventTypePut && l.published != "" && string(kv.Value) == mine && lease == l.h.ID() {
			continue // ours, from a write whose answer was lost
		}
		who := "another lease"
		switch {
		case lease == 0 && ev.Type == etcd.EventTypePut:
			who = "no lease (a hand-written value)"
		case ev.Type == etcd.EventTypeDelete:
			who = "a delete"
		case l.h.Owns(lease):
			who = "an earlier lease of ours"
		}
		attrs := []any{"key", string(kv.Key), "event", ev.Type.String(), "value", string(kv.Value),
			"lease", fmt.Sprintf("%x", lease), "by", who, "revision", kv.ModRevision}
		if why := l.reason(); why != "" || !l.known {
			if ev.Type == etcd.EventTypePut {
				l.a.log.Warn("record written by someone else while withheld; left alone", append(attrs, "withheld", why)...)
			}
			continue
		}
		if l.published != "" {
			l.a.log.Warn("record changed by someone else, restoring", attrs...)
		} else {
			l.a.log.Info("record key changed by someone else, announcing", attrs...)
		}
		l.verify = true
		l.kick()
	}
}

// shutdown withdraws what may be ours (withdraw) and logs whether a published record
// went.
func (a *Announcer) shutdown(h *lease.Holder, withdraw, published bool) {
	if !withdraw {
		a.log.Info("stopped", "key", a.key)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := h.Withdraw(ctx); err != nil {
		a.log.Warn("stopped; cannot withdraw, the record expires with its lease", "key", a.key, "ttl", a.cfg.TTL, "err", err)
		return
	}
	if !published {
		a.log.Info("stopped", "key", a.key)
		return
	}
	a.log.Info("stopped, withdrawn", "key", a.key)
}

// shortID is a container ID as docker ps shows it, for logs.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
