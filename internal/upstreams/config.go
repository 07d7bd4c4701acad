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
)

// Config is the optional YAML file of `rundock upstreams --config`: which services get an
// upstream, the settings of each, and the networks a record's address may be in. Example:
//
//	upstream_name: "docker_{{.Name}}"
//	allow_networks: [10.0.0.0/8, "fd00::/8"]
//	defaults:
//	  keepalive: 16
//	  max_fails: 1
//	  fail_timeout: 5s
//	services:
//	  web: {}
//	  grafana:
//	    balance: least_conn
//	    port: 3000
//
// With services listed, exactly those get an upstream, with or without live instances, so
// the nginx configuration that names them stays valid. With none listed, every service
// that has at least one record gets one.
//
// A record's host must be an IP address inside allow_networks. Without allow_networks
// every address goes but loopback (127.0.0.0/8, ::1) and link-local (169.254.0.0/16, where
// cloud metadata services answer, and fe80::/10): a record must not point nginx at the
// proxy host itself or at its metadata service unless the config says so. Unspecified,
// multicast and broadcast addresses are never servers, whatever the list says.
type Config struct {
	UpstreamName  string
	Defaults      Settings
	ServiceMap    map[string]Settings
	AllowNetworks []netip.Prefix
}

// Settings are the per-upstream options. An unset field in a service's entry takes the
// value from defaults.
type Settings struct {
	Balance     string   // least_conn, ip_hash, random, "hash $key consistent"...; empty: round robin
	Keepalive   int      // idle keepalive connections kept per worker
	MaxFails    *int     // server max_fails=
	FailTimeout string   // server fail_timeout=, an nginx time like 10s
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
			c.ServiceMap = map[string]Settings{}
			err = eachPair(v, k, func(name string, _, sv *yaml.Node) error {
				s, err := yamlSettings(sv, "services."+name)
				c.ServiceMap[name] = s
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

func yamlSettings(n *yaml.Node, where string) (Settings, error) {
	var s Settings
	err := eachPair(n, where, func(k string, kn, v *yaml.Node) error {
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
		case "port":
			s.Port, err = yamlInt(v, where+"."+k)
		case "extra":
			s.Extra, err = yamlStrings(v, where+"."+k)
		default:
			err = fmt.Errorf("%w: line %d: %s has the unknown key %q (use balance, keepalive, max_fails, fail_timeout, port or extra)", ErrConfig, kn.Line, where, k)
		}
		return err
	})
	return s, err
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
	for name, s := range c.ServiceMap {
		if !dnsname.IsLabel(name) {
			return fmt.Errorf("%w: service %q is not a DNS label (%s)", ErrConfig, name, dnsname.Rule)
		}
		if err := s.validate("services." + name); err != nil {
			return err
		}
	}
	return nil
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

// Services returns the listed services, sorted; empty means every service found.
func (c *Config) Services() []string {
	var names []string
	for n := range c.ServiceMap {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (c *Config) selected(name string) bool {
	if len(c.ServiceMap) == 0 {
		return true
	}
	_, ok := c.ServiceMap[name]
	return ok
}

func (c *Config) upstreamName() string {
	if c.UpstreamName == "" {
		return DefaultUpstreamName
	}
	return c.UpstreamName
}

// settings merges a service's entry over the defaults.
func (c *Config) settings(name string) Settings {
	s := c.Defaults
	o, ok := c.ServiceMap[name]
	if !ok {
		return s
	}
	if o.Balance != "" {
		s.Balance = o.Balance
	}
	if o.Keepalive != 0 {
		s.Keepalive = o.Keepalive
	}
	if o.MaxFails != nil {
		s.MaxFails = o.MaxFails
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
