// Package dnsname checks the names rundock puts into DNS: service names, instance labels and
// domains. The spec, the SkyDNS keys, the announcer and rundock upstreams all use it, so a name
// one accepts is a name the others accept.
package dnsname

import (
	"fmt"
	"strings"
)

// Rule says what a label may hold, for error messages.
const Rule = "use 1 to 63 lowercase letters, digits and '-', not starting or ending with '-'"

// IsLabel reports whether s is a lowercase DNS label: 1 to 63 of a-z, 0-9 and '-', not
// starting or ending with '-'.
func IsLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ASCIILower lowercases A-Z only, byte by byte. strings.ToLower would map the Kelvin sign
// U+212A to 'k' (and U+0130 to 'i̇'), so a non-ASCII name would pass as a label.
func ASCIILower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// IsHostName reports whether s is a host name: at most 253 characters of labels (any case)
// joined by dots, with an optional final dot. It does not accept IP addresses: callers that
// take either check net.ParseIP first.
func IsHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for l := range strings.SplitSeq(ASCIILower(s), ".") {
		if !IsLabel(l) {
			return false
		}
	}
	return true
}

// CheckDomain returns an error naming the first label of domain that is not a DNS label, or
// the final dot a domain must be written without.
func CheckDomain(domain string) error {
	if strings.HasSuffix(domain, ".") {
		return fmt.Errorf("%q ends with '.': write it without the final dot", domain)
	}
	for l := range strings.SplitSeq(domain, ".") {
		if !IsLabel(l) {
			return fmt.Errorf("%q has the label %q, which is not a DNS label (%s)", domain, l, Rule)
		}
	}
	return nil
}
