package upstreams

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"text/template"

	"github.com/rundock/rundock/internal/skydns"
)

// DefaultUpstreamName is the template of an upstream's name: .Name is the upstream's key
// under services in the config (the service name when none are listed), .Service the
// service.
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

// Upstream is one nginx upstream block: a service's live instances, all of them or those
// the config's entry selects.
type Upstream struct {
	Name      string   // nginx upstream name, from the upstream name template
	Service   string   // service name, e.g. web
	PortName  string   // the named port the servers are from; empty: the main records
	Tags      []string // the tags every server's instance has, from the config
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
// per entry of the config (one per service with records when it lists none, see Config),
// one server per valid record. A valid record has an IP address the config allows (see
// Config; host names are refused: nginx resolves them when it loads, and one that does not
// resolve fails nginx -t for every upstream), a port, and a priority and a weight of 0 to
// 65535. Records that cannot be used are skipped and returned, sorted by key. Instance
// metadata only ever decides which instances a tagged upstream has: none of its text
// reaches the data.
func (c *Config) Build(prefix, domain string, kvs map[string][]byte) (Data, []Skipped, error) {
	nameTmpl, err := template.New("upstream name").Option("missingkey=error").Parse(c.upstreamName())
	if err != nil {
		return Data{}, nil, fmt.Errorf("cannot parse upstream name template %q: %w", c.upstreamName(), err)
	}
	var warnings []Skipped
	skip := func(key string, value []byte, format string, args ...any) {
		warnings = append(warnings, Skipped{Key: key, Value: string(value), Why: fmt.Sprintf(format, args...)})
	}
	records, meta := c.collect(prefix, domain, kvs, skip)
	labels := c.labels()
	listed := len(labels) > 0
	if !listed {
		for src := range records {
			labels = append(labels, src.service)
		}
	}
	d := Data{Prefix: prefix, Domain: domain, Down: Down}
	names := map[string]string{} // upstream name, lowercased as nginx compares them → label
	for _, label := range labels {
		e := c.ServiceMap[label]
		name := e.service(label)
		s := c.settings(label)
		servers := c.servers(label, e, s, records[source{name, e.PortName}], meta[name], skip)
		if !listed && len(servers) == 0 {
			continue // unlisted: only the services with a live instance
		}
		var nb bytes.Buffer
		if err := nameTmpl.Execute(&nb, struct{ Name, Service string }{label, name}); err != nil {
			return Data{}, nil, fmt.Errorf("cannot render upstream name %q for %s: %w", c.upstreamName(), label, err)
		}
		u := Upstream{Name: nb.String(), Service: name, PortName: e.PortName, Tags: e.Tags,
			Balance: s.Balance, Keepalive: s.Keepalive, Extra: s.Extra, Servers: servers}
		if !isWord(u.Name) {
			return Data{}, nil, fmt.Errorf("upstream name %q for service %s is not a single word: fix --upstream-name or upstream_name", u.Name, label)
		}
		lower := strings.ToLower(u.Name)
		if other, dup := names[lower]; dup {
			return Data{}, nil, fmt.Errorf("upstreams %s and %s both get the name %q: make --upstream-name or upstream_name tell them apart, e.g. docker_{{.Name}}", other, label, u.Name)
		}
		names[lower] = label
		d.Upstreams = append(d.Upstreams, u)
	}
	sort.Slice(d.Upstreams, func(i, j int) bool { return d.Upstreams[i].Name < d.Upstreams[j].Name })
	return d, sortSkipped(warnings), nil
}

// collect sorts the keys into the record sets the upstreams use, and reads the metadata
// of the services that have a tagged upstream (service → instance → tags). With no
// services listed, only main records count.
func (c *Config) collect(prefix, domain string, kvs map[string][]byte, skip func(string, []byte, string, ...any)) (map[source][]record, map[string]map[string][]string) {
	listed := len(c.ServiceMap) > 0
	wanted := map[source]bool{} // the record sets the entries use
	tagged := map[string]bool{} // services with a tagged upstream
	for l, e := range c.ServiceMap {
		wanted[source{e.service(l), e.PortName}] = true
		if len(e.Tags) > 0 {
			tagged[e.service(l)] = true
		}
	}
	records := map[source][]record{}
	meta := map[string]map[string][]string{}
	for key, value := range kvs {
		var src source
		var instance string
		var family string
		if name, inst, fam, ok := skydns.SplitFamilyKey(prefix, domain, key); ok {
			src, instance, family = source{name, ""}, inst, fam
		} else if !listed {
			continue // only main records count
		} else if name, port, inst, fam, ok := skydns.SplitPortFamilyKey(prefix, domain, key); ok {
			src, instance, family = source{name, port}, inst, fam
		} else if name, inst, ok := skydns.SplitTextKey(prefix, domain, key); ok && tagged[name] {
			tags, why := metaTags(inst, value)
			if why != "" {
				skip(key, value, "%s", why)
				continue
			}
			if meta[name] == nil {
				meta[name] = map[string][]string{}
			}
			meta[name][inst] = tags
			continue
		} else {
			continue // no record an upstream uses
		}
		if listed && !wanted[src] {
			continue
		}
		records[src] = append(records[src], record{key: key, instance: instance, family: family, value: value})
	}
	return records, meta
}

// servers returns the servers of the upstream label (entry e, settings s) from its
// record set: the instances with e's tags in meta, each record checked, sorted by
// address, one per address.
func (c *Config) servers(label string, e Entry, s Settings, recs []record, meta map[string][]string, skip func(string, []byte, string, ...any)) []Server {
	var servers []Server
	var prio []int
	family := s.Family
	if family == "" {
		family = skydns.FamilyIPv4
	}
	for _, r := range recs {
		if !hasTags(meta, r.instance, e.Tags) || r.family != "" && r.family != family {
			continue // one record per dual-stack instance: the family's
		}
		srv, p, why := c.server(r, label, s, e.PortName)
		if why != "" {
			skip(r.key, r.value, "%s", why)
			continue
		}
		servers = append(servers, srv)
		prio = append(prio, p)
	}
	minPrio := 0
	for i, p := range prio {
		if i == 0 || p < minPrio {
			minPrio = p
		}
	}
	backupOK := s.Balance == "" || s.Balance == "least_conn"
	for i := range servers {
		servers[i].MaxFails, servers[i].FailTimeout = s.maxFails(), s.FailTimeout
		servers[i].Backup = backupOK && prio[i] > minPrio
		servers[i].Params = servers[i].params()
	}
	sort.Slice(servers, func(i, j int) bool {
		a, b := servers[i], servers[j]
		if a.Addr != b.Addr {
			return a.Addr < b.Addr
		}
		return a.Instance < b.Instance
	})
	var out []Server
	seen := map[string]string{} // address → key of the record rendered for it
	for _, srv := range servers {
		if first, dup := seen[srv.Addr]; dup {
			skip(srv.key, []byte(srv.value), "address %s is announced by %s too", srv.Addr, first)
			continue
		}
		seen[srv.Addr] = srv.key
		out = append(out, srv)
	}
	return out
}

// source is a set of records of one service: its main records (port ""), or those of one
// named port.
type source struct{ service, port string }

// record is one key and value of a source.
type record struct {
	key, instance string
	family        string // a dual-stack instance's record: ipv4 or ipv6; "" for the only one
	value         []byte
}

// server checks one record for the upstream label with settings s: the server, its priority as
// CoreDNS ranks it, or why the record cannot be one.
func (c *Config) server(r record, label string, s Settings, portName string) (srv Server, prio int, why string) {
	rec, err := skydns.Decode(r.value)
	if err != nil {
		return Server{}, 0, err.Error()
	}
	port := rec.Port
	switch {
	case port == 0 && portName != "":
		return Server{}, 0, fmt.Sprintf("port 0 is not 1-65535 (a record of the named port %s carries the port: announce it)", portName)
	case port == 0:
		port = s.Port
	}
	if port <= 0 || port > 65535 {
		return Server{}, 0, fmt.Sprintf("port %d is not 1-65535 (announce a port, or set port for service %s in the config)", rec.Port, label)
	}
	addr, err := netip.ParseAddr(rec.Host)
	if err != nil {
		return Server{}, 0, fmt.Sprintf("host %q is not an IP address (announce an address such as 10.0.0.5 or fd00::5; host names and numeric forms like 2130706433 are refused)", rec.Host)
	}
	addr = addr.Unmap()
	if why := c.checkAddr(addr); why != "" {
		return Server{}, 0, why
	}
	if rec.Priority < 0 || rec.Priority > MaxPriority {
		return Server{}, 0, fmt.Sprintf("priority %d is not 0-%d", rec.Priority, MaxPriority)
	}
	if rec.Weight < 0 || rec.Weight > MaxWeight {
		return Server{}, 0, fmt.Sprintf("weight %d is not 0-%d", rec.Weight, MaxWeight)
	}
	prio = rec.Priority
	if prio == 0 {
		prio = 10 // CoreDNS's default, so 0 and 10 rank the same
	}
	return Server{Instance: r.instance, Host: addr.String(), Port: port,
		Addr: netip.AddrPortFrom(addr, uint16(port)).String(), Weight: rec.Weight, key: r.key, value: string(r.value)}, prio, ""
}

// metaTags reads an instance's metadata record: its tags, or why it cannot be used.
func metaTags(instance string, value []byte) (tags []string, why string) {
	rec, err := skydns.Decode(value)
	if err != nil {
		return nil, err.Error()
	}
	if rec.Text == "" {
		return nil, "metadata record has no text: the instance is in no tagged upstream"
	}
	named, m := skydns.ParseMeta(rec.Text)
	if named != "" && named != instance {
		return nil, fmt.Sprintf("metadata names the instance %q, its key %q: the instance is in no tagged upstream", named, instance)
	}
	return m.Tags, ""
}

// hasTags reports whether the instance's metadata lists every tag; an instance without
// metadata has none.
func hasTags(meta map[string][]string, instance string, tags []string) bool {
	if len(tags) == 0 {
		return true
	}
	have, ok := meta[instance]
	if !ok {
		return false
	}
	for _, t := range tags {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

// sortSkipped sorts skipped records by key and drops repeats: two upstreams of one
// service skip the same record for the same reason.
func sortSkipped(s []Skipped) []Skipped {
	sort.Slice(s, func(i, j int) bool {
		if s[i].Key != s[j].Key {
			return s[i].Key < s[j].Key
		}
		return s[i].Why < s[j].Why
	})
	return slices.Compact(s)
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
