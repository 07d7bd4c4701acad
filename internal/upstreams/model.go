package upstreams

import (
	"bytes"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"text/template"

	"github.com/rundock/rundock/internal/skydns"
)

// DefaultUpstreamName is the template of an upstream's name; .Name is the service name.
const DefaultUpstreamName = "docker_{{.Name}}"

// Down is the server line of an upstream whose service has no live instance: nginx accepts
// it (an empty upstream {} is a configuration error) and answers 502 at once with "no live
// upstreams", without connecting anywhere.
const Down = "127.0.0.1:1"

// Data is what a template renders.
type Data struct {
	Prefix    string     // etcd prefix, e.g. /skydns
	Domain    string     // e.g. s.prod.example.com
	Down      string     // the address a service without instances points at, see Down
	Upstreams []Upstream // sorted by name
}

// Upstream is one nginx upstream block: a service and its live instances.
type Upstream struct {
	Name      string   // nginx upstream name, from the upstream name template
	Service   string   // service name, e.g. web
	Balance   string   // load-balancing directive, e.g. least_conn; empty: round robin
	Keepalive int      // idle keepalive connections per worker; 0: none
	Extra     []string // more directives, without the ';'
	Servers   []Server // sorted by address
}

// Server is one instance of a service, from one SkyDNS record.
type Server struct {
	Instance    string // last label of the record's key
	Host        string
	Port        int
	Addr        string // host:port, IPv6 in brackets
	Weight      int    // from the record; 0: nginx's default 1
	MaxFails    string // from the config; empty: nginx's default
	FailTimeout string // from the config; empty: nginx's default
	Backup      bool   // the record's priority is above the service's lowest
	Params      string // " weight=2 max_fails=1 ... backup", ready to append to the address

	key, value string // the record's, for Skipped
}

// Skipped is a record Build leaves out: its key, its value and why. A bad record costs
// only itself: every other record is still rendered.
type Skipped struct {
	Key, Value, Why string
}

// String is the one-line form of s.
func (s Skipped) String() string { return fmt.Sprintf("skipping %s: %s", s.Key, s.Why) }

// MaxPriority and MaxWeight bound a record's priority and weight: SRV fields of 16 bits,
// the range of the spec's priority and weight options. A record outside them is skipped.
const (
	MaxPriority = 65535
	MaxWeight   = 65535
)

