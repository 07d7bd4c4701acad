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
	Addrs    []net.IP // in kernel order
}

// Host is a snapshot of the links and the IPv4 default route's interface index
// (0 when there is no default route).
type Host struct {
	Links        []Link
	DefaultIndex int
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

// Load reads the links, their IPv4 addresses and the IPv4 default route through netlink.
func Load() (Host, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return Host{}, fmt.Errorf("cannot list network interfaces: %w", err)
	}
	var h Host
	for _, l := range links {
		attrs := l.Attrs()
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
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

// Public selects the public address; see the package rule.
func (h Host) Public(iface string) (net.IP, error) {
	if iface != "" {
		return h.named(iface)
	}
	if h.DefaultIndex == 0 {
		return nil, fmt.Errorf("cannot find the public address: %w (add one, or name the interface with --public-interface, or give --host)", ErrNoDefaultRoute)
	}
	for _, l := range h.Links {
		if l.Index == h.DefaultIndex {
			if ip := firstGlobal(l.Addrs); ip != nil {
				return ip, nil
			}
			return nil, fmt.Errorf("cannot find the public address: default-route interface %s: %w (name another with --public-interface, or give --host)", l.Name, ErrNoAddress)
		}
	}
	return nil, fmt.Errorf("cannot find the public address: default-route interface index %d: %w", h.DefaultIndex, ErrNoInterface)
}

// Private selects the private address; see the package rule.
func (h Host) Private(iface string) (net.IP, error) {
	if iface != "" {
		return h.named(iface)
	}
	for _, l := range h.Links {
		if !l.Up || l.Loopback || skipped(l.Name) {
			continue
		}
		for _, ip := range l.Addrs {
			if isGlobal4(ip) && ip.IsPrivate() {
				return ip.To4(), nil
			}
		}
	}
	ip, err := h.Public("")
	if err != nil {
		return nil, fmt.Errorf("cannot find a private address (no private-range address on a host interface, and no public fallback): %w", err)
	}
	return ip, nil
}

func (h Host) named(iface string) (net.IP, error) {
	for _, l := range h.Links {
		if l.Name == iface {
			if ip := firstGlobal(l.Addrs); ip != nil {
				return ip, nil
			}
			return nil, fmt.Errorf("cannot use interface %q: %w (pick an interface with an IPv4 address, see `ip -4 addr`)", iface, ErrNoAddress)
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

func isGlobal4(ip net.IP) bool {
	return ip.To4() != nil && ip.IsGlobalUnicast()
}
