package spec

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rundock/rundock/internal/dnsname"
	"github.com/rundock/rundock/internal/skydns"
)

// The checks of single options, referenced from options.go. Each gets the option and the
// service with its defaults filled; it runs only when the value was readable and holds no
// control character. The checks of docker run values are in docker.go.

var (
	userRe     = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.-]*(:[a-zA-Z0-9_][a-zA-Z0-9_.-]*)?$`)
	ifaceRe    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.@:-]{0,14}$`)
	envKeyRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	etcdUserRe = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.@-]*$`)
)

func checkState(t target) error {
	if slices.Contains(t.opt.choices, t.str()) {
		return nil
	}
	return optErr(ErrBadValue, "state", "%q is not a state (use present, enabled, disabled or absent)", t.str())
}

// oneOf accepts the option's declared choices.
func oneOf(t target) error {
	if v := t.str(); !slices.Contains(t.opt.choices, v) {
		return optErr(ErrBadValue, t.opt.Name, "%q is not one of %s", v, strings.Join(t.opt.choices, ", "))
	}
	return nil
}

func checkName(t target) error {
	if t.s.Name == "" {
		return optErr(ErrMissing, "name", "missing: set name to the service's name, e.g. name=web")
	}
	return dnsLabel(t)
}

// dnsLabel accepts a lowercase DNS label, and suggests the lowercase form of one that is
// only wrong in case.
func dnsLabel(t target) error {
	v := t.str()
	if dnsname.IsLabel(v) {
		return nil
	}
	hint := ""
	if l := dnsname.ASCIILower(v); l != v && dnsname.IsLabel(l) {
		hint = fmt.Sprintf(" (try %q)", l)
	}
	return optErr(ErrBadValue, t.opt.Name, "%q is not a DNS label: %s%s", v, dnsname.Rule, hint)
}

func checkInstance(t target) error {
	if t.s.Instance == "" {
		if t.s.Announce == 0 {
			return nil
		}
		if t.host != "" {
			return optErr(ErrMissing, "instance", "missing, and the host name %q is not a DNS label (%s), so it cannot be the default: set instance (this host's label in DNS, e.g. instance=%s)", t.host, dnsname.Rule, labelHint(t.host))
		}
		return optErr(ErrMissing, "instance", "missing and the host name is unknown: set instance (this host's label in DNS, e.g. instance=back-1)")
	}
	return dnsLabel(t)
}

// labelHint turns a host name into a DNS label for an example: every character a label
// cannot hold becomes '-'.
func labelHint(h string) string {
	b := []byte(h)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	l := strings.Trim(string(b), "-")
	if len(l) > 63 {
		l = strings.Trim(l[:63], "-")
	}
	if l == "" {
		return "back-1"
	}
	return l
}

func checkDomain(t target) error {
	if err := dnsname.CheckDomain(t.s.Domain); err != nil {
		return optErr(ErrBadValue, "domain", "%v", err)
	}
	return nil
}

// checkHostname accepts dot-separated host name labels, upper case allowed: DNS labels
// once lowercased.
func checkHostname(t target) error {
	h := t.s.Hostname
	if len(h) > 64 {
		return optErr(ErrBadValue, "hostname", "%q is longer than 64 characters: set a shorter hostname", h)
	}
	for l := range strings.SplitSeq(h, ".") {
		if !dnsname.IsLabel(dnsname.ASCIILower(l)) {
			return optErr(ErrBadValue, "hostname", "%q is not a host name (dot-separated labels of letters, digits and '-', not starting or ending with '-')", h)
		}
	}
	return nil
}

func checkPort(t target) error {
	if t.set["port"] && t.s.Announce == 0 && !t.bad["announce"] {
		return optErr(ErrBadValue, "port", "%d is set without announce: set announce (the port to publish in DNS) too, or leave port out", t.s.Port)
	}
	return nil
}

func checkNamedPorts(t target) error {
	for _, k := range slices.Sorted(maps.Keys(t.s.NamedPorts)) {
		v := t.s.NamedPorts[k]
		n, err := strconv.Atoi(v)
		switch {
		case !skydns.IsPortName(k):
			return optErr(ErrBadValue, "named_ports", "%q is not a port name: %s", k, skydns.PortNameRule)
		case err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != v:
			return optErr(ErrBadValue, "named_ports", "%s=%q is not a port number: use 1-65535, e.g. %s: 9100", k, v, k)
		case t.s.Announce == 0 && !t.bad["announce"]:
			return optErr(ErrBadValue, "named_ports", "%s is set without announce: named ports are announced beside the main port, so set announce too", k)
		case t.s.StartFirst():
			return optErr(ErrBadValue, "named_ports", "%s=%s with update start-first: two containers run at once during an update and cannot both publish host port %s; use update stop-first or leave named_ports out", k, v, v)
		}
	}
	return nil
}

func checkTags(t target) error {
	for _, tag := range t.s.Tags {
		if !skydns.IsTag(tag) {
			return optErr(ErrBadValue, "tags", "%q is not a DNS label: %s", tag, dnsname.Rule)
		}
	}
	if len(t.s.Tags) > 0 && t.s.Announce == 0 && !t.bad["announce"] {
		return optErr(ErrBadValue, "tags", "%q is set without announce: tags go into the instance's DNS record, so set announce too", strings.Join(t.s.Tags, ","))
	}
	return nil
}

func checkEnv(t target) error {
	for _, k := range slices.Sorted(maps.Keys(t.s.Env)) {
		if !envKeyRe.MatchString(k) {
			return optErr(ErrBadValue, "env", "%q is not a variable name (use letters, digits and '_', not starting with a digit)", k)
		}
	}
	return nil
}

// absPaths accepts absolute, clean paths (or nothing) in a string or list option.
func absPaths(t target) error {
	for _, p := range t.strs() {
		if p == "" {
			continue
		}
		if !path.IsAbs(p) {
			return optErr(ErrBadValue, t.opt.Name, "%q is not an absolute path: start it with '/'", p)
		}
		if c := path.Clean(p); c != p {
			return optErr(ErrBadValue, t.opt.Name, "%q is not a clean path: write %q", p, c)
		}
	}
	return nil
}

func checkUser(t target) error {
	if t.s.User != "" && !userRe.MatchString(t.s.User) {
		return optErr(ErrBadValue, "user", "%q is not USER[:GROUP] (names or numeric ids: letters, digits, '_', '.' and '-')", t.s.User)
	}
	return nil
}

// duration accepts a positive Go duration, or nothing.
func duration(t target) error {
	v := t.str()
	if v == "" {
		return nil
	}
	if d, err := time.ParseDuration(v); err != nil || d <= 0 {
		return optErr(ErrBadValue, t.opt.Name, "%q is not a positive duration (use e.g. 30s, 1m30s, 500ms)", v)
	}
	return nil
}

func checkEndpoints(t target) error {
	for _, e := range t.s.EtcdEndpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
			strings.ContainsAny(e, ", '\"\\") {
			return optErr(ErrBadValue, "etcd_endpoints", "%q is not an http(s) URL of an etcd member (e.g. http://10.0.0.1:2379)", e)
		}
	}
	return nil
}

func checkHost(t target) error {
	if t.s.Host == "" {
		return nil
	}
	if ip := net.ParseIP(t.s.Host); ip == nil {
		return optErr(ErrBadValue, "host", "%q is not an IP address (e.g. 10.0.0.5, or fd00::5 without brackets or zone)", t.s.Host)
	}
	if t.s.AnnouncesContainer() {
		return optErr(ErrBadValue, "host", "%q cannot be used with announce_as container, which announces the container's own address: drop host or announce as public or private", t.s.Host)
	}
	return nil
}

// checkDual checks announce_as6 and host6: the IPv6 half of a dual-stack instance, whose
// other half is an IPv4 address.
func checkDual(t target) error {
	v := t.str()
	if v == "" {
		return nil
	}
	name := t.opt.Name
	if name == "announce_as6" && !slices.Contains(t.opt.choices, v) {
		return optErr(ErrBadValue, name, "%q is not one of %s", v, strings.Join(t.opt.choices, ", "))
	}
	if ip, err := netip.ParseAddr(v); name == "host6" && (err != nil || !ip.Is6() || ip.Is4In6() || ip.Zone() != "") {
		return optErr(ErrBadValue, name, "%q is not an IPv6 address: write it without brackets or zone, e.g. fd00::5", v)
	}
	ip := net.ParseIP(t.s.Host)
	switch {
	case t.s.Announce == 0 && !t.bad["announce"]:
		return optErr(ErrBadValue, name, "%q is set without announce: set announce too", v)
	case t.s.Host != "" && (ip == nil || ip.To4() == nil):
		return optErr(ErrBadValue, name, "%q with host %q: a dual-stack instance's host is its IPv4 address; put the IPv6 one in host6", v, t.s.Host)
	case t.s.Host == "" && t.s.AnnounceAs != AnnouncePublic && t.s.AnnounceAs != AnnouncePrivate:
		return optErr(ErrBadValue, name, "%q with announce_as %s: a dual-stack instance announces an IPv4 address (announce_as public or private, or host) beside the IPv6 one", v, t.s.AnnounceAs)
	case t.s.StartFirst():
		return optErr(ErrBadValue, name, "%q with update start-first: a start-first update of a dual-stack instance is not supported; use update stop-first", v)
	}
	return nil
}

// iface accepts a network interface name, or nothing.
func iface(t target) error {
	if v := t.str(); v != "" && !ifaceRe.MatchString(v) {
		return optErr(ErrBadValue, t.opt.Name, "%q is not a network interface name (1 to 15 letters, digits, '_', '.', '@', ':' or '-', e.g. eth0)", v)
	}
	return nil
}

func checkEtcdUser(t target) error {
	if t.s.EtcdUser != "" && !etcdUserRe.MatchString(t.s.EtcdUser) {
		return optErr(ErrBadValue, "etcd_user", "%q is not a user name (use letters, digits, '_', '.', '@' and '-')", t.s.EtcdUser)
	}
	return nil
}

// checkUpdatePort: update_port is the second host port of update start-first, so only
// with it and a host-published announce port, and not that port itself.
func checkUpdatePort(t target) error {
	s := t.s
	switch {
	case s.UpdatePort == 0:
		return nil
	case !s.StartFirst():
		return optErr(ErrBadValue, "update_port", "%d is set without update start-first: set update=start-first, or drop update_port", s.UpdatePort)
	case s.Announce != 0 && !s.HostPublished():
		return optErr(ErrBadValue, "update_port", "%d is set with announce_as container, which publishes no host port (the record has the container's own address and port): drop update_port", s.UpdatePort)
	case s.UpdatePort == s.Announce:
		return optErr(ErrBadValue, "update_port", "%d is announce itself: the new container needs another host port than the old one, e.g. update_port=%d", s.UpdatePort, min(s.Announce+1, 65535))
	}
	return nil
}