// Build turns the etcd keys and values below the domain into template data: one upstream
// per selected service (see Config), one server per valid record. A valid record has an
// IP address the config allows (see Config; host names are refused: nginx resolves them
// when it loads, and one that does not resolve fails nginx -t for every upstream), a port,
// and a priority and a weight of 0 to 65535. Records that cannot be used are skipped and
// returned, sorted by key.
func (c *Config) Build(prefix, domain string, kvs map[string][]byte) (Data, []Skipped, error) {
	nameTmpl, err := template.New("upstream name").Option("missingkey=error").Parse(c.upstreamName())
	if err != nil {
		return Data{}, nil, fmt.Errorf("cannot parse upstream name template %q: %w", c.upstreamName(), err)
	}
	var warnings []Skipped
	skip := func(key string, value []byte, format string, args ...any) {
		warnings = append(warnings, Skipped{Key: key, Value: string(value), Why: fmt.Sprintf(format, args...)})
	}
	byService := map[string][]Server{}
	prio := map[string][]int{}
	for key, value := range kvs {
		name, instance, ok := skydns.SplitKey(prefix, domain, key)
		if !ok {
			continue // not NAME/INSTANCE below the domain: not an instance record
		}
		if !c.selected(name) {
			continue
		}
		rec, err := skydns.Decode(value)
		if err != nil {
			skip(key, value, "%v", err)
			continue
		}
		s := c.settings(name)
		port := rec.Port
		if port == 0 {
			port = s.Port
		}
		if port <= 0 || port > 65535 {
			skip(key, value, "port %d is not 1-65535 (announce a port, or set port for service %s in the config)", rec.Port, name)
			continue
		}
		addr, err := netip.ParseAddr(rec.Host)
		if err != nil {
			skip(key, value, "host %q is not an IP address (announce an address such as 10.0.0.5 or fd00::5; host names and numeric forms like 2130706433 are refused)", rec.Host)
			continue
		}
		addr = addr.Unmap()
		if why := c.checkAddr(addr); why != "" {
			skip(key, value, "%s", why)
			continue
		}
		if rec.Priority < 0 || rec.Priority > MaxPriority {
			skip(key, value, "priority %d is not 0-%d", rec.Priority, MaxPriority)
			continue
		}
		if rec.Weight < 0 || rec.Weight > MaxWeight {
			skip(key, value, "weight %d is not 0-%d", rec.Weight, MaxWeight)
			continue
		}
		p := rec.Priority
		if p == 0 {
			p = 10 // CoreDNS's default, so 0 and 10 rank the same
		}
		host := addr.String()
		byService[name] = append(byService[name], Server{Instance: instance, Host: host, Port: port,
			Addr: netip.AddrPortFrom(addr, uint16(port)).String(), Weight: rec.Weight, key: key, value: string(value)})
		prio[name] = append(prio[name], p)
	}
	names := c.Services()
	if len(names) == 0 {
		for n := range byService {
			names = append(names, n)
		}
	}
	d := Data{Prefix: prefix, Domain: domain, Down: Down}
	for _, name := range names {
		s := c.settings(name)
		var nb bytes.Buffer
		if err := nameTmpl.Execute(&nb, struct{ Name string }{name}); err != nil {
			return Data{}, nil, fmt.Errorf("cannot render upstream name %q for %s: %w", c.upstreamName(), name, err)
		}
		u := Upstream{Name: nb.String(), Service: name, Balance: s.Balance, Keepalive: s.Keepalive, Extra: s.Extra}
		if !isWord(u.Name) {
			return Data{}, nil, fmt.Errorf("upstream name %q for service %s is not a single word: fix --upstream-name or upstream_name", u.Name, name)
		}
		minPrio := 0
		for i, p := range prio[name] {
			if i == 0 || p < minPrio {
				minPrio = p
			}
		}
		backupOK := s.Balance == "" || s.Balance == "least_conn"
		seen := map[string]string{} // address → key of the record rendered for it
		for i, srv := range byService[name] {
			srv.MaxFails, srv.FailTimeout = s.maxFails(), s.FailTimeout
			srv.Backup = backupOK && prio[name][i] > minPrio
			srv.Params = srv.params()
			byService[name][i] = srv
		}
		sort.Slice(byService[name], func(i, j int) bool {
			a, b := byService[name][i], byService[name][j]
			if a.Addr != b.Addr {
				return a.Addr < b.Addr
			}
			return a.Instance < b.Instance
		})
		for _, srv := range byService[name] {
			if first, dup := seen[srv.Addr]; dup {
				skip(srv.key, []byte(srv.value), "address %s is announced by %s too", srv.Addr, first)
				continue
			}
			seen[srv.Addr] = srv.key
			u.Servers = append(u.Servers, srv)
		}
		d.Upstreams = append(d.Upstreams, u)
	}
	sort.Slice(d.Upstreams, func(i, j int) bool { return d.Upstreams[i].Name < d.Upstreams[j].Name })
	sort.Slice(warnings, func(i, j int) bool { return warnings[i].Key < warnings[j].Key })
	return d, warnings, nil
}

func (s Server) params() string {
	var b strings.Builder
	if s.Weight > 0 {
		fmt.Fprintf(&b, " weight=%d", s.Weight)
	}
	if s.MaxFails != "" {
		fmt.Fprintf(&b, " max_fails=%s", s.MaxFails)
	}
	if s.FailTimeout != "" {
		fmt.Fprintf(&b, " fail_timeout=%s", s.FailTimeout)
	}
	if s.Backup {
		b.WriteString(" backup")
	}
	return b.String()
}

// isWord reports whether s is safe as one nginx token: no space, quote, ';', '{', '}', '$'.
func isWord(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n;{}\"'$#\\")
}
