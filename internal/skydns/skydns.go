// Package skydns builds and parses the etcd keys and JSON records that CoreDNS's etcd
// plugin serves: a name a.b.example.com lives under PREFIX/com/example/b/a, and every
// record below a name's key answers a query for that name.
//
// One service NAME.DOMAIN (S = ServiceKey) holds, per instance I:
//
//	S/I               {"host":ADDR,"port":P,"group":"NAME"}        A/AAAA and SRV of NAME.DOMAIN
//	S/_tcp/_PORT/I    {"host":ADDR,"port":Q,"group":"_PORT._tcp.NAME"}  SRV of _PORT._tcp.NAME.DOMAIN
//	S/_txt/I          {"text":"instance=I image=REF tags=a,b","group":"NAME"}  TXT of NAME.DOMAIN
//
// A dual-stack instance (an IPv4 and an IPv6 address) has two records in place of each
// of its address records, one per family: S/I/ipv4 and S/I/ipv6 (and
// S/_tcp/_PORT/I/ipv4, .../ipv6). INSTANCE.NAME.DOMAIN then answers A and AAAA, and
// NAME.DOMAIN's SRV lists the instance once per family (targets ipv4.I... and ipv6.I...).
// They cannot share the key S/I: CoreDNS reads a key's children in place of the key
// itself, so S/I beside S/I/ipv6 would answer no A.
//
// CoreDNS answers a name with its whole subtree, so the named-port records would also
// answer NAME.DOMAIN (a second SRV per instance, a duplicate A). The group field keeps
// them apart: CoreDNS returns only the records whose group is that of the shallowest
// grouped record of the answer, and the instance records (group NAME) are always the
// shallowest. That is why every record rundock writes carries its group, the instance
// records too: an instance record without one would let the named ports back in. A TXT
// record has no host, so CoreDNS serves it only to TXT queries.
package skydns

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/rundock/rundock/internal/defaults"
	"github.com/rundock/rundock/internal/dnsname"
)

// DefaultPrefix is the etcd path CoreDNS's etcd plugin reads by default (defaults.Prefix). It
// stays a single segment: multi-segment paths give wrong SRV targets.
const DefaultPrefix = defaults.Prefix

// ErrBadLabel is returned for a name, domain or instance that is not made of DNS labels.
var ErrBadLabel = errors.New("not a DNS label")

// Record is the JSON value of one SkyDNS key. TTL is always written: without it CoreDNS
// briefly answers a leased key with TTL 300 just as it expires.
type Record struct {
	Host     string `json:"host,omitempty"` // empty only in a TXT record
	Port     int    `json:"port,omitempty"`
	Priority int    `json:"priority,omitempty"`
	Weight   int    `json:"weight,omitempty"`
	TTL      uint32 `json:"ttl"`
	// Text is served as TXT, only when Host is empty (CoreDNS's rule).
	Text string `json:"text,omitempty"`
	// Group keeps the named-port records out of the service's answer; see the package doc.
	Group string `json:"group,omitempty"`
}

// Encode returns the record as the JSON CoreDNS reads.
func (r Record) Encode() string {
	b, err := json.Marshal(r)
	if err != nil { // cannot happen: the struct holds only strings and numbers
		panic(err)
	}
	return string(b)
}

// Decode parses a record's JSON value.
func Decode(value []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(value, &r); err != nil {
		return Record{}, fmt.Errorf("cannot decode SkyDNS record %q: %w", value, err)
	}
	if r.Host == "" && r.Text == "" {
		return Record{}, fmt.Errorf("cannot decode SkyDNS record %q: no host", value)
	}
	return r, nil
}

// Labels below a service key that are not instances: named ports (RFC 2782's _tcp) and
// the instances' metadata.
const (
	tcpLabel  = "_tcp"
	textLabel = "_txt"
)

// Families of a dual-stack instance's records: the last label of their keys.
const (
	FamilyIPv4 = "ipv4"
	FamilyIPv6 = "ipv6"
)

// FamilyKey returns the key of one family's record of a dual-stack instance whose
// single-stack key is key.
func FamilyKey(key, family string) string { return key + "/" + family }

