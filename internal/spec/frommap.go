package spec

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/rundock/rundock/internal/dnsname"
)

// FromMap turns options from any source (Ansible arguments, a YAML document, CLI flags)
// into a validated Service with every default filled and Args split into ArgWords.
// Values may be typed (YAML, JSON) or strings as Ansible's key=value form passes them:
// "8086" for a number, yes/no/true/false/on/off/1/0 for a boolean, "a,b" for a list,
// "K=V K2=V2" or a JSON object for env. A nil value counts as not set. host is the short
// name of the host, used for the hostname and instance defaults.
// All problems are returned at once, joined; each wraps one of the sentinel errors.
//
// It reads each value by its option's kind, fills the defaults, runs the parse steps
// (args → ArgWords), then validates.
func FromMap(m map[string]any, host string) (Service, error) {
	var s Service
	var errs []error
	set := map[string]bool{}
	failed := map[string]bool{} // options that could not be read: not validated again
	for _, key := range sortedKeys(m) {
		val := m[key]
		o, ok := byName[key]
		if !ok {
			errs = append(errs, unknownOption(key))
			continue
		}
		if val == nil {
			continue
		}
		if err := o.read(&s, val); err != nil {
			errs = append(errs, err)
			failed[key] = true
			continue
		}
		set[key] = true
	}
	host, _, _ = strings.Cut(dnsname.ASCIILower(strings.TrimSpace(host)), ".")
	applyDefaults(&s, set, host)
	parsed := parse(&s)
	if err := validate(&s, set, failed, parsed, host); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Service{}, errors.Join(errs...)
	}
	return s, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func unknownOption(key string) error {
	msg := "is not an option"
	if best := closest(key); best != "" {
		msg += fmt.Sprintf(": did you mean %q?", best)
	} else {
		msg += " (see the options table in the README)"
	}
	return &Error{Option: key, Msg: msg, Kind: ErrUnknownOption}
}

// closest returns the option name nearest to key, or "" when none is near enough.
func closest(key string) string {
	k := strings.ToLower(strings.ReplaceAll(key, "-", "_"))
	best, bestD := "", math.MaxInt
	for _, name := range Options() {
		if d := distance(k, name); d < bestD {
			best, bestD = name, d
		}
	}
	if bestD <= max(2, len(best)/3) && bestD < len(k) {
		return best
	}
	return ""
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// applyDefaults fills what the user left out; set holds the options given. The declared
// defaults come first; then the few computed from other options, which options.go
// describes in words (derived). A host name that is not a DNS label (my_host) gives no
// default: the hostname is then NAME alone, and the instance is left empty, which only a
// service that announces needs (checkInstance says so, naming the host name).
func applyDefaults(s *Service, set map[string]bool, host string) {
	if !dnsname.IsLabel(host) {
		host = ""
	}
	for i := range optionTable {
		o := &optionTable[i]
		if o.def == nil {
			continue
		}
		f := field(s, o.Name)
		switch {
		case o.Kind == KindBool:
			// false is a value: only an option left out gets the default.
			if !set[o.Name] {
				f.SetBool(o.def.(bool))
			}
		case f.Kind() == reflect.Slice:
			if f.Len() == 0 {
				f.Set(reflect.ValueOf(slices.Clone(o.def.([]string))))
			}
		case f.IsZero():
			f.Set(reflect.ValueOf(o.def).Convert(f.Type()))
		}
	}
	if s.Port == 0 {
		s.Port = s.Announce
	}
	if s.Hostname == "" {
		s.Hostname = defaultHostname(host, s.Name)
	}
	if s.AnnounceName == "" {
		s.AnnounceName = s.Name
	}
	if s.Instance == "" {
		s.Instance = host
	}
	if s.DNSTTL == 0 {
		s.DNSTTL = s.TTL
	}
	if !set["drain"] && s.Announce != 0 {
		s.Drain = min(s.DNSTTL, maxDrain)
	}
	s.MaintenanceSet = set["maintenance"]
}

// maxDrain caps drain's default: a drain holds runsv (control/t) for its length.
const maxDrain = 3600

// defaultHostname is HOST-NAME, cut to the 63 characters a host name label may have.
func defaultHostname(host, name string) string {
	h := name
	if host != "" {
		h = host + "-" + name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-")
	}
	return h
}
