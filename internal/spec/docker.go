package spec

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The checks of the values rundock passes to docker run: the image, published ports,
// volumes, networks and the free-form args.

var (
	// Docker's own rule for container and network names.
	dockerNameRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	portRangeRe  = regexp.MustCompile(`^([0-9]+)(-([0-9]+))?$`)
)

// checkImage requires an image unless the service is stopped or removed, and accepts an
// image reference or ID.
func checkImage(t target) error {
	img := t.s.Image
	if img == "" {
		if t.s.State == StateAbsent || t.s.State == StateDisabled {
			return nil
		}
		return optErr(ErrMissing, "image", "missing: set image (e.g. image=nginx:1.27), required unless state is absent or disabled")
	}
	if err := parseNormalizedNamed(img); err == nil {
		return nil
	} else if l := lowerRepo(img); l != img {
		if err := parseNormalizedNamed(l); err == nil {
			return optErr(ErrBadValue, "image", "%q is not an image reference: repository names are lowercase (try %q)", img, l)
		}
	}
	if err := parseAnyImageRef(img); err == nil && !strings.HasPrefix(img, "-") {
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

func checkPorts(t target) error {
	for _, p := range t.s.Ports {
		if err := checkPublish(p); err != nil {
			return err
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

func checkVolumes(t target) error {
	for _, v := range t.s.Volumes {
		if err := checkVolume(v); err != nil {
			return err
		}
	}
	return nil
}

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

func checkVolumesFrom(t target) error {
	for _, v := range t.s.VolumesFrom {
		c, mode, _ := strings.Cut(v, ":")
		if !dockerNameRe.MatchString(c) || (mode != "" && mode != "ro" && mode != "rw") {
			return optErr(ErrBadValue, "volumes_from", "%q is not CONTAINER[:ro|rw] (container names use letters, digits, '_', '.' and '-')", v)
		}
	}
	return nil
}

func checkNetwork(t target) error {
	if t.s.Network == "" {
		return nil
	}
	n, c, hasColon := strings.Cut(t.s.Network, ":")
	if hasColon {
		if n != "container" {
			return optErr(ErrBadValue, "network", "%q has a colon after %q: only container:NAME takes one; write a network name, or container:NAME", t.s.Network, n)
		}
		n = c
	}
	if !dockerNameRe.MatchString(n) {
		return optErr(ErrBadValue, "network", "%q is not a network name (use letters, digits, '_', '.' and '-', or container:NAME)", t.s.Network)
	}
	return nil
}

// checkArgWords rejects docker run flags that fight supervision, and $ANNOUNCE_IP when it
// cannot be known before the container starts. ArgWords are split from Args already
// (splitArgWords, args' parse step).
func checkArgWords(t target) error {
	s := t.s
	for _, w := range s.ArgWords {
		for _, p := range w {
			if p.Var == "ANNOUNCE_IP" && s.AnnouncesContainer() {
				return optErr(ErrBadArgs, "args", "%q uses $ANNOUNCE_IP, which is unknown before the container starts when announce_as is container: use $PRIVATE_IP or $PUBLIC_IP", s.Args)
			}
		}
		// The literal text before the first placeholder decides the flag: --name=$PRIVATE_IP
		// is still --name.
		if len(w) == 0 || w[0].Var != "" {
			continue
		}
		lit := w[0].Lit
		flag, _, _ := strings.Cut(lit, "=")
		switch flag {
		case "--detach", "--restart", "--name", "--rm", "--tty", "--pull":
			return optErr(ErrBadArgs, "args", "%q has %s, which rundock sets itself or which breaks supervision (runit restarts the container; the run script must stay attached): remove it", s.Args, wordText(w))
		}
		if strings.HasPrefix(lit, "-") && !strings.HasPrefix(lit, "--") {
			// A cluster of short boolean flags, like -dit: look for -d and -t.
			for _, c := range lit[1:] {
				if c == 'd' || c == 't' {
					return optErr(ErrBadArgs, "args", "%q has %s, which detaches or allocates a TTY and breaks supervision: remove it", s.Args, wordText(w))
				}
				if c != 'i' && c != 'P' {
					break
				}
			}
		}
	}
	return nil
}

// wordText is a word as written, placeholders as $NAME, for messages.
func wordText(w Word) string {
	var b strings.Builder
	for _, p := range w {
		if p.Var != "" {
			b.WriteString("$" + p.Var)
		} else {
			b.WriteString(p.Lit)
		}
	}
	return b.String()
}