// PortNameRule says what a port name may be, for error messages.
const PortNameRule = "use 1 to 15 lowercase letters, digits and '-' with at least one letter, not starting or ending with '-' (RFC 6335), e.g. metrics"

// IsPortName reports whether s is an RFC 6335 service name, lowercase: a DNS label of
// at most 15 characters with at least one letter.
func IsPortName(s string) bool {
	return len(s) <= 15 && dnsname.IsLabel(s) && strings.Trim(s, "0123456789-") != ""
}

// PortGroup returns the group of the records of a service's named port.
func PortGroup(name, port string) string {
	return "_" + strings.ToLower(port) + "._tcp." + strings.ToLower(name)
}

// PortServiceKey returns the key below which a named port's records live: the SRV name
// _PORT._tcp.NAME.DOMAIN.
func PortServiceKey(prefix, domain, name, port string) (string, error) {
	svc, err := ServiceKey(prefix, domain, name)
	if err != nil {
		return "", err
	}
	port = strings.ToLower(port)
	if !IsPortName(port) {
		return "", fmt.Errorf("%w: port name %q (%s)", ErrBadLabel, port, PortNameRule)
	}
	return svc + "/" + tcpLabel + "/_" + port, nil
}

// PortKey returns the key of one instance's record for a named port; CoreDNS names its
// SRV target INSTANCE._PORT._tcp.NAME.DOMAIN, which answers A or AAAA.
func PortKey(prefix, domain, name, port, instance string) (string, error) {
	base, err := PortServiceKey(prefix, domain, name, port)
	if err != nil {
		return "", err
	}
	return withInstance(base, instance)
}

// TextKey returns the key of one instance's metadata (TXT) record.
func TextKey(prefix, domain, name, instance string) (string, error) {
	svc, err := ServiceKey(prefix, domain, name)
	if err != nil {
		return "", err
	}
	return withInstance(svc+"/"+textLabel, instance)
}

func withInstance(base, instance string) (string, error) {
	instance = strings.ToLower(instance)
	if !dnsname.IsLabel(instance) {
		return "", fmt.Errorf("%w: instance %q (%s)", ErrBadLabel, instance, dnsname.Rule)
	}
	return base + "/" + instance, nil
}

// Meta is what an instance's TXT record says besides its name: the image it runs and
// the operator's tags.
type Meta struct {
	Image string
	Tags  []string
}

// MetaText returns the TXT text of an instance: "instance=I image=REF tags=a,b", the
// parts without a value left out. It names the instance because CoreDNS answers a
// service's TXT query with every distinct text once.
func MetaText(instance string, m Meta) string {
	t := "instance=" + strings.ToLower(instance)
	if m.Image != "" {
		t += " image=" + m.Image
	}
	if len(m.Tags) > 0 {
		t += " tags=" + strings.Join(m.Tags, ",")
	}
	return t
}

// ParseMeta reads a MetaText; fields it does not know are ignored.
func ParseMeta(text string) (instance string, m Meta) {
	for _, f := range strings.Fields(text) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "instance":
			instance = v
		case "image":
			m.Image = v
		case "tags":
			if v != "" {
				m.Tags = strings.Split(v, ",")
			}
		}
	}
	return instance, m
}

// IsTag reports whether s may be a tag: a DNS label (so it needs no quoting in TXT,
// nginx or a shell).
func IsTag(s string) bool { return dnsname.IsLabel(s) }

// ServiceKey returns the key of a service's subtree: prefix + the reversed labels of
// name.domain, lowercased. A query for name.domain answers every record below it.
func ServiceKey(prefix, domain, name string) (string, error) {
	fqdn := strings.TrimSuffix(strings.ToLower(name+"."+domain), ".")
	labels := strings.Split(fqdn, ".")
	for _, l := range labels {
		if !dnsname.IsLabel(l) {
			return "", fmt.Errorf("%w: %q in %q (%s)", ErrBadLabel, l, fqdn, dnsname.Rule)
		}
	}
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	return strings.TrimSuffix(prefix, "/") + "/" + strings.Join(labels, "/"), nil
}

