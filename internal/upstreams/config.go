package upstreams

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rundock/rundock/internal/dnsname"
	"github.com/rundock/rundock/internal/skydns"
)

// Config is the optional YAML file of `rundock upstreams --config`: which upstreams, made
// of which records, the settings of each, and the networks a record's address may be in.
// Example:
//
//	upstream_name: "docker_{{.Name}}"
//	allow_networks: [10.0.0.0/8, "fd00::/8"]
//	defaults:
//	  keepalive: 16
//	  max_fails: 1
//	  fail_timeout: 5s
//	services:
//	  web: {}
//	  web_canary: {service: web, tags: [canary]}
//	  web_metrics: {service: web, port_name: metrics}
//	  grafana:
//	    balance: least_conn
//	    port: 3000
//
// Each key under services is an upstream (its .Name in upstream_name); service names the
// announced service it takes its instances from, the key itself when left out. Its servers
// are the instances' main records (S/I), or with port_name those of that named port
// (S/_tcp/_PORT/I); with tags, only the instances whose metadata (S/_txt/I) lists every
// tag. With services listed, exactly those upstreams are rendered, with or without live
// instances, so the nginx configuration that names them stays valid. With none listed,
// every service with at least one usable main record gets one upstream of its main records.
//
// A record's host must be an IP address inside allow_networks. Without allow_networks
// every address goes but loopback (127.0.0.0/8, ::1) and link-local (169.254.0.0/16, where
// cloud metadata services answer, and fe80::/10): a record must not point nginx at the
// proxy host itself or at its metadata service unless the config says so. Unspecified,
// multicast and broadcast addresses are never servers, whatever the list says.
type Config struct {
	UpstreamName  string
	Defaults      Settings
	ServiceMap    map[string]Entry // keyed by the upstream's label (the services key)
	AllowNetworks []netip.Prefix
}

// Entry is one upstream of the services map: which records it is made of, and its
// settings over the defaults. The record selection is per entry only: with no services
// listed, every upstream is a service's main records, untagged.
type Entry struct {
	Service  string   // the announced service; the entry's key when empty
	PortName string   // a named port: servers from S/_tcp/_PORT/I, not S/I
	Tags     []string // only instances whose S/_txt/I metadata lists every one
	Settings
}

// Settings are the per-upstream options. An unset field in a service's entry takes the
// value from defaults.
type Settings struct {
	Balance     string   // least_conn, ip_hash, random, "hash $key consistent"...; empty: round robin
	Keepalive   int      // idle keepalive connections kept per worker
	MaxFails    *int     // server max_fails=
	FailTimeout string   // server fail_timeout=, an nginx time like 10s
	Family      string   // ipv4 (default) or ipv6: the record of a dual-stack instance that is its server
	Port        int      // port for records that announce none
	Extra       []string // more directives inside the block, without ';'
}

var (
	// ErrConfig is returned for a configuration file that cannot be used.
	ErrConfig = errors.New("bad upstreams config")

	nginxTime = regexp.MustCompile(`^[0-9]+(ms|s|m|h|d|w|M|y)?$`)
)

