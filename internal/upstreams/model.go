package upstreams

import (
	"bytes"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/rundock/rundock/internal/dnsname"
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
}

// Build turns the etcd keys and values below the domain into template data: one upstream
// per selected service (see Config), one server per valid record. Records that cannot be
// used are skipped and described in warnings.
func (c *Config) Build(prefix, domain string, kvs map[string][]byte) (Data, []string, error) {
	nameTmpl, err := template.New("upstream name").Option("missingkey=error").Parse(c.upstreamName())
	if err != nil {
		return Data{}, nil, fmt.Errorf("cannot parse upstream name template %q: %w", c.upstreamName(), err)
	}
	var warnings []string
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
			warnings = append(warnings, fmt.Sprintf("skipping %s: %v", key, err))
			continue
		}
		s := c.settings(name)
		port := rec.Port
		if port == 0 {
			port = s.Port
		}
		if port <= 0 || port > 65535 {
			warnings = append(warnings, fmt.Sprintf("skipping %s: port %d is not 1-65535 (announce a port, or set port for service %s in the config)", key, rec.Port, name))
			continue
		}
		if !validHost(rec.Host) {
			warnings = append(warnings, fmt.Sprintf("skipping %s: host %q is neither an IP address nor a host name", key, rec.Host))
			continue
		}
		p := rec.Priority
		if p == 0 {
			p = 10 // CoreDNS's default, so 0 and 10 rank the same
		}
		byService[name] = append(byService[name], Server{Instance: instance, Host: rec.Host, Port: port,
			Addr: net.JoinHostPort(rec.Host, strconv.Itoa(port)), Weight: rec.Weight})
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
		seen := map[string]bool{}
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
			if seen[srv.Addr] {
				warnings = append(warnings, fmt.Sprintf("skipping instance %s of %s: address %s is announced twice", srv.Instance, name, srv.Addr))
				continue
			}
			seen[srv.Addr] = true
			u.Servers = append(u.Servers, srv)
		}
		d.Upstreams = append(d.Upstreams, u)
	}
	sort.Slice(d.Upstreams, func(i, j int) bool { return d.Upstreams[i].Name < d.Upstreams[j].Name })
	sort.Strings(warnings)
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

// validHost accepts an IP address or a host name; anything else could inject nginx syntax.
func validHost(h string) bool {
	return net.ParseIP(h) != nil || dnsname.IsHostName(h)
}

// isWord reports whether s is safe as one nginx token: no space, quote, ';', '{', '}', '$'.
func isWord(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n;{}\"'$#\\")
}