// InstanceKey returns the key of one instance's record: ServiceKey + "/" + instance.
// CoreDNS names the SRV target of that record INSTANCE.NAME.DOMAIN.
func InstanceKey(prefix, domain, name, instance string) (string, error) {
	svc, err := ServiceKey(prefix, domain, name)
	if err != nil {
		return "", err
	}
	instance = strings.ToLower(instance)
	if !dnsname.IsLabel(instance) {
		return "", fmt.Errorf("%w: instance %q (%s)", ErrBadLabel, instance, dnsname.Rule)
	}
	return svc + "/" + instance, nil
}

// SplitKey returns the service name and instance of a key directly below
// ServiceKey(prefix, domain, name), e.g. /skydns/com/example/prod/s/web/host-1 gives
// ("web", "host-1"). ok is false for keys of any other shape (the named-port and TXT
// records among them, and a dual-stack instance's: see SplitFamilyKey).
func SplitKey(prefix, domain, key string) (name, instance string, ok bool) {
	name, instance, ok = splitService(prefix, domain, key)
	if !ok || !dnsname.IsLabel(instance) {
		return "", "", false
	}
	return name, instance, true
}

// SplitFamilyKey is SplitKey for an instance record of either shape: S/I gives family
// "", S/I/ipv4 and S/I/ipv6 give their family.
func SplitFamilyKey(prefix, domain, key string) (name, instance, family string, ok bool) {
	name, rest, ok := splitService(prefix, domain, key)
	if !ok {
		return "", "", "", false
	}
	instance, family, _ = strings.Cut(rest, "/")
	if !dnsname.IsLabel(instance) || (family != "" && family != FamilyIPv4 && family != FamilyIPv6) {
		return "", "", "", false
	}
	return name, instance, family, true
}

// SplitPortKey is SplitKey for named-port records: .../s/web/_tcp/_metrics/host-1 gives
// ("web", "metrics", "host-1"). It does not take a dual-stack instance's (see
// SplitPortFamilyKey).
func SplitPortKey(prefix, domain, key string) (name, port, instance string, ok bool) {
	name, port, instance, family, ok := SplitPortFamilyKey(prefix, domain, key)
	if !ok || family != "" {
		return "", "", "", false
	}
	return name, port, instance, true
}

// SplitPortFamilyKey is SplitPortKey for either shape: .../_metrics/host-1 gives family
// "", .../_metrics/host-1/ipv6 gives "ipv6".
func SplitPortFamilyKey(prefix, domain, key string) (name, port, instance, family string, ok bool) {
	name, rest, ok := splitService(prefix, domain, key)
	if !ok {
		return "", "", "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) == 4 && (parts[3] == FamilyIPv4 || parts[3] == FamilyIPv6) {
		family, parts = parts[3], parts[:3]
	}
	if len(parts) != 3 || parts[0] != tcpLabel || !strings.HasPrefix(parts[1], "_") ||
		!IsPortName(parts[1][1:]) || !dnsname.IsLabel(parts[2]) {
		return "", "", "", "", false
	}
	return name, parts[1][1:], parts[2], family, true
}

// SplitTextKey is SplitKey for TXT records: .../s/web/_txt/host-1 gives ("web", "host-1").
func SplitTextKey(prefix, domain, key string) (name, instance string, ok bool) {
	name, rest, ok := splitService(prefix, domain, key)
	if !ok {
		return "", "", false
	}
	label, instance, found := strings.Cut(rest, "/")
	if !found || label != textLabel || !dnsname.IsLabel(instance) {
		return "", "", false
	}
	return name, instance, true
}

// splitService cuts a key below the domain into the service name and the rest.
func splitService(prefix, domain, key string) (name, rest string, ok bool) {
	base, err := ServiceKey(prefix, domain, "x")
	if err != nil {
		return "", "", false
	}
	tail, found := strings.CutPrefix(key, strings.TrimSuffix(base, "x"))
	if !found {
		return "", "", false
	}
	name, rest, found = strings.Cut(tail, "/")
	if !found || !dnsname.IsLabel(name) {
		return "", "", false
	}
	return name, rest, true
}
