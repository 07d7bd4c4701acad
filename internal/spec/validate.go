package spec

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Validate checks a Service that has its defaults filled (FromMap's result, or one built
// by hand) and returns it with ArgWords split from Args. Renderers call it so that no
// unchecked value reaches a script.
func Validate(s Service) (Service, error) {
	parsed := parse(&s)
	if err := validate(&s, nil, nil, parsed, ""); err != nil {
		return Service{}, err
	}
	return s, nil
}

// parse runs the options' parse steps (args → ArgWords) and returns their errors by
// option; validate reports them in the option's turn.
func parse(s *Service) map[string]error {
	errs := map[string]error{}
	for i := range optionTable {
		if o := &optionTable[i]; o.parse != nil {
			if err := o.parse(s); err != nil {
				errs[o.Name] = err
			}
		}
	}
	return errs
}

// crossChecks are the rules about options that go together. They run last, whatever was
// reported before.
var crossChecks = []func(s *Service) error{
	checkStartFirst,
	func(s *Service) error {
		if (s.EtcdCert == "") != (s.EtcdKey == "") {
			return optErr(ErrMissing, "etcd_key", "etcd_cert and etcd_key go together: set both or neither")
		}
		return nil
	},
	func(s *Service) error {
		if s.EtcdPasswordFile != "" && s.EtcdUser == "" {
			return optErr(ErrMissing, "etcd_user", "etcd_password_file is set without etcd_user: set etcd_user too")
		}
		return nil
	},
	// TLS files and a user make no sense over http://: the etcd client would connect
	// without TLS and send the password in clear text.
	func(s *Service) error {
		var set []string
		for _, o := range []struct{ name, value string }{{"etcd_cacert", s.EtcdCACert}, {"etcd_cert", s.EtcdCert}, {"etcd_key", s.EtcdKey}, {"etcd_user", s.EtcdUser}} {
			if o.value != "" {
				set = append(set, o.name)
			}
		}
		if len(set) == 0 {
			return nil
		}
		for _, e := range s.EtcdEndpoints {
			if rest, ok := strings.CutPrefix(e, "http://"); ok {
				return optErr(ErrBadValue, "etcd_endpoints", "%q is plain http, but %s is set: the etcd client would connect without TLS and send credentials in clear text: use %q", e, strings.Join(set, ", "), "https://"+rest)
			}
		}
		return nil
	},
}

// checkStartFirst refuses update start-first where two containers of the service cannot
// run side by side, or where nothing could find the new one.
func checkStartFirst(s *Service) error {
	if !s.StartFirst() {
		return nil
	}
	const why = "update start-first runs the old and the new container side by side for a moment"
	switch {
	case s.Announce == 0:
		return optErr(ErrMissing, "update", "start-first needs announce: the new container is found through its own record (SRV, rundock upstreams), and without announce nothing can find it: set announce, or use update stop-first")
	case len(s.Ports) > 0:
		return optErr(ErrBadValue, "update", "start-first cannot work with ports %s: %s, and two containers cannot publish the same host port: drop ports (announce the service port instead), or use update stop-first", strings.Join(s.Ports, ", "), why)
	case s.Network == "host" || strings.HasPrefix(s.Network, "container:"):
		return optErr(ErrBadValue, "update", "start-first cannot work with network %q: %s, and in one network namespace they would both bind the same ports: use a bridge network, or update stop-first", s.Network, why)
	case len(s.Instance)+len(NextInstanceSuffix) > 63:
		return optErr(ErrBadValue, "update", "start-first announces the new container as instance %q, longer than a DNS label's 63 characters: set a shorter instance (at most %d characters)", s.Instance+NextInstanceSuffix, 63-len(NextInstanceSuffix))
	case s.HostPublished() && s.UpdatePort == 0:
		return optErr(ErrMissing, "update_port", "missing: update start-first with announce_as %s publishes the new container on a second host port while the old one holds %d: set update_port (e.g. update_port=%d), or use announce_as container", s.AnnounceAs, s.Announce, min(s.Announce+1, 65535))
	}
	for _, w := range s.ArgWords {
		if len(w) == 0 || w[0].Var != "" {
			continue
		}
		flag, _, _ := strings.Cut(w[0].Lit, "=")
		short := strings.HasPrefix(flag, "-p") && !strings.HasPrefix(flag, "--")
		if short || flag == "--publish" || (flag == "--network" || flag == "--net") && strings.Contains(w[0].Lit, "=") {
			if flag == "--network" || flag == "--net" {
				v := strings.SplitN(w[0].Lit, "=", 2)[1]
				if v != "host" && !strings.HasPrefix(v, "container:") {
					continue
				}
			}
			return optErr(ErrBadArgs, "update", "start-first cannot work with %s in args: %s, and two containers cannot publish the same host port or share one network namespace: remove it from args, or use update stop-first", wordText(w), why)
		}
	}
	return nil
}

// validate checks a Service with defaults applied; set holds the options the user gave
// (nil: unknown), failed those already reported as unreadable, parsed the errors of the
// parse steps, host the host name the defaults came from. Control characters come first: an option that has one gets no other
// message. Then the ranges of the integers, then each option's check in declaration
// order, then the cross checks.
func validate(s *Service, set, failed map[string]bool, parsed map[string]error, host string) error {
	var errs []error
	add := func(e error) {
		if e != nil {
			errs = append(errs, e)
		}
	}
	bad := controlChars(s, &errs)
	for k := range failed {
		bad[k] = true
	}
	for _, name := range Options() {
		if o := byName[name]; o.Kind == KindInt && !bad[name] {
			n := int(field(s, name).Int())
			if (n != 0 || !o.zeroUnset) && (n < o.min || n > o.max) {
				add(rangeErr(o, strconv.Itoa(n)))
			}
		}
	}
	for i := range optionTable {
		o := &optionTable[i]
		if bad[o.Name] {
			continue
		}
		if err := parsed[o.Name]; err != nil {
			add(err)
			continue
		}
		if o.check != nil {
			add(o.check(target{opt: o, s: s, set: set, bad: bad, host: host}))
		}
	}
	for _, c := range crossChecks {
		add(c(s))
	}
	return errors.Join(errs...)
}

// rangeErr says that the value shown of an integer option is out of its range.
func rangeErr(o *Option, shown string) error {
	return optErr(ErrBadValue, o.Name, "%s is not %s (%d-%d)", shown, o.what, o.min, o.max)
}

// controlChars reports every option holding a control character, an invisible format
// character (Unicode category Cf) or invalid UTF-8 in any of its strings, list items, map
// keys or values. Such a value has no place in a
// generated script or in argv, whatever the quoting.
func controlChars(s *Service, errs *[]error) map[string]bool {
	bad := map[string]bool{}
	for _, name := range Options() {
		f := field(s, name)
		var vals []string
		switch f.Kind() {
		case reflect.String:
			vals = []string{f.String()}
		case reflect.Slice:
			vals = f.Interface().([]string)
		case reflect.Map:
			// env: a value may be a secret, so a bad one is named by its key only.
			m := f.Interface().(map[string]string)
			for _, k := range slices.Sorted(maps.Keys(m)) {
				if msg := badChar(k); msg != "" {
					*errs = append(*errs, optErr(ErrBadValue, name, "the key %q %s", k, msg))
					bad[name] = true
					break
				}
				if msg := badChar(m[k]); msg != "" {
					*errs = append(*errs, optErr(ErrBadValue, name, "the value of %s (not shown: it may be a secret) %s", k, msg))
					bad[name] = true
					break
				}
			}
		}
		for _, val := range vals {
			if msg := badChar(val); msg != "" {
				*errs = append(*errs, optErr(ErrBadValue, name, "%q %s", val, msg))
				bad[name] = true
				break
			}
		}
	}
	return bad
}

// badChar describes the first control character, format character (Cf: bidi controls,
// zero-width characters) or invalid UTF-8 byte in s, or "".
func badChar(s string) string {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return fmt.Sprintf("is not valid UTF-8 (byte %d): use UTF-8 text", i+1)
			}
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fmt.Sprintf("has the control character %U at byte %d (newline, tab, NUL...): write the value on one line without it", r, i+1)
		}
		if unicode.Is(unicode.Cf, r) {
			// Bidi overrides (U+202E), zero-width spaces and joiners (U+200B, U+200D), the
			// BOM: invisible, they make a diff or a log read differently from what runs.
			return fmt.Sprintf("has the invisible format character %U at byte %d (bidi control, zero-width space...): remove it", r, i+1)
		}
	}
	return ""
}
