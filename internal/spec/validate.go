package spec

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/distribution/reference"
)

var (
	labelRe     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	hostLabelRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	// Docker's own rule for container and network names.
	dockerNameRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	userRe       = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.-]*(:[a-zA-Z0-9_][a-zA-Z0-9_.-]*)?$`)
	ifaceRe      = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.@:-]{0,14}$`)
	envKeyRe     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	etcdUserRe   = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.@-]*$`)
	portRangeRe  = regexp.MustCompile(`^([0-9]+)(-([0-9]+))?$`)
)

const labelRule = "use 1 to 63 lowercase letters, digits and '-', not starting or ending with '-'"

// Validate checks a Service that has its defaults filled (FromMap's result, or one built
// by hand) and returns it with ArgWords split from Args. Renderers call it so that no
// unchecked value reaches a script.
func Validate(s Service) (Service, error) {
	if err := validate(&s, nil, nil); err != nil {
		return Service{}, err
	}
	return s, nil
}

// validate checks a Service with defaults applied and fills ArgWords; set holds the
// options the user gave (nil: unknown), failed those already reported as unreadable.
func validate(s *Service, set, failed map[string]bool) error {
	var errs []error
	add := func(e error) {
		if e != nil {
			errs = append(errs, e)
		}
	}
	// Control characters first: an option that has one gets no other message.
	bad := controlChars(s, &errs)
	for k := range failed {
		bad[k] = true
	}
	check := func(option string, fn func() error) {
		if !bad[option] {
			add(fn())
		}
	}

	v := reflect.ValueOf(s).Elem()
	for _, name := range Options() {
		r, ok := intRanges[name]
		if !ok {
			continue
		}
		if bad[name] {
			continue
		}
		n := int(v.Field(options[name].index).Int())
		optional := name == "announce" || name == "port" || name == "priority" || name == "weight" || name == "health_retries"
		if (n != 0 || !optional) && (n < r.min || n > r.max) {
			add(rangeErr(name, strconv.Itoa(n)))
		}
	}
	check("state", func() error {
		switch s.State {
		case StatePresent, StateEnabled, StateDisabled, StateAbsent:
			return nil
		}
		return optErr(ErrBadValue, "state", "%q is not a state (use present, enabled, disabled or absent)", s.State)
	})
	check("name", func() error {
		if s.Name == "" {
			return optErr(ErrMissing, "name", "missing: set name to the service's name, e.g. name=web")
		}
		return label("name", s.Name)
	})
	check("image", func() error {
		if s.Image == "" {
			if s.State == StateAbsent || s.State == StateDisabled {
				return nil
			}
			return optErr(ErrMissing, "image", "missing: set image (e.g. image=nginx:1.27), required unless state is absent or disabled")
		}
		return checkImage(s.Image)
	})
	check("args", func() error {
		words, err := SplitArgs(s.Args)
		if err != nil {
			return optErr(ErrBadArgs, "args", "%v", err)
		}
		s.ArgWords = words
		return checkArgWords(s)
	})
	check("announce_as", func() error {
		return enum("announce_as", s.AnnounceAs, AnnouncePublic, AnnouncePrivate, AnnounceContainer)
	})
	check("port", func() error {
		if set["port"] && s.Announce == 0 && !bad["announce"] {
			return optErr(ErrBadValue, "port", "%d is set without announce: set announce (the port to publish in DNS) too, or leave port out", s.Port)
		}
		return nil
	})
	check("env", func() error {
		for _, k := range slices.Sorted(maps.Keys(s.Env)) {
			if !envKeyRe.MatchString(k) {
				return optErr(ErrBadValue, "env", "%q is not a variable name (use letters, digits and '_', not starting with a digit)", k)
			}
		}
		return nil
	})
	for _, p := range []struct {
		option string
		paths  []string
	}{
		{"env_file", s.EnvFile},
		{"log_dir", []string{s.LogDir}},
		{"etcd_cacert", []string{s.EtcdCACert}},
		{"etcd_cert", []string{s.EtcdCert}},
		{"etcd_key", []string{s.EtcdKey}},
		{"etcd_password_file", []string{s.EtcdPasswordFile}},
		{"sv_dir", []string{s.SvDir}},
		{"service_dir", []string{s.ServiceDir}},
		{"bin_dir", []string{s.BinDir}},
	} {
		check(p.option, func() error {
			for _, v := range p.paths {
				if err := absPath(p.option, v); err != nil {
					return err
				}
			}
			return nil
		})
	}
	check("ports", func() error {
		for _, p := range s.Ports {
			if err := checkPublish(p); err != nil {
				return err
			}
		}
		return nil
	})
	check("volumes", func() error {
		for _, v := range s.Volumes {
			if err := checkVolume(v); err != nil {
				return err
			}
		}
		return nil
	})
	check("volumes_from", func() error {
		for _, v := range s.VolumesFrom {
			c, mode, _ := strings.Cut(v, ":")
			if !dockerNameRe.MatchString(c) || (mode != "" && mode != "ro" && mode != "rw") {
				return optErr(ErrBadValue, "volumes_from", "%q is not CONTAINER[:ro|rw] (container names use letters, digits, '_', '.' and '-')", v)
			}
		}
		return nil
	})
	check("network", func() error {
		if s.Network == "" {
			return nil
		}
		n, c, isContainer := strings.Cut(s.Network, ":")
		if isContainer && n == "container" {
			n = c
		}
		if !dockerNameRe.MatchString(n) {
			return optErr(ErrBadValue, "network", "%q is not a network name (use letters, digits, '_', '.' and '-', or container:NAME)", s.Network)
		}
		return nil
	})
	check("user", func() error {
		if s.User != "" && !userRe.MatchString(s.User) {
			return optErr(ErrBadValue, "user", "%q is not USER[:GROUP] (names or numeric ids: letters, digits, '_', '.' and '-')", s.User)
		}
		return nil
	})
	check("hostname", func() error { return checkHostname(s.Hostname) })
	check("pull", func() error { return enum("pull", s.Pull, PullAlways, PullMissing, PullNever) })
	for _, d := range []struct{ option, value string }{
		{"health_interval", s.HealthInterval},
		{"health_timeout", s.HealthTimeout},
		{"health_start_period", s.HealthStartPeriod},
	} {
		check(d.option, func() error {
			if d.value == "" {
				return nil
			}
			v, err := time.ParseDuration(d.value)
			if err != nil || v <= 0 {
				return optErr(ErrBadValue, d.option, "%q is not a positive duration (use e.g. 30s, 1m30s, 500ms)", d.value)
			}
			return nil
		})
	}
	check("announce_name", func() error { return label("announce_name", s.AnnounceName) })
	check("instance", func() error {
		if s.Instance == "" {
			if s.Announce == 0 {
				return nil
			}
			return optErr(ErrMissing, "instance", "missing and the host name is unknown: set instance (this host's label in DNS, e.g. instance=back-1)")
		}
		return label("instance", s.Instance)
	})
	check("domain", func() error {
		if strings.HasSuffix(s.Domain, ".") {
			return optErr(ErrBadValue, "domain", "%q ends with '.': write it without the final dot", s.Domain)
		}
		for l := range strings.SplitSeq(s.Domain, ".") {
			if !labelRe.MatchString(l) {
				return optErr(ErrBadValue, "domain", "%q has the label %q, which is not a DNS label (%s)", s.Domain, l, labelRule)
			}
		}
		return nil
	})
	check("etcd_endpoints", func() error {
		for _, e := range s.EtcdEndpoints {
			u, err := url.Parse(e)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
				(u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
				strings.ContainsAny(e, ", '\"\\") {
				return optErr(ErrBadValue, "etcd_endpoints", "%q is not an http(s) URL of an etcd member (e.g. http://10.0.0.1:2379)", e)
			}
		}
		return nil
	})
	check("host", func() error {
		if s.Host == "" {
			return nil
		}
		if ip := net.ParseIP(s.Host); ip == nil || ip.To4() == nil {
			return optErr(ErrBadValue, "host", "%q is not an IPv4 address (e.g. 10.0.0.5)", s.Host)
		}
		if s.AnnounceAs == AnnounceContainer {
			return optErr(ErrBadValue, "host", "%q cannot be used with announce_as container, which announces the container's own address: drop host or announce as public or private", s.Host)
		}
		return nil
	})
	check("public_interface", func() error { return iface("public_interface", s.PublicInterface) })
	check("private_interface", func() error { return iface("private_interface", s.PrivateInterface) })
	check("etcd_user", func() error {
		if s.EtcdUser != "" && !etcdUserRe.MatchString(s.EtcdUser) {
			return optErr(ErrBadValue, "etcd_user", "%q is not a user name (use letters, digits, '_', '.', '@' and '-')", s.EtcdUser)
		}
		return nil
	})
	if (s.EtcdCert == "") != (s.EtcdKey == "") {
		add(optErr(ErrMissing, "etcd_key", "etcd_cert and etcd_key go together: set both or neither"))
	}
	if s.EtcdPasswordFile != "" && s.EtcdUser == "" {
		add(optErr(ErrMissing, "etcd_user", "etcd_password_file is set without etcd_user: set etcd_user too"))
	}
	return errors.Join(errs...)
}

// controlChars reports every option holding a control character or invalid UTF-8 in any
// of its strings, list items, map keys or values. Such a value has no place in a
// generated script or in argv, whatever the quoting.
func controlChars(s *Service, errs *[]error) map[string]bool {
	bad := map[string]bool{}
	v := reflect.ValueOf(s).Elem()
	for _, name := range Options() {
		f := v.Field(options[name].index)
		var vals []string
		switch f.Kind() {
		case reflect.String:
			vals = []string{f.String()}
		case reflect.Slice:
			vals = f.Interface().([]string)
		case reflect.Map:
			for k, val := range f.Interface().(map[string]string) {
				vals = append(vals, k, val)
			}
			slices.Sort(vals)
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

// badChar describes the first control character or invalid UTF-8 byte in s, or "".
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
	}
	return ""
}

func label(option, v string) error {
	if labelRe.MatchString(v) {
		return nil
	}
	hint := ""
	if l := strings.ToLower(v); l != v && labelRe.MatchString(l) {
		hint = fmt.Sprintf(" (try %q)", l)
	}
	return optErr(ErrBadValue, option, "%q is not a DNS label: %s%s", v, labelRule, hint)
}

func enum(option, v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return optErr(ErrBadValue, option, "%q is not one of %s", v, strings.Join(allowed, ", "))
}

func iface(option, v string) error {
	if v == "" || ifaceRe.MatchString(v) {
		return nil
	}
	return optErr(ErrBadValue, option, "%q is not a network interface name (1 to 15 letters, digits, '_', '.', '@', ':' or '-', e.g. eth0)", v)
}

func absPath(option, p string) error {
	if p == "" {
		return nil
	}
	if !path.IsAbs(p) {
		return optErr(ErrBadValue, option, "%q is not an absolute path: start it with '/'", p)
	}
	if c := path.Clean(p); c != p {
		return optErr(ErrBadValue, option, "%q is not a clean path: write %q", p, c)
	}
	return nil
}

func checkImage(img string) error {
	if _, err := reference.ParseNormalizedNamed(img); err == nil {
		return nil
	} else if l := lowerRepo(img); l != img {
		if _, err := reference.ParseNormalizedNamed(l); err == nil {
			return optErr(ErrBadValue, "image", "%q is not an image reference: repository names are lowercase (try %q)", img, l)
		}
	}
	if _, err := reference.ParseAnyReference(img); err == nil && !strings.HasPrefix(img, "-") {
		return nil // an image ID
	} else if err != nil {
		return optErr(ErrBadValue, "image", "%q is not an image reference (%v): use [REGISTRY/]REPOSITORY[:TAG][@DIGEST], e.g. nginx:1.27", img, err)
	}
	return optErr(ErrBadValue, "image", "%q is not an image reference: use [REGISTRY/]REPOSITORY[:TAG][@DIGEST], e.g. nginx:1.27", img)
}

// lowerRepo lowercases the repository part of an image reference, not its tag.
func lowerRepo(img string) string {
	repo, rest := img, ""
	if i := strings.IndexAny(img, "@"); i >= 0 {
		repo, rest = img[:i], img[i:]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo, rest = repo[:i], repo[i:]+rest
	}
	return strings.ToLower(repo) + rest
}

func checkHostname(h string) error {
	if len(h) > 64 {
		return optErr(ErrBadValue, "hostname", "%q is longer than 64 characters: set a shorter hostname", h)
	}
	for l := range strings.SplitSeq(h, ".") {
		if !hostLabelRe.MatchString(l) {
			return optErr(ErrBadValue, "hostname", "%q is not a host name (dot-separated labels of letters, digits and '-', not starting or ending with '-')", h)
		}
	}
	return nil
}

// checkPublish validates a ports entry: [IP:]HOST:CONTAINER[/tcp|udp|sctp], ports or
// equal-length ranges, IPv6 addresses in brackets.
func checkPublish(p string) error {
	fail := func(why string) error {
		return optErr(ErrBadValue, "ports", "%q %s: use [IP:]HOST:CONTAINER[/tcp|udp], e.g. 127.0.0.1:8080:80", p, why)
	}
	spec, proto, hasProto := strings.Cut(p, "/")
	if hasProto && proto != "tcp" && proto != "udp" && proto != "sctp" {
		return fail(fmt.Sprintf("has the protocol %q", proto))
	}
	ip := ""
	if strings.HasPrefix(spec, "[") {
		end := strings.Index(spec, "]:")
		if end < 0 {
			return fail("has an unclosed IPv6 address")
		}
		ip, spec = spec[1:end], spec[end+2:]
		if a, err := netip.ParseAddr(ip); err != nil || !a.Is6() {
			return fail(fmt.Sprintf("has %q, which is not an IPv6 address", ip))
		}
	}
	parts := strings.Split(spec, ":")
	if len(parts) == 3 && ip == "" {
		ip, parts = parts[0], parts[1:]
		if a, err := netip.ParseAddr(ip); err != nil || !a.Is4() {
			return fail(fmt.Sprintf("has %q, which is not an IPv4 address", ip))
		}
	}
	if len(parts) != 2 {
		return fail("is not HOST:CONTAINER")
	}
	var sizes [2]int
	for i, part := range parts {
		m := portRangeRe.FindStringSubmatch(part)
		if m == nil {
			return fail(fmt.Sprintf("has %q, which is not a port number (1-65535) or range", part))
		}
		lo, _ := strconv.Atoi(m[1])
		hi := lo
		if m[3] != "" {
			hi, _ = strconv.Atoi(m[3])
		}
		if lo < 1 || hi > 65535 || hi < lo {
			return fail(fmt.Sprintf("has %q, which is not a port number (1-65535) or range", part))
		}
		sizes[i] = hi - lo
	}
	if sizes[0] != sizes[1] {
		return fail("maps ranges of different sizes")
	}
	return nil
}

var volumeModes = []string{"ro", "rw", "z", "Z", "shared", "rshared", "slave", "rslave", "private", "rprivate", "nocopy", "consistent", "cached", "delegated"}

// checkVolume validates a volumes entry: SRC:DST[:MODE,...] with SRC an absolute host
// path or a volume name and DST an absolute, clean container path.
func checkVolume(v string) error {
	fail := func(why string) error {
		return optErr(ErrBadValue, "volumes", "%q %s: use SRC:DST[:ro|rw|...], SRC an absolute host path or a volume name, DST an absolute path, e.g. /srv/data:/data:ro", v, why)
	}
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return fail("is not SRC:DST[:MODE]")
	}
	src, dst := parts[0], parts[1]
	if strings.HasPrefix(src, "/") {
		if path.Clean(src) != src {
			return fail(fmt.Sprintf("has the host path %q, which is not clean (write %q)", src, path.Clean(src)))
		}
	} else if !dockerNameRe.MatchString(src) {
		return fail(fmt.Sprintf("has %q, which is neither an absolute path nor a volume name", src))
	}
	if !strings.HasPrefix(dst, "/") || path.Clean(dst) != dst {
		return fail(fmt.Sprintf("has the container path %q, which is not absolute and clean", dst))
	}
	if len(parts) == 3 {
		for m := range strings.SplitSeq(parts[2], ",") {
			if !slices.Contains(volumeModes, m) {
				return fail(fmt.Sprintf("has the mode %q (use %s)", m, strings.Join(volumeModes, ", ")))
			}
		}
	}
	return nil
}

// checkArgWords rejects docker run flags that fight supervision, and $ANNOUNCE_IP when it
// cannot be known before the container starts.
func checkArgWords(s *Service) error {
	for _, w := range s.ArgWords {
		for _, p := range w {
			if p.Var == "ANNOUNCE_IP" && s.AnnounceAs == AnnounceContainer {
				return optErr(ErrBadArgs, "args", "%q uses $ANNOUNCE_IP, which is unknown before the container starts when announce_as is container: use $PRIVATE_IP or $PUBLIC_IP", s.Args)
			}
		}
		if len(w) != 1 || w[0].Var != "" {
			continue
		}
		lit := w[0].Lit
		flag, _, _ := strings.Cut(lit, "=")
		switch flag {
		case "--detach", "--restart", "--name", "--rm", "--tty", "--pull":
			return optErr(ErrBadArgs, "args", "%q has %s, which rundock sets itself or which breaks supervision (runit restarts the container; the run script must stay attached): remove it", s.Args, lit)
		}
		if strings.HasPrefix(lit, "-") && !strings.HasPrefix(lit, "--") {
			// A cluster of short boolean flags, like -dit: look for -d and -t.
			for _, c := range lit[1:] {
				if c == 'd' || c == 't' {
					return optErr(ErrBadArgs, "args", "%q has %s, which detaches or allocates a TTY and breaks supervision: remove it", s.Args, lit)
				}
				if c != 'i' && c != 'P' {
					break
				}
			}
		}
	}
	return nil
}
