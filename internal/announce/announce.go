// Package announce keeps one service instance in SkyDNS (etcd v3, read by CoreDNS's etcd
// plugin) while its container can serve: the record is put under a lease when the
// container is running and healthy, deleted at once when it stops, dies, is paused or
// turns unhealthy, and expires with the lease when the announcer itself dies.
package announce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/client"

	"github.com/rundock/rundock/internal/backoff"
	"github.com/rundock/rundock/internal/container"
	"github.com/rundock/rundock/internal/defaults"
	"github.com/rundock/rundock/internal/dnsname"
	"github.com/rundock/rundock/internal/etcdclient"
	"github.com/rundock/rundock/internal/hostaddr"
	"github.com/rundock/rundock/internal/lease"
	"github.com/rundock/rundock/internal/skydns"
)

// Ways to find the announced address (Config.AnnounceAs).
const (
	AsPublic    = "public"
	AsPrivate   = "private"
	AsContainer = "container"
)

// Defaults New applies to zero fields (the shared ones come from package defaults).
const (
	DefaultDomain     = defaults.Domain
	DefaultAnnounceAs = AsPrivate
	DefaultTTL        = defaults.TTL    // seconds
	MinTTL            = defaults.MinTTL // etcd's practical lease minimum
	DefaultEndpoint   = defaults.EtcdEndpoint
)

const (
	// shutdownTimeout bounds the cleanup after a stop: well under MinTTL, and short
	// enough that the process exits within a second even when etcd is gone.
	shutdownTimeout = 500 * time.Millisecond
	// opTimeout bounds each etcd call in the loop, so a state change waits at most this
	// long behind a call to an unreachable etcd.
	opTimeout = 2 * time.Second
	// backoffMin and backoffMax bound the retry delay after etcd or address errors.
	backoffMin = 200 * time.Millisecond
	backoffMax = 5 * time.Second
)

// ErrConfig marks configuration errors: the caller should fix its flags.
var ErrConfig = errors.New("bad configuration")

// Etcd says how to reach etcd; see etcdclient.Config. Password is never taken from a flag:
// the command reads it from a file or the environment.
type Etcd = etcdclient.Config

// Config is everything the announcer needs; New fills in the documented defaults.
type Config struct {
	Name     string // service name: the first label of NAME.DOMAIN
	Port     int    // announced port (SRV)
	Domain   string // default DefaultDomain
	Prefix   string // etcd path CoreDNS reads, default defaults.Prefix
	Instance string // last key label, default the short host name, lowercased

	AnnounceAs       string // public, private (default) or container
	Host             string // explicit address; overrides AnnounceAs
	PublicInterface  string
	PrivateInterface string

	Container       string // container to follow, default Name
	Network         string // Docker network whose IP AnnounceAs=container uses; default the first
	IgnoreContainer bool   // announce unconditionally (--watch-container=false)

	TTL      int64 // lease seconds, default DefaultTTL, at least MinTTL
	DNSTTL   int64 // the record's ttl field, 0 = TTL
	Priority int
	Weight   int

	Etcd   Etcd
	Logger *slog.Logger // default: discard
}

// Announcer is one running announcement; build it with New, run it with Run.
type Announcer struct {
	cfg Config
	key string
	log *slog.Logger
}

// New checks cfg, applies defaults and returns the announcer. Errors wrap ErrConfig and
// name the bad value.
func New(cfg Config) (*Announcer, error) {
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	if cfg.Prefix == "" {
		cfg.Prefix = defaults.Prefix
	}
	if cfg.Instance == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("%w: cannot read the host name for the default --instance: %v", ErrConfig, err)
		}
		cfg.Instance, _, _ = strings.Cut(h, ".")
	}
	cfg.Instance = strings.ToLower(cfg.Instance)
	cfg.Name = strings.ToLower(cfg.Name)
	if cfg.AnnounceAs == "" {
		cfg.AnnounceAs = DefaultAnnounceAs
	}
	if cfg.Container == "" {
		cfg.Container = cfg.Name
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.DNSTTL == 0 {
		cfg.DNSTTL = cfg.TTL
	}
	cfg.Etcd.SetDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	key, err := skydns.InstanceKey(cfg.Prefix, cfg.Domain, cfg.Name, cfg.Instance)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &Announcer{cfg: cfg, key: key, log: cfg.Logger}, nil
}

func (c *Config) check() error {
	switch {
	case c.Name == "":
		return errors.New("no service name: pass --name, e.g. --name influxdb")
	case !dnsname.IsLabel(c.Name):
		return fmt.Errorf("name %q is not a DNS label: %s", c.Name, dnsname.Rule)
	case !dnsname.IsLabel(c.Instance):
		return fmt.Errorf("instance %q is not a DNS label: pass --instance and %s", c.Instance, dnsname.Rule)
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("port %d out of range: pass --port between 1 and 65535", c.Port)
	case c.AnnounceAs != AsPublic && c.AnnounceAs != AsPrivate && c.AnnounceAs != AsContainer:
		return fmt.Errorf("announce-as %q: use public, private or container", c.AnnounceAs)
	case c.AnnounceAs == AsContainer && c.IgnoreContainer && c.Host == "":
		return errors.New("announce-as container reads the container's IP, which needs --watch-container=true (or give --host)")
	case c.TTL < MinTTL:
		return fmt.Errorf("ttl %d too short: pass --ttl of at least %d seconds", c.TTL, MinTTL)
	case c.DNSTTL < 0 || c.DNSTTL > 1<<31-1:
		return fmt.Errorf("dns-ttl %d out of range: pass 0 (same as --ttl) or more seconds", c.DNSTTL)
	case c.Priority < 0 || c.Priority > 65535:
		return fmt.Errorf("priority %d out of range: use 0 to 65535", c.Priority)
	case c.Weight < 0 || c.Weight > 65535:
		return fmt.Errorf("weight %d out of range: use 0 to 65535", c.Weight)
	case c.Container == "" || strings.ContainsAny(c.Container, " /\t\n"):
		return fmt.Errorf("container %q is not a container name: pass --container NAME", c.Container)
	case c.Host != "" && net.ParseIP(c.Host) == nil && !dnsname.IsHostName(c.Host):
		return fmt.Errorf("host %q is neither an IP address nor a host name", c.Host)
	}
	return c.Etcd.Check()
}

