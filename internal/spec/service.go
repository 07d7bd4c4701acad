// Package spec defines a rundock service description, its defaults, and its validation.
// The option names are the same everywhere: Ansible arguments, YAML keys and CLI flags.
// Each option is declared once, in options.go; reading values, defaults, checks, the CLI
// flags' help and the module documentation (ModuleDoc) come from that declaration.
//
// The package does no I/O. It imports no other rundock package but two pure leaves,
// internal/defaults and internal/dnsname, so its defaults and DNS-label rule are the ones
// the announcer and rundock upstreams use.
package spec

import "net"

// State is what rundock makes of a service on a host.
type State string

// The states a service can be put in.
const (
	// StatePresent installs the service tree under sv_dir, without linking it.
	StatePresent State = "present"
	// StateEnabled installs the tree if needed and links it into service_dir.
	StateEnabled State = "enabled"
	// StateDisabled unlinks the service; its container is stopped, its tree kept.
	StateDisabled State = "disabled"
	// StateAbsent stops the service and removes its tree.
	StateAbsent State = "absent"
)

// Announce modes: which address the announcer publishes.
const (
	AnnouncePublic    = "public"
	AnnouncePrivate   = "private"
	AnnounceContainer = "container"
	// AnnounceContainer6 announces the container's global IPv6 address (a Docker network
	// with IPv6), answered as AAAA.
	AnnounceContainer6 = "container6"
	// AnnouncePublic6 and AnnouncePrivate6 are public and private for the host's IPv6
	// address (the announcer's public6 and private6); the container publishes on it.
	AnnouncePublic6  = "public6"
	AnnouncePrivate6 = "private6"
)

// Pull policies, as docker run --pull takes them.
const (
	PullAlways  = "always"
	PullMissing = "missing"
	PullNever   = "never"
)

// Update strategies: how a change that needs a new container replaces the running one.
const (
	UpdateStopFirst  = "stop-first"
	UpdateStartFirst = "start-first"
	// NextInstanceSuffix makes the instance label of the new container's record during an
	// update start-first (node-1-next), announced beside the old one's.
	NextInstanceSuffix = "-next"
)

