// Package skydns builds and parses the etcd keys and JSON records that CoreDNS's etcd
// plugin serves: a name a.b.example.com lives under PREFIX/com/example/b/a, and every
// record below a name's key answers a query for that name.
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
	Host     string `json:"host"`
	Port     int    `json:"port,omitempty"`
	Priority int    `json:"priority,omitempty"`
	Weight   int    `json:"weight,omitempty"`
	TTL      uint32 `json:"ttl"`
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
	if r.Host == "" {
		return Record{}, fmt.Errorf("cannot decode SkyDNS record %q: no host", value)
	}
	return r, nil
}

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
// ("web", "host-1"). ok is false for keys of any other shape.
func SplitKey(prefix, domain, key string) (name, instance string, ok bool) {
	base, err := ServiceKey(prefix, domain, "x")
	if err != nil {
		return "", "", false
	}
	base = strings.TrimSuffix(base, "x")
	rest, found := strings.CutPrefix(key, base)
	if !found {
		return "", "", false
	}
	name, instance, found = strings.Cut(rest, "/")
	if !found || !dnsname.IsLabel(name) || !dnsname.IsLabel(instance) {
		return "", "", false
	}
	return name, instance, true
}
