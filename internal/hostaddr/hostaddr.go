// Package hostaddr finds the host's public and private IPv4 addresses from the kernel's
// links, addresses and routes (netlink), never by parsing ifconfig or ip output.
//
// The rule, also printed by `announcer --help` and `rundock addr`:
//   - an interface named explicitly gives its first global unicast IPv4 address;
//   - public: the first global unicast IPv4 address of the IPv4 default route's interface;
//   - private: the first private-range (RFC 1918) IPv4 address on an up, non-loopback
//     interface that is not a container bridge or veth (docker*, br-*, veth*, virbr*,
//     cni*, flannel*); when there is none, the public address.
package hostaddr

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
)

// Rule is the address rule in one paragraph, for --help texts.
const Rule = `Addresses: with an interface named, its first global IPv4 address.
public = the first global IPv4 address of the IPv4 default route's interface.
private = the first private-range (10/8, 172.16/12, 192.168/16) IPv4 address on an up,
non-loopback interface other than docker*, br-*, veth*, virbr*, cni*, flannel*; if there
is none, the public address.`

// Errors returned by the selection; callers can test them with errors.Is.
var (
	// ErrNoInterface: the named interface does not exist.
	ErrNoInterface = errors.New("no such interface")
	// ErrNoAddress: the interface exists but has no global unicast IPv4 address.
	ErrNoAddress = errors.New("no global IPv4 address")
	// ErrNoDefaultRoute: there is no IPv4 default route to find the public interface by.
	ErrNoDefaultRoute = errors.New("no IPv4 default route")
)

// skippedPrefixes are the names of container bridges and veths: their addresses are not
// reachable from other hosts, so they never count as the host's private address.
var skippedPrefixes = []string{"docker", "br-", "veth", "virbr", "cni", "flannel"}

// Link is one network interface as the selection sees it.
type Link struct {
	Index    int
	Name     string
	Up       bool
	Loopback bool
	Addrs    []net.IP // IPv4 and IPv6, in kernel order
}

// Host is a snapshot of the links, the IPv4 default route's interface index (0 when
// there is no default route) and the IPv6 default route's interface name ("" when there
// is none; see ipv6.go).
type Host struct {
	Links        []Link
	DefaultIndex int
	Default6     string
}

// Public returns the host's public IPv4 address: the named interface's when iface is
// set, otherwise the default-route interface's.
func Public(iface string) (net.IP, error) {
	h, err := Load()
	if err != nil {
		return nil, err
	}
	return h.Public(iface)
}

// Private returns the host's private IPv4 address: the named interface's when iface is
// set, otherwise see the package rule.
func Private(iface string) (net.IP, error) {
	h, err := Load()
	if err != nil {
		return nil, err
	}
	return h.Private(iface)
}

// Lookup returns the host's address of kind public, private (IPv4) or public6, private6
// (IPv6, see Rule6), from iface when it is set: the one selection behind the announcer's
// --announce-as and `rundock addr`.
func Lookup(kind, iface string) (net.IP, error) {
	h, err := Load()
	if err != nil {
		return nil, err
	}
	switch kind {
	case "public":
		return h.Public(iface)
	case "private":
		return h.Private(iface)
	case "public6":
		return h.Public6(iface)
	case "private6":
		return h.Private6(iface)
	}
	return nil, fmt.Errorf("cannot look up address kind %q: use public, private, public6 or private6", kind)
}

// Load reads the links, their addresses and the IPv4 default route through netlink, and
// the IPv6 default route from /proc/net/ipv6_route.
func Load() (Host, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return Host{}, fmt.Errorf("cannot list network interfaces: %w", err)
	}
	var h Host
	for _, l := range links {
		attrs := l.Attrs()
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return Host{}, fmt.Errorf("cannot list addresses of %s: %w", attrs.Name, err)
		}
		link := Link{
			Index:    attrs.Index,
			Name:     attrs.Name,
			Up:       attrs.Flags&net.FlagUp != 0 && attrs.OperState != netlink.OperDown,
			Loopback: attrs.Flags&net.FlagLoopback != 0,
		}
		for _, a := range addrs {
			if a.IPNet != nil {
				link.Addrs = append(link.Addrs, a.IP)
			}
		}
		h.Links = append(h.Links, link)
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return Host{}, fmt.Errorf("cannot list IPv4 routes: %w", err)
	}
	h.DefaultIndex = defaultIndex(routes)
	if h.Default6, err = loadDefault6(); err != nil {
		return Host{}, err
	}
	return h, nil
}