// LoadConfig reads and checks a configuration file; path "" gives the defaults.
func LoadConfig(path string) (*Config, error) {
	if path == "" {
		return &Config{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read upstreams config %s: %w", path, err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig reads and checks the YAML of a configuration file. It walks the YAML nodes
// itself rather than let yaml.v3 decode: yaml.v3 checks every mapping for duplicate keys
// pair by pair, which takes minutes for a file of 100k keys. Here duplicates are found
// with a map, in one pass. A number given where text goes (fail_timeout: 10, extra items)
// keeps the text it was written as; integers are read as decimal text, so keepalive: 010
// is 10, not octal 8.
func ParseConfig(b []byte) (*Config, error) {
	c := &Config{}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: cannot parse: %v", ErrConfig, err)
	}
	if len(doc.Content) == 0 {
		return c, nil
	}
	root := deref(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return c, nil
	}
	err := eachPair(root, "the config", func(k string, kn, v *yaml.Node) error {
		var err error
		switch k {
		case "upstream_name":
			c.UpstreamName, err = yamlString(v, k)
		case "defaults":
			c.Defaults, err = yamlSettings(v, k)
		case "services":
			c.ServiceMap = map[string]Entry{}
			err = eachPair(v, k, func(name string, _, sv *yaml.Node) error {
				e, err := yamlEntry(sv, "services."+name)
				c.ServiceMap[name] = e
				return err
			})
		case "allow_networks":
			c.AllowNetworks, err = yamlPrefixes(v, k)
		default:
			err = fmt.Errorf("%w: line %d: unknown key %q (use upstream_name, allow_networks, defaults or services)", ErrConfig, kn.Line, k)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// maxAliases bounds how many aliases one file may follow.
const maxAliases = 1000

// deref follows an alias to the node it names; the walkers below only read scalars,
// lists and maps of scalars, so an alias cannot make them do more than one step's work.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < maxAliases; i++ {
		n = n.Alias
	}
	return n
}

// eachPair calls f for each key of the mapping n, in order, and fails on a key given twice.
func eachPair(n *yaml.Node, where string, f func(key string, kn, v *yaml.Node) error) error {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%w: line %d: %s must be a map", ErrConfig, n.Line, where)
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn := deref(n.Content[i])
		if kn.Kind != yaml.ScalarNode {
			return fmt.Errorf("%w: line %d: a key of %s is not text", ErrConfig, kn.Line, where)
		}
		if prev, dup := seen[kn.Value]; dup {
			return fmt.Errorf("%w: line %d: %s has the key %q twice (first at line %d): keep one", ErrConfig, kn.Line, where, kn.Value, prev)
		}
		seen[kn.Value] = kn.Line
		if err := f(kn.Value, kn, n.Content[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// yamlString is the text of a scalar as written: a number stays the digits it was
// written with.
func yamlString(n *yaml.Node, where string) (string, error) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("%w: line %d: %s must be text", ErrConfig, n.Line, where)
	}
	if n.Tag == "!!null" {
		return "", nil
	}
	return n.Value, nil
}

func yamlInt(n *yaml.Node, where string) (int, error) {
	s, err := yamlString(n, where)
	if err != nil || s == "" {
		return 0, err
	}
	i, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%w: line %d: %s %q is not a decimal integer", ErrConfig, n.Line, where, s)
	}
	return i, nil
}

func yamlStrings(n *yaml.Node, where string) ([]string, error) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%w: line %d: %s must be a list", ErrConfig, n.Line, where)
	}
	out := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		s, err := yamlString(item, where+" item")
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// settingsKeys and entryKeys list the keys of defaults and of a services entry, for
// error messages.
const (
	settingsKeys = "balance, keepalive, max_fails, fail_timeout, port, family or extra"
	entryKeys    = "service, port_name, tags, " + settingsKeys
)

func yamlSettings(n *yaml.Node, where string) (Settings, error) {
	var s Settings
	err := eachPair(n, where, func(k string, kn, v *yaml.Node) error {
		switch k {
		case "service", "port_name", "tags":
			return fmt.Errorf("%w: line %d: %s has the key %q, which picks the records of one upstream: set it in an entry under services", ErrConfig, kn.Line, where, k)
		}
		return s.set(k, kn, v, where, settingsKeys)
	})
	return s, err
}

func yamlEntry(n *yaml.Node, where string) (Entry, error) {
	var e Entry
	err := eachPair(n, where, func(k string, kn, v *yaml.Node) error {
		var err error
		switch k {
		case "service":
			e.Service, err = yamlString(v, where+"."+k)
		case "port_name":
			e.PortName, err = yamlString(v, where+"."+k)
		case "tags":
			e.Tags, err = yamlStrings(v, where+"."+k)
		default:
			err = e.Settings.set(k, kn, v, where, entryKeys)
		}
		return err
	})
	return e, err
}

// set reads one settings key of the mapping at where; known lists the keys allowed there.
func (s *Settings) set(k string, kn, v *yaml.Node, where, known string) error {
	var err error
	switch k {
	case "balance":
		s.Balance, err = yamlString(v, where+"."+k)
	case "keepalive":
		s.Keepalive, err = yamlInt(v, where+"."+k)
	case "max_fails":
		var i int
		if i, err = yamlInt(v, where+"."+k); err == nil && deref(v).Tag != "!!null" {
			s.MaxFails = &i
		}
	case "fail_timeout":
		s.FailTimeout, err = yamlString(v, where+"."+k)
	case "family":
		s.Family, err = yamlString(v, where+"."+k)
	case "port":
		s.Port, err = yamlInt(v, where+"."+k)
	case "extra":
		s.Extra, err = yamlStrings(v, where+"."+k)
	default:
		err = fmt.Errorf("%w: line %d: %s has the unknown key %q (use %s)", ErrConfig, kn.Line, where, k, known)
	}
	return err
}

// yamlPrefixes reads allow_networks: networks in CIDR notation, parsed strictly (no
// numeric forms such as 2130706433) and written without host bits.
func yamlPrefixes(n *yaml.Node, where string) ([]netip.Prefix, error) {
	list, err := yamlStrings(n, where)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%w: allow_networks %q: write a network in CIDR notation, e.g. 10.0.0.0/8 or 127.0.0.0/8", ErrConfig, s)
		}
		if m := p.Masked(); m != p {
			return nil, fmt.Errorf("%w: allow_networks %q has host bits set: write %q", ErrConfig, s, m.String())
		}
		out = append(out, p)
	}
	return out, nil
}

// Validate checks every setting, naming the bad value.
func (c *Config) Validate() error {
	if err := c.Defaults.validate("defaults"); err != nil {
		return err
	}
	for _, p := range c.AllowNetworks {
		if !p.IsValid() || p.Masked() != p {
			return fmt.Errorf("%w: allow_networks %q: write a network without host bits, e.g. 10.0.0.0/8", ErrConfig, p.String())
		}
	}
	for _, label := range c.labels() {
		if err := c.ServiceMap[label].validate(label); err != nil {
			return err
		}
	}
	return nil
}

// UpstreamLabelRule says what a key under services may be, for error messages.
const UpstreamLabelRule = "use 1 to 63 lowercase letters, digits, '-' and '_', starting and ending with a letter or digit, e.g. web_canary"

// isUpstreamLabel reports whether s may be a key under services: a DNS label that may also
// hold '_', so that upstream_name renders one nginx word that proxy_pass http://NAME reads
// as a host, and that nginx, which compares upstream names without case, cannot confuse
// with another.
func isUpstreamLabel(s string) bool {
	return dnsname.IsLabel(strings.ReplaceAll(s, "_", "-"))
}

func (e Entry) validate(label string) error {
	where := "services." + label
	switch {
	case e.Service == "" && !dnsname.IsLabel(label):
		if isUpstreamLabel(label) {
			return fmt.Errorf("%w: service %q is not a DNS label (%s): an upstream named otherwise says which service it takes, e.g. %s: {service: web}", ErrConfig, label, dnsname.Rule, label)
		}
		return fmt.Errorf("%w: service %q is not a DNS label (%s)", ErrConfig, label, dnsname.Rule)
	case !isUpstreamLabel(label):
		return fmt.Errorf("%w: upstream %q (a key under services) is not a name (%s)", ErrConfig, label, UpstreamLabelRule)
	case e.Service != "" && !dnsname.IsLabel(e.Service):
		return fmt.Errorf("%w: %s.service %q is not a DNS label (%s): name the announced service, e.g. web", ErrConfig, where, e.Service, dnsname.Rule)
	case e.PortName != "" && !skydns.IsPortName(e.PortName):
		return fmt.Errorf("%w: %s.port_name %q is not a port name (%s)", ErrConfig, where, e.PortName, skydns.PortNameRule)
	case e.PortName != "" && e.Port != 0:
		return fmt.Errorf("%w: %s has port %d and port_name %q: port is for main records that announce none, a named port's records carry their own: drop port", ErrConfig, where, e.Port, e.PortName)
	}
	for _, tag := range e.Tags {
		if !skydns.IsTag(tag) {
			return fmt.Errorf("%w: %s.tags %q is not a tag (%s)", ErrConfig, where, tag, dnsname.Rule)
		}
	}
	return e.Settings.validate(where)
}

// service is the announced service an entry takes its instances from.
func (e Entry) service(label string) string {
	if e.Service != "" {
		return e.Service
	}
	return label
}

func (s Settings) validate(where string) error {
	if s.Balance != "" && (!safeDirective(s.Balance) || !validBalance(s.Balance)) {
		return fmt.Errorf("%w: %s.balance %q: use least_conn, ip_hash, random [two [least_conn]] or hash KEY [consistent]", ErrConfig, where, s.Balance)
	}
	if s.Keepalive < 0 {
		return fmt.Errorf("%w: %s.keepalive %d: use 0 (off) or more", ErrConfig, where, s.Keepalive)
	}
	if s.MaxFails != nil && *s.MaxFails < 0 {
		return fmt.Errorf("%w: %s.max_fails %d: use 0 or more", ErrConfig, where, *s.MaxFails)
	}
	if s.Family != "" && s.Family != skydns.FamilyIPv4 && s.Family != skydns.FamilyIPv6 {
		return fmt.Errorf("%w: %s.family %q: use ipv4 or ipv6 (which address of a dual-stack instance nginx connects to)", ErrConfig, where, s.Family)
	}
	if s.FailTimeout != "" && !nginxTime.MatchString(s.FailTimeout) {
		return fmt.Errorf("%w: %s.fail_timeout %q: use an nginx time such as 10s", ErrConfig, where, s.FailTimeout)
	}
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("%w: %s.port %d: use 1-65535", ErrConfig, where, s.Port)
	}
	for _, e := range s.Extra {
		if !safeDirective(e) {
			return fmt.Errorf("%w: %s.extra %q: one directive without ';', braces or newlines, e.g. \"keepalive_timeout 60s\"", ErrConfig, where, e)
		}
	}
	return nil
}