// Service is one validated service description. Zero values mean "not set"; FromMap
// fills what a user left out. Each field with a JSON name is an option declared in
// options.go.
type Service struct {
	State State  `json:"state"`
	Name  string `json:"name"`
	Image string `json:"image"`
	// Args is free-form docker run arguments, split like sh splits them; only
	// $PUBLIC_IP, $PRIVATE_IP and $ANNOUNCE_IP are expanded, when the container starts.
	Args string `json:"args,omitempty"`
	// ArgWords is Args split into words; each word is a list of parts, literal or
	// placeholder, so the renderer can quote literals and expand only placeholders.
	ArgWords []Word `json:"-"`

	Announce   int    `json:"announce,omitempty"`    // host port published in DNS; 0: not announced
	AnnounceAs string `json:"announce_as,omitempty"` // public|private|container
	Port       int    `json:"port,omitempty"`        // container port, defaults to Announce

	Env         map[string]string `json:"env,omitempty"`
	EnvFile     []string          `json:"env_file,omitempty"`
	Ports       []string          `json:"ports,omitempty"`
	Volumes     []string          `json:"volumes,omitempty"`
	VolumesFrom []string          `json:"volumes_from,omitempty"`
	Network     string            `json:"network,omitempty"`
	User        string            `json:"user,omitempty"`
	Command     []string          `json:"command,omitempty"`
	Hostname    string            `json:"hostname,omitempty"` // default HOST-NAME
	Pull        string            `json:"pull,omitempty"`     // always|missing|never
	StopTimeout int               `json:"stop_timeout,omitempty"`

	// Deploy: drain before a planned stop, wait for serving after a start.
	Drain       int  `json:"drain"`                  // seconds; defaults to DNSTTL with Announce
	Wait        bool `json:"wait"`                   // wait for serving, roll back when it does not
	WaitTimeout int  `json:"wait_timeout,omitempty"` // seconds
	// Update is stop-first or start-first (a new container beside the old one, on
	// UpdatePort when the announced port is a host port).
	Update     string `json:"update,omitempty"`
	UpdatePort int    `json:"update_port,omitempty"`
	// Maintenance withdraws the record without stopping the container; applied only when
	// MaintenanceSet (the option was given).
	Maintenance       bool   `json:"maintenance"`
	MaintenanceSet    bool   `json:"-"`
	MaintenanceReason string `json:"maintenance_reason,omitempty"`

	HealthCmd         string `json:"health_cmd,omitempty"`
	HealthInterval    string `json:"health_interval,omitempty"`     // Go duration, e.g. 10s
	HealthTimeout     string `json:"health_timeout,omitempty"`      // Go duration
	HealthStartPeriod string `json:"health_start_period,omitempty"` // Go duration
	HealthRetries     int    `json:"health_retries,omitempty"`

	// DependsOn lists the services on this host the container waits for, NAME[:CONDITION];
	// Deps is it parsed (depends_on's parse step), conditions filled.
	DependsOn []string     `json:"depends_on,omitempty"`
	Deps      []Dependency `json:"-"`

	Log      bool   `json:"log"`
	LogDir   string `json:"log_dir,omitempty"`
	LogSize  int    `json:"log_size,omitempty"`
	LogCount int    `json:"log_count,omitempty"`

	// Announcer options, passed through to the rendered announcer service.
	AnnounceName  string   `json:"announce_name,omitempty"` // DNS service name, default Name
	Instance      string   `json:"instance,omitempty"`      // default: short host name
	Domain        string   `json:"domain,omitempty"`
	EtcdEndpoints []string `json:"etcd_endpoints,omitempty"`
	TTL           int      `json:"ttl,omitempty"`     // lease seconds
	DNSTTL        int      `json:"dns_ttl,omitempty"` // record ttl field
	Priority      int      `json:"priority,omitempty"`
	Weight        int      `json:"weight,omitempty"`
	// NamedPorts are more host ports announced by name (metrics: "9100") at
	// _NAME._tcp.ANNOUNCE_NAME.DOMAIN; Tags go, with the image, into the instance's TXT
	// record.
	NamedPorts map[string]string `json:"named_ports,omitempty"`
	Tags       []string          `json:"tags,omitempty"`
	// Host is the address to publish the container on and announce, instead of the one
	// discovered for announce_as (public or private): a NAT or multi-homed host, or a
	// loopback address on a single machine.
	Host string `json:"host,omitempty"`
	// Host6 or AnnounceAs6 (public6 or private6) make the instance dual-stack: also
	// published on and announced with an IPv6 address (Dual).
	Host6            string `json:"host6,omitempty"`
	AnnounceAs6      string `json:"announce_as6,omitempty"`
	PublicInterface  string `json:"public_interface,omitempty"`
	PrivateInterface string `json:"private_interface,omitempty"`
	EtcdCACert       string `json:"etcd_cacert,omitempty"`
	EtcdCert         string `json:"etcd_cert,omitempty"`
	EtcdKey          string `json:"etcd_key,omitempty"`
	EtcdUser         string `json:"etcd_user,omitempty"`
	EtcdPasswordFile string `json:"etcd_password_file,omitempty"`

	SvDir      string `json:"sv_dir,omitempty"`
	ServiceDir string `json:"service_dir,omitempty"`
	BinDir     string `json:"bin_dir,omitempty"` // where rundock and announcer are installed
}

// StartFirst reports whether a change that needs a new container starts it beside the
// old one.
func (s Service) StartFirst() bool { return s.Update == UpdateStartFirst }

// HostPublished reports whether the announced port is a host port the container publishes
// (announce_as public or private), as opposed to the container's own address and port.
func (s Service) HostPublished() bool { return s.Announce != 0 && !s.AnnouncesContainer() }

// AnnouncesContainer reports whether the container's own address is announced (container
// or container6), which nothing publishes on the host.
func (s Service) AnnouncesContainer() bool {
	return s.AnnounceAs == AnnounceContainer || s.AnnounceAs == AnnounceContainer6
}

// PublishIPv6 reports whether the host address the container publishes on is an IPv6
// one: an IPv6 host, or no host and announce_as public6 or private6.
func (s Service) PublishIPv6() bool {
	if s.Host != "" {
		ip := net.ParseIP(s.Host)
		return ip != nil && ip.To4() == nil
	}
	return s.AnnounceAs == AnnouncePublic6 || s.AnnounceAs == AnnouncePrivate6
}

// Dual reports whether the instance is dual-stack: an IPv6 address published and
// announced beside the IPv4 one.
func (s Service) Dual() bool { return s.Announce != 0 && (s.Host6 != "" || s.AnnounceAs6 != "") }

// Word is one word of Args: its parts concatenated.
type Word []Part

// Part is a literal string, or (Var != "") one of the run-time placeholders
// PUBLIC_IP, PRIVATE_IP, ANNOUNCE_IP.
type Part struct {
	Lit string
	Var string
}
