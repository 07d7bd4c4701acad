package upstreams

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rundock/rundock/internal/dnsname"
)

// Config is the optional YAML file of `rundock upstreams --config`: which services get an
// upstream and the settings of each. Example:
//
//	upstream_name: "docker_{{.Name}}"
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
type Config struct {
	UpstreamName string              `yaml:"upstream_name"`
	Defaults     Settings            `yaml:"defaults"`
	ServiceMap   map[string]Settings `yaml:"services"`
}

// Settings are the per-upstream options. An unset field in a service's entry takes the
// value from defaults.
type Settings struct {
	Balance     string   `yaml:"balance"`      // least_conn, ip_hash, random, "hash $key consistent"...; empty: round robin
	Keepalive   int      `yaml:"keepalive"`    // idle keepalive connections kept per worker
	MaxFails    *int     `yaml:"max_fails"`    // server max_fails=
	FailTimeout string   `yaml:"fail_timeout"` // server fail_timeout=, an nginx time like 10s
	Port        int      `yaml:"port"`         // port for records that announce none
	Extra       []string `yaml:"extra"`        // more directives inside the block, without ';'
}

var (
	// ErrConfig is returned for a configuration file that cannot be used.
	ErrConfig = errors.New("bad upstreams config")

	nginxTime = regexp.MustCompile(`^[0-9]+(ms|s|m|h|d|w|M|y)?$`)
)

// LoadConfig reads and checks a configuration file; path "" gives the defaults.
func LoadConfig(path string) (*Config, error) {
	c := &Config{}
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read upstreams config %s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("cannot parse upstreams config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate checks every setting, naming the bad value.
func (c *Config) Validate() error {
	if err := c.Defaults.validate("defaults"); err != nil {
		return err
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