// defaultIndex returns the link index of the IPv4 default route with the lowest metric,
// or 0 when there is none.
func defaultIndex(routes []netlink.Route) int {
	best, bestPrio := 0, -1
	for _, r := range routes {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		if r.Table != 0 && r.Table != 254 { // main table only
			continue
		}
		idx := r.LinkIndex
		if idx == 0 && len(r.MultiPath) > 0 {
			idx = r.MultiPath[0].LinkIndex
		}
		if idx == 0 {
			continue
		}
		if bestPrio == -1 || r.Priority < bestPrio {
			best, bestPrio = idx, r.Priority
		}
	}
	return best
}

// family is what differs between the IPv4 and the IPv6 selection: the rule is the same.
type family struct {
	ip           string                  // "IPv4" or "IPv6", in messages
	first        func([]net.IP) net.IP   // first global unicast address of the family
	private      func([]net.IP) net.IP   // first private-range address of the family
	privateRange string                  // in messages
	errNoAddress error                   // ErrNoAddress or ErrNoAddress6
	errNoRoute   error                   // ErrNoDefaultRoute or ErrNoDefaultRoute6
	ipFlag       string                  // the ip(8) family flag, for the hint
	route        func(Host) (Link, bool) // the default route's link; false: none
	routeName    func(Host) string       // the default route's link as messages name it
}

var v4 = family{ip: "IPv4", first: firstGlobal, private: firstPrivate4, privateRange: "private-range",
	errNoAddress: ErrNoAddress, errNoRoute: ErrNoDefaultRoute, ipFlag: "-4",
	route: func(h Host) (Link, bool) {
		for _, l := range h.Links {
			if h.DefaultIndex != 0 && l.Index == h.DefaultIndex {
				return l, true
			}
		}
		return Link{}, false
	},
	routeName: func(h Host) string {
		if h.DefaultIndex == 0 {
			return ""
		}
		return fmt.Sprintf("index %d", h.DefaultIndex)
	}}

// Public selects the public address; see the package rule.
func (h Host) Public(iface string) (net.IP, error) { return h.public(v4, iface) }

// Private selects the private address; see the package rule.
func (h Host) Private(iface string) (net.IP, error) { return h.private(v4, iface) }

func (h Host) public(f family, iface string) (net.IP, error) {
	if iface != "" {
		return h.named(f, iface)
	}
	what := "the public address"
	if f.ip != v4.ip {
		what = "the public " + f.ip + " address"
	}
	name := f.routeName(h)
	if name == "" {
		return nil, fmt.Errorf("cannot find %s: %w (add one, or name the interface with --public-interface, or give --host)", what, f.errNoRoute)
	}
	l, ok := f.route(h)
	if !ok {
		return nil, fmt.Errorf("cannot find %s: default-route interface %s: %w", what, name, ErrNoInterface)
	}
	if ip := f.first(l.Addrs); ip != nil {
		return ip, nil
	}
	return nil, fmt.Errorf("cannot find %s: default-route interface %s: %w (name another with --public-interface, or give --host)", what, l.Name, f.errNoAddress)
}

func (h Host) private(f family, iface string) (net.IP, error) {
	if iface != "" {
		return h.named(f, iface)
	}
	for _, l := range h.Links {
		if !l.Up || l.Loopback || skipped(l.Name) {
			continue
		}
		if ip := f.private(l.Addrs); ip != nil {
			return ip, nil
		}
	}
	ip, err := h.public(f, "")
	if err != nil {
		what := "a private address"
		if f.ip != v4.ip {
			what = "a private " + f.ip + " address"
		}
		return nil, fmt.Errorf("cannot find %s (no %s address on a host interface, and no public fallback): %w", what, f.privateRange, err)
	}
	return ip, nil
}

func (h Host) named(f family, iface string) (net.IP, error) {
	for _, l := range h.Links {
		if l.Name == iface {
			if ip := f.first(l.Addrs); ip != nil {
				return ip, nil
			}
			return nil, fmt.Errorf("cannot use interface %q: %w (pick an interface with an %s address, see `ip %s addr`)", iface, f.errNoAddress, f.ip, f.ipFlag)
		}
	}
	return nil, fmt.Errorf("cannot use interface %q: %w (see `ip link` for the names)", iface, ErrNoInterface)
}

func skipped(name string) bool {
	for _, p := range skippedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func firstGlobal(addrs []net.IP) net.IP {
	for _, ip := range addrs {
		if isGlobal4(ip) {
			return ip.To4()
		}
	}
	return nil
}

func firstPrivate4(addrs []net.IP) net.IP {
	for _, ip := range addrs {
		if isGlobal4(ip) && ip.IsPrivate() {
			return ip.To4()
		}
	}
	return nil
}

func isGlobal4(ip net.IP) bool {
	return ip.To4() != nil && ip.IsGlobalUnicast()
}