func validBalance(b string) bool {
	f := strings.Fields(b)
	switch f[0] {
	case "least_conn", "ip_hash":
		return len(f) == 1
	case "random":
		return len(f) == 1 || f[1] == "two" && (len(f) == 2 || len(f) == 3 && f[2] == "least_conn")
	case "hash":
		return len(f) == 2 || len(f) == 3 && f[2] == "consistent"
	}
	return false
}

func safeDirective(s string) bool {
	return strings.TrimSpace(s) != "" && !strings.ContainsAny(s, ";{}\r\n#")
}

// checkAddr says why a record's address cannot be a server, or "" when it can (see Config).
func (c *Config) checkAddr(a netip.Addr) string {
	switch {
	case a.Zone() != "":
		return fmt.Sprintf("host %q has an IPv6 zone, which means nothing to another host: announce a global address", a.String())
	case a.IsUnspecified():
		return fmt.Sprintf("host %s is the unspecified address, which nginx would connect to on the proxy host itself", a)
	case a.IsMulticast():
		return fmt.Sprintf("host %s is a multicast address", a)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Sprintf("host %s is the broadcast address", a)
	}
	if len(c.AllowNetworks) > 0 {
		for _, p := range c.AllowNetworks {
			if p.Contains(a) {
				return ""
			}
		}
		nets := make([]string, len(c.AllowNetworks))
		for i, p := range c.AllowNetworks {
			nets[i] = p.String()
		}
		return fmt.Sprintf("host %s is not in allow_networks (%s): announce an address inside them, or add its network to allow_networks in the config", a, strings.Join(nets, ", "))
	}
	switch {
	case a.IsLoopback():
		return fmt.Sprintf("host %s is a loopback address, refused unless allow_networks in the config lists it (e.g. 127.0.0.0/8)", a)
	case a.IsLinkLocalUnicast():
		return fmt.Sprintf("host %s is a link-local address (cloud metadata services answer there), refused unless allow_networks in the config lists it", a)
	}
	return ""
}

// labels returns the keys under services, sorted; empty means every service found.
func (c *Config) labels() []string {
	labels := make([]string, 0, len(c.ServiceMap))
	for l := range c.ServiceMap {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	return labels
}

func (c *Config) upstreamName() string {
	if c.UpstreamName == "" {
		return DefaultUpstreamName
	}
	return c.UpstreamName
}

// settings merges an upstream's entry over the defaults.
func (c *Config) settings(label string) Settings {
	s := c.Defaults
	e, ok := c.ServiceMap[label]
	if !ok {
		return s
	}
	o := e.Settings
	if o.Balance != "" {
		s.Balance = o.Balance
	}
	if o.Keepalive != 0 {
		s.Keepalive = o.Keepalive
	}
	if o.MaxFails != nil {
		s.MaxFails = o.MaxFails
	}
	if o.Family != "" {
		s.Family = o.Family
	}
	if o.FailTimeout != "" {
		s.FailTimeout = o.FailTimeout
	}
	if o.Port != 0 {
		s.Port = o.Port
	}
	if o.Extra != nil {
		s.Extra = o.Extra
	}
	return s
}

func (s Settings) maxFails() string {
	if s.MaxFails == nil {
		return ""
	}
	return strconv.Itoa(*s.MaxFails)
}
