package hostaddr

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Rule6 is the IPv6 address rule (announce-as public6 and private6), for --help texts.
const Rule6 = `public6 = the first global IPv6 address of the IPv6 default route's interface
(/proc/net/ipv6_route), or of the interface named.
private6 = the first unique local (fd00::/8) IPv6 address on an up, non-loopback interface
other than the container ones above, or of the interface named; if there is none, public6.`

// IPv6RouteFile is where Load reads the IPv6 default route from.
const IPv6RouteFile = "/proc/net/ipv6_route"

// Errors of the IPv6 selection; callers can test them with errors.Is.
var (
	// ErrNoAddress6: the interface exists but has no global unicast IPv6 address.
	ErrNoAddress6 = errors.New("no global IPv6 address")
	// ErrNoDefaultRoute6: there is no IPv6 default route to find the public interface by.
	ErrNoDefaultRoute6 = errors.New("no IPv6 default route")
)

// ula is the locally assigned half of the unique local range, the IPv6 private range.
var ula = netip.MustParsePrefix("fd00::/8")

// Route flags of /proc/net/ipv6_route (include/uapi/linux/route.h, ipv6_route.h).
const (
	rtfUp     = 0x0001
	rtfReject = 0x0200
)

// ParseIPv6Route returns the interface of the IPv6 default route with the lowest metric
// in r, the format of /proc/net/ipv6_route, or "" when there is none. Routes that are not
// up and reject routes (the kernel's unreachable ::/0 on lo) do not count.
func ParseIPv6Route(r io.Reader) (string, error) {
	best, bestMetric := "", uint64(0)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 10 {
			return "", fmt.Errorf("cannot parse %s line %d: %d fields, want 10", IPv6RouteFile, n, len(f))
		}
		metric, err1 := strconv.ParseUint(f[5], 16, 32)
		flags, err2 := strconv.ParseUint(f[8], 16, 32)
		if err := errors.Join(err1, err2); err != nil {
			return "", fmt.Errorf("cannot parse %s line %d: %w", IPv6RouteFile, n, err)
		}
		if f[0] != strings.Repeat("0", 32) || f[1] != "00" || flags&rtfUp == 0 || flags&rtfReject != 0 {
			continue
		}
		if best == "" || metric < bestMetric {
			best, bestMetric = f[9], metric
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("cannot read %s: %w", IPv6RouteFile, err)
	}
	return best, nil
}

// loadDefault6 reads the IPv6 default route's interface; a host without IPv6 (no file)
// has none.
func loadDefault6() (string, error) {
	f, err := os.Open(IPv6RouteFile)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cannot read the IPv6 routes: %w", err)
	}
	defer f.Close()
	return ParseIPv6Route(f)
}

var v6 = family{ip: "IPv6", first: func(a []net.IP) net.IP { return firstGlobal6(a, false) },
	private: func(a []net.IP) net.IP { return firstGlobal6(a, true) }, privateRange: "fd00::/8",
	errNoAddress: ErrNoAddress6, errNoRoute: ErrNoDefaultRoute6, ipFlag: "-6",
	route: func(h Host) (Link, bool) {
		for _, l := range h.Links {
			if h.Default6 != "" && l.Name == h.Default6 {
				return l, true
			}
		}
		return Link{}, false
	},
	routeName: func(h Host) string { return h.Default6 }}

// Public6 selects the public IPv6 address; see Rule6.
func (h Host) Public6(iface string) (net.IP, error) { return h.public(v6, iface) }

// Private6 selects the private IPv6 address; see Rule6.
func (h Host) Private6(iface string) (net.IP, error) { return h.private(v6, iface) }

// firstGlobal6 returns the first global unicast IPv6 address (a ULA when ulaOnly), never
// an IPv4 or IPv4-mapped one.
func firstGlobal6(addrs []net.IP, ulaOnly bool) net.IP {
	for _, ip := range addrs {
		a, ok := netip.AddrFromSlice(ip)
		if !ok || !a.Is6() || a.Is4In6() || !a.IsGlobalUnicast() || (ulaOnly && !ula.Contains(a)) {
			continue
		}
		return net.IP(a.AsSlice())
	}
	return nil
}
