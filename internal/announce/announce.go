// Package announce keeps one service instance in SkyDNS (etcd v3, read by CoreDNS's etcd
// plugin) while its container can serve: the record is put under a lease when the
// container is running and healthy, deleted at once when it stops, dies, is paused or
// turns unhealthy, and expires with the lease when the announcer itself dies.
//
// The record is also withheld on purpose while the service's state directory says so
// (maintenance, or a drain of the running container; see statedir.go), and it heals: a
// watch on the key notices within milliseconds when someone else deletes or overwrites
// it, and the announcer puts it back unless it is withheld. It writes and deletes only
// its own record (package lease): a key held by another announcer's live lease is left
// alone.
package announce

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/rundock/rundock/internal/container"
	"github.com/rundock/rundock/internal/defaults"
	"github.com/rundock/rundock/internal/dnsname"
	"github.com/rundock/rundock/internal/etcdclient"
	"github.com/rundock/rundock/internal/hostaddr"
	"github.com/rundock/rundock/internal/skydns"
)

// Ways to find the announced address (Config.AnnounceAs).
const (
	AsPublic     = "public"
	AsPrivate    = "private"
	AsContainer  = "container"
	AsContainer6 = "container6" // the container's global IPv6 address; answered as AAAA
	AsPublic6    = "public6"    // IPv6, see hostaddr.Rule6; answered as AAAA
	AsPrivate6   = "private6"   // IPv6 ULA, see hostaddr.Rule6; answered as AAAA
)

// Defaults New applies to zero fields (the shared ones come from package defaults).
const (
	DefaultDomain     = defaults.Domain
	DefaultAnnounceAs = AsPrivate
	DefaultTTL        = defaults.TTL    // seconds
	MinTTL            = defaults.MinTTL // etcd's practical lease minimum
	DefaultEndpoint   = defaults.EtcdEndpoint
)

// ErrConfig marks configuration errors: the caller should fix its flags.
var ErrConfig = errors.New("bad configuration")

// Etcd says how to reach etcd; see etcdclient.Config. Password is never taken from a flag:
// the command reads it from a file or the environment.
type Etcd = etcdclient.Config

// Config is everything the announcer needs; New fills in the documented defaults.
type Config struct {
	Name string // service name: the first label of NAME.DOMAIN
	Port int    // announced port (SRV)
	// PublishedPort, when set, is a container port ("8080/tcp"): the record's port is the
	// host port the container publishes for it, and while it publishes none the record is
	// withheld. rundock sets it for update start-first, where a container runs on one of
	// two host ports. Needs the container watched.
	PublishedPort string
	Domain        string // default DefaultDomain
	Prefix        string // etcd path CoreDNS reads, default defaults.Prefix
	Instance      string // last key label, default the short host name, lowercased

	AnnounceAs string // public, private (default) or container
	Host       string // explicit address; overrides AnnounceAs
	// AnnounceAs6 (public6 or private6) or Host6 (which overrides it) make the instance
	// dual-stack: an IPv6 address announced beside the IPv4 one (see package skydns).
	AnnounceAs6      string
	Host6            string
	PublicInterface  string
	PrivateInterface string

	Container       string // container to follow, default Name
	Network         string // Docker network whose IP AnnounceAs=container uses; default the first
	IgnoreContainer bool   // announce unconditionally (--watch-container=false)

	TTL      int64 // lease seconds, default DefaultTTL, at least MinTTL
	DNSTTL   int64 // the record's ttl field, 0 = TTL
	Priority int
	Weight   int

	// NamedPorts are more ports of the instance, each announced at
	// _NAME._tcp.NAME.DOMAIN (see package skydns) with the same address, under the same
	// lease and at the same time as the main record.
	NamedPorts []NamedPort
	// Meta, when it has an image or tags, is announced as the instance's TXT record.
	Meta skydns.Meta

	// StateDir is the service tree's state directory (--state-dir), "" for none. While
	// StateDir/maintenance exists, or StateDir/drain names the followed container's ID,
	// the record is withheld. The directory may not exist yet; see statedir.go.
	StateDir string
	// Reload makes the announcer re-read the state files at once on every receive:
	// cmd/announcer sends on it for SIGUSR1 (`sv 1`). nil: only the poll and container
	// state changes re-read them.
	Reload <-chan struct{}
	// States is the test seam for the container: when set (and IgnoreContainer is not),
	// the announcer takes the container's states from it instead of following Docker.
	// Production leaves it nil.
	States <-chan container.State

	Etcd   Etcd
	Logger *slog.Logger // default: discard
}

// NamedPort is one named port: Name an RFC 6335 service name such as metrics, Port the
// host port it is reached on.
type NamedPort struct {
	Name string
	Port int
}