// Key returns the etcd key of the record.
func (a *Announcer) Key() string { return a.key }

// Config returns the configuration after defaults.
func (a *Announcer) Config() Config { return a.cfg }

// Record returns the record for host with the configured port, priority, weight and
// DNS TTL.
func (a *Announcer) Record(host string) skydns.Record {
	return skydns.Record{Host: host, Port: a.cfg.Port, Priority: a.cfg.Priority, Weight: a.cfg.Weight, TTL: uint32(a.cfg.DNSTTL)}
}

// host finds the address to announce for the container state st.
func (a *Announcer) host(st container.State) (string, error) {
	switch {
	case a.cfg.Host != "":
		return a.cfg.Host, nil
	case a.cfg.AnnounceAs == AsContainer:
		if st.IP == "" {
			return "", fmt.Errorf("container %s has no IP address (network %q): use --announce-as private or public for host-network containers", a.cfg.Container, a.cfg.Network)
		}
		return st.IP, nil
	case a.cfg.AnnounceAs == AsPublic:
		ip, err := hostaddr.Public(a.cfg.PublicInterface)
		if err != nil {
			return "", err
		}
		return ip.String(), nil
	default:
		ip, err := hostaddr.Private(a.cfg.PrivateInterface)
		if err != nil {
			return "", err
		}
		return ip.String(), nil
	}
}

// Run keeps the record in line with the container until ctx is done, then deletes it and
// revokes the lease (on a fresh context, within shutdownTimeout) and returns nil. It
// returns an error only when it cannot start (bad TLS files, no Docker client).
func (a *Announcer) Run(ctx context.Context) error {
	cli, err := etcdclient.New(a.cfg.Etcd)
	if err != nil {
		return err
	}
	defer cli.Close()
	h := &lease.Holder{Client: cli, Key: a.key, TTL: a.cfg.TTL}

	states := make(chan container.State)
	var st container.State
	known := false // is st the container's real state yet?
	if a.cfg.IgnoreContainer {
		st, known = container.State{Exists: true, Running: true, Reason: "not watched"}, true
	} else {
		dc, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			return fmt.Errorf("cannot create docker client: %w", err)
		}
		defer dc.Close()
		w := &container.Watcher{Name: a.cfg.Container, Network: a.cfg.Network, Client: dc, Logger: a.log}
		wctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		defer func() { stop(); <-done }()
		go func() { defer close(done); w.Run(wctx, states) }()
	}
	a.log.Info("starting", "key", a.key, "announce_as", a.cfg.AnnounceAs, "container", a.cfg.Container,
		"watch", !a.cfg.IgnoreContainer, "ttl", a.cfg.TTL, "endpoints", strings.Join(a.cfg.Etcd.Endpoints, ","))

	var (
		published string // the value in etcd under a live lease; "" when withdrawn
		dirty     = known
		retry     <-chan time.Time
		bo        = backoff.Backoff{Min: backoffMin, Max: backoffMax}
		lastErr   string
	)
	for {
		if dirty && retry == nil && known {
			err := a.sync(ctx, h, st, &published)
			switch {
			case ctx.Err() != nil:
			case err != nil:
				if msg := err.Error(); msg != lastErr { // one line per failure kind, not per retry
					a.log.Warn("etcd unreachable or address unknown, retrying", "key", a.key, "err", err)
					lastErr = msg
				}
				retry = time.After(bo.Next())
			default:
				dirty, lastErr = false, ""
				bo.Reset()
			}
		}
		select {
		case <-ctx.Done():
			a.shutdown(h, published != "" || dirty)
			return nil
		case s := <-states:
			a.log.Info("container state", "container", a.cfg.Container, "up", s.Up(), "reason", s.Reason, "ip", s.IP)
			st, known, dirty, retry = s, true, true, nil
		case <-h.Lost():
			a.log.Warn("lease lost, granting a new one", "key", a.key, "lease", fmt.Sprintf("%x", h.ID()))
			h.Drop()
			published, dirty, retry = "", true, nil
		case <-retry:
			retry = nil
		}
	}
}

// sync makes etcd match st: the record under a live lease when st is up, no key otherwise.
func (a *Announcer) sync(ctx context.Context, h *lease.Holder, st container.State, published *string) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if !st.Up() {
		if err := h.Withdraw(ctx); err != nil {
			return err
		}
		if *published != "" {
			a.log.Info("withdrawn", "key", a.key, "reason", st.Reason)
		}
		*published = ""
		return nil
	}
	host, err := a.host(st)
	if err != nil {
		return err
	}
	value := a.Record(host).Encode()
	if value == *published && h.ID() != 0 {
		return nil
	}
	if err := h.Put(ctx, value); err != nil {
		return err
	}
	*published = value
	a.log.Info("announced", "key", a.key, "value", value, "lease", fmt.Sprintf("%x", h.ID()))
	return nil
}

func (a *Announcer) shutdown(h *lease.Holder, withdraw bool) {
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
	a.log.Info("stopped, withdrawn", "key", a.key)
}