// Announcer is one running announcement; build it with New, run it with Run.
type Announcer struct {
	cfg    Config
	key    string
	svcKey string   // the service's subtree
	extra  []string // the keys of Extra's values
	log    *slog.Logger
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
	if cfg.PublishedPort != "" && !strings.Contains(cfg.PublishedPort, "/") {
		cfg.PublishedPort += "/tcp"
	}
	// One spelling per address (fd00::5, not FD00:0::0005), as CoreDNS answers it and
	// rundock upstreams compares it.
	if a, err := netip.ParseAddr(cfg.Host); err == nil && a.Zone() == "" {
		cfg.Host = a.String()
	}
	if a, err := netip.ParseAddr(cfg.Host6); err == nil && a.Zone() == "" && a.Is6() && !a.Is4In6() {
		cfg.Host6 = a.String()
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
	if err := cfg.checkExtra(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	key, err := skydns.InstanceKey(cfg.Prefix, cfg.Domain, cfg.Name, cfg.Instance)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	a := &Announcer{cfg: cfg, key: key, svcKey: key[:strings.LastIndexByte(key, '/')+1], log: cfg.Logger}
	if a.dual() {
		a.key = skydns.FamilyKey(key, skydns.FamilyIPv4)
		a.extra = append(a.extra, skydns.FamilyKey(key, skydns.FamilyIPv6))
	}
	for _, p := range cfg.NamedPorts {
		k, err := skydns.PortKey(cfg.Prefix, cfg.Domain, cfg.Name, p.Name, cfg.Instance)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		if a.dual() {
			a.extra = append(a.extra, skydns.FamilyKey(k, skydns.FamilyIPv4), skydns.FamilyKey(k, skydns.FamilyIPv6))
			continue
		}
		a.extra = append(a.extra, k)
	}
	if a.hasMeta() {
		k, err := skydns.TextKey(cfg.Prefix, cfg.Domain, cfg.Name, cfg.Instance)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		a.extra = append(a.extra, k)
	}
	return a, nil
}

func (a *Announcer) hasMeta() bool { return a.cfg.Meta.Image != "" || len(a.cfg.Meta.Tags) > 0 }

func (a *Announcer) dual() bool { return a.cfg.Host6 != "" || a.cfg.AnnounceAs6 != "" }

// checkExtra checks the named ports and the metadata.
func (c *Config) checkExtra() error {
	seen := map[string]bool{}
	for _, p := range c.NamedPorts {
		switch {
		case !skydns.IsPortName(p.Name):
			return fmt.Errorf("named port %q: %s", p.Name, skydns.PortNameRule)
		case seen[p.Name]:
			return fmt.Errorf("named port %q given twice: pass each --named-port NAME=PORT once", p.Name)
		case p.Port < 1 || p.Port > 65535:
			return fmt.Errorf("named port %s=%d out of range: use a port between 1 and 65535", p.Name, p.Port)
		}
		seen[p.Name] = true
	}
	if c.Host6 != "" || c.AnnounceAs6 != "" {
		ip := net.ParseIP(c.Host6)
		switch {
		case c.Host6 != "" && (ip == nil || ip.To4() != nil || strings.Contains(c.Host6, "%")):
			return fmt.Errorf("host6 %q is not an IPv6 address: pass e.g. --host6 fd00::5 (no brackets or zone)", c.Host6)
		case c.Host6 == "" && c.AnnounceAs6 != AsPublic6 && c.AnnounceAs6 != AsPrivate6:
			return fmt.Errorf("announce-as6 %q: use public6 or private6", c.AnnounceAs6)
		case c.Host != "" && (net.ParseIP(c.Host) == nil || net.ParseIP(c.Host).To4() == nil):
			return fmt.Errorf("host %q with --host6 or --announce-as6: a dual-stack instance's --host is its IPv4 address", c.Host)
		case c.Host == "" && c.AnnounceAs != AsPublic && c.AnnounceAs != AsPrivate:
			return fmt.Errorf("announce-as %q with --host6 or --announce-as6: a dual-stack instance announces an IPv4 address (public or private, or --host) beside the IPv6 one", c.AnnounceAs)
		case c.PublishedPort != "":
			return errors.New("--host6/--announce-as6 with --published-port: a start-first update of a dual-stack instance is not supported; drop one of them")
		}
	}
	if len(c.NamedPorts) > 0 && c.PublishedPort != "" {
		return errors.New("named ports are fixed host ports, which a start-first update (--published-port) cannot keep while two containers run: drop one of them")
	}
	for _, t := range c.Meta.Tags {
		if !skydns.IsTag(t) {
			return fmt.Errorf("tag %q is not a DNS label: %s", t, dnsname.Rule)
		}
	}
	if c.Meta.Image != "" && strings.ContainsFunc(c.Meta.Image, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '"' || r == '\\' }) {
		return fmt.Errorf("image %q holds a space, quote or control character: pass the image reference, e.g. --image registry.example/web:1.2", c.Meta.Image)
	}
	return nil
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
	case c.AnnounceAs != AsPublic && c.AnnounceAs != AsPrivate && c.AnnounceAs != AsContainer &&
		c.AnnounceAs != AsPublic6 && c.AnnounceAs != AsPrivate6 && c.AnnounceAs != AsContainer6:
		return fmt.Errorf("announce-as %q: use public, private, container, public6, private6 or container6", c.AnnounceAs)
	case c.PublishedPort != "" && !validPublishedPort(c.PublishedPort):
		return fmt.Errorf("published-port %q is not a container port: pass PORT or PORT/tcp, e.g. --published-port 8080", c.PublishedPort)
	case c.PublishedPort != "" && c.IgnoreContainer:
		return errors.New("published-port reads the port from the container, which needs --watch-container=true")
	case (c.AnnounceAs == AsContainer || c.AnnounceAs == AsContainer6) && c.IgnoreContainer && c.Host == "":
		return fmt.Errorf("announce-as %s reads the container's IP, which needs --watch-container=true (or give --host)", c.AnnounceAs)
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
		return fmt.Errorf("host %q is neither an IP address nor a host name: pass e.g. --host 10.0.0.5, --host fd00::5 (IPv6 without brackets or zone) or --host backend-1.example.net", c.Host)
	case strings.ContainsAny(c.StateDir, "\x00\n"):
		return fmt.Errorf("state-dir %q is not a path: pass the service tree's state directory, e.g. /etc/sv/docker-web/.rundock", c.StateDir)
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
	return skydns.Record{Host: host, Port: a.cfg.Port, Priority: a.cfg.Priority, Weight: a.cfg.Weight,
		TTL: uint32(a.cfg.DNSTTL), Group: a.cfg.Name}
}

// Keys returns the keys of the records beside Key, in Extra's order: a dual-stack
// instance's IPv6 record, the named ports' (two each when dual-stack), the TXT record.
func (a *Announcer) Keys() []string { return a.extra }

// Extra returns the values of the records at Keys for the instance record r and, for a
// dual-stack instance, its IPv6 address host6.
func (a *Announcer) Extra(r skydns.Record, host6 string) []string {
	var out []string
	addrs := []skydns.Record{r}
	if a.dual() {
		r6 := r
		r6.Host = host6
		addrs = append(addrs, r6)
		out = append(out, r6.Encode())
	}
	for _, p := range a.cfg.NamedPorts {
		for _, rec := range addrs {
			rec.Port, rec.Group = p.Port, skydns.PortGroup(a.cfg.Name, p.Name)
			out = append(out, rec.Encode())
		}
	}
	if a.hasMeta() {
		out = append(out, skydns.Record{Text: skydns.MetaText(a.cfg.Instance, a.cfg.Meta), TTL: r.TTL, Group: a.cfg.Name}.Encode())
	}
	return out
}

// record returns the record for the container state st: with PublishedPort, the port is
// the host port st publishes (an error while there is none).
func (a *Announcer) record(host string, st container.State) (skydns.Record, error) {
	r := a.Record(host)
	if a.cfg.PublishedPort != "" {
		if st.HostPort == 0 {
			return r, fmt.Errorf("container %s publishes no host port for %s", a.cfg.Container, a.cfg.PublishedPort)
		}
		r.Port = st.HostPort
	}
	return r, nil
}

// validPublishedPort reports whether p is PORT/tcp or PORT/udp with PORT in 1-65535.
func validPublishedPort(p string) bool {
	n, proto, ok := strings.Cut(p, "/")
	v, err := strconv.Atoi(n)
	return ok && (proto == "tcp" || proto == "udp") && err == nil && v >= 1 && v <= 65535 && strconv.Itoa(v) == n
}

// host6 finds a dual-stack instance's IPv6 address ("" for a single-stack one).
func (a *Announcer) host6() (string, error) {
	switch {
	case a.cfg.Host6 != "":
		return a.cfg.Host6, nil
	case a.cfg.AnnounceAs6 == "":
		return "", nil
	}
	return a.lookup(a.cfg.AnnounceAs6)
}

// lookup finds this host's address of kind (public, private, public6, private6) on the
// configured interface for it.
func (a *Announcer) lookup(kind string) (string, error) {
	iface := a.cfg.PrivateInterface
	if kind == AsPublic || kind == AsPublic6 {
		iface = a.cfg.PublicInterface
	}
	ip, err := hostaddr.Lookup(kind, iface)
	if err != nil {
		return "", err
	}
	return ip.String(), nil
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
	case a.cfg.AnnounceAs == AsContainer6:
		if st.IP6 == "" {
			return "", fmt.Errorf("container %s has no global IPv6 address (network %q): run it on a Docker network created with --ipv6, or use --announce-as container", a.cfg.Container, a.cfg.Network)
		}
		return st.IP6, nil
	default:
		return a.lookup(a.cfg.AnnounceAs)
	}
}
