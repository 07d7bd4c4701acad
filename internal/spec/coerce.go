package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Defaults of the options a user may leave out. Hostname defaults to HOST-NAME, Port to
// Announce, AnnounceName to Name, Instance to the host's short name, DNSTTL to TTL.
const (
	DefaultState       = StateEnabled
	DefaultAnnounceAs  = AnnouncePrivate
	DefaultPull        = PullMissing
	DefaultStopTimeout = 10
	DefaultLogDir      = "/var/log/rundock"
	DefaultLogSize     = 1000000
	DefaultLogCount    = 10
	DefaultDomain      = "s.prod.example.com"
	DefaultEtcd        = "http://127.0.0.1:2379"
	DefaultTTL         = 30
	MinTTL             = 5
	DefaultSvDir       = "/etc/sv"
	DefaultServiceDir  = "/etc/service"
	DefaultBinDir      = "/usr/local/bin"
)

// option is one settable field of Service, found by its JSON tag.
type option struct {
	name  string
	index int
	kind  reflect.Kind // String, Int, Bool, Slice ([]string), Map (map[string]string)
}

var options = func() map[string]option {
	m := map[string]option{}
	t := reflect.TypeFor[Service]()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = option{name: name, index: i, kind: f.Type.Kind()}
	}
	return m
}()

// Options returns every option name, sorted.
func Options() []string {
	names := make([]string, 0, len(options))
	for n := range options {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// FromMap turns options from any source (Ansible arguments, a YAML document, CLI flags)
// into a validated Service with every default filled and Args split into ArgWords.
// Values may be typed (YAML, JSON) or strings as Ansible's key=value form passes them:
// "8086" for a number, yes/no/true/false/on/off/1/0 for a boolean, "a,b" for a list,
// "K=V K2=V2" or a JSON object for env. A nil value counts as not set. host is the short
// name of the host, used for the hostname and instance defaults.
// All problems are returned at once, joined; each wraps one of the sentinel errors.
func FromMap(m map[string]any, host string) (Service, error) {
	var s Service
	var errs []error
	set := map[string]bool{}
	failed := map[string]bool{} // options that could not be read: not validated again
	v := reflect.ValueOf(&s).Elem()
	for _, key := range sortedKeys(m) {
		val := m[key]
		opt, ok := options[key]
		if !ok {
			errs = append(errs, unknownOption(key))
			continue
		}
		if val == nil {
			continue
		}
		if err := coerce(v.Field(opt.index), opt, val); err != nil {
			errs = append(errs, err)
			failed[key] = true
			continue
		}
		set[key] = true
	}
	host, _, _ = strings.Cut(strings.ToLower(strings.TrimSpace(host)), ".")
	applyDefaults(&s, set, host)
	if err := validate(&s, set, failed); err != nil {
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

// coerce stores val into f, converting it like Ansible's type checkers do.
func coerce(f reflect.Value, opt option, val any) error {
	switch opt.kind {
	case reflect.String:
		s, err := toString(opt.name, val)
		if err != nil {
			return err
		}
		f.SetString(s)
	case reflect.Int:
		n, err := toInt(opt.name, val)
		if err != nil {
			return err
		}
		f.SetInt(int64(n))
	case reflect.Bool:
		b, err := toBool(opt.name, val)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case reflect.Slice:
		if str, ok := val.(string); ok && opt.name == "command" {
			// Like Ansible's docker_container: a command string is split like sh
			// splits it, not at commas.
			l, err := splitCommand(str)
			if err != nil {
				return err
			}
			f.Set(reflect.ValueOf(l))
			return nil
		}
		l, err := toList(opt.name, val)
		if err != nil {
			return err
		}
		f.Set(reflect.ValueOf(l))
	case reflect.Map:
		m, err := toMap(opt.name, val)
		if err != nil {
			return err
		}
		f.Set(reflect.ValueOf(m))
	default:
		panic("spec: option " + opt.name + " has an unhandled kind " + opt.kind.String())
	}
	return nil
}

// scalar formats a number or string; ok is false for anything else (bool, list, map).
func scalar(val any) (string, bool) {
	switch x := val.(type) {
	case string:
		return x, true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10), true
		}
	case json.Number:
		return x.String(), true
	}
	return "", false
}

func describe(val any) string {
	switch x := val.(type) {
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case float64:
		return fmt.Sprintf("the number %v", x)
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a map"
	}
	return fmt.Sprintf("%#v", val)
}

func toString(name string, val any) (string, error) {
	if s, ok := scalar(val); ok {
		return s, nil
	}
	hint := ""
	if _, ok := val.(bool); ok {
		hint = ` (YAML reads yes/no/true/false as booleans: quote the value, e.g. "no")`
	}
	if _, ok := val.(float64); ok {
		hint = ` (quote the value so it stays text, e.g. "1.10")`
	}
	return "", optErr(ErrBadType, name, "%s is not a string%s", describe(val), hint)
}

// intRanges gives each integer option its allowed range and how to call it in errors.
var intRanges = map[string]struct {
	min, max int
	what     string
}{
	"announce":       {1, 65535, "a port number"},
	"port":           {1, 65535, "a port number"},
	"priority":       {0, 65535, "a number"},
	"weight":         {0, 65535, "a number"},
	"stop_timeout":   {1, 3600, "a number of seconds"},
	"health_retries": {1, 1000, "a number"},
	"log_size":       {4096, math.MaxInt32, "a size in bytes"},
	"log_count":      {1, 1000, "a number of files"},
	"ttl":            {MinTTL, 86400, "a number of seconds"},
	"dns_ttl":        {1, 86400, "a number of seconds"},
}

func rangeErr(name string, shown string) error {
	r := intRanges[name]
	return optErr(ErrBadValue, name, "%s is not %s (%d-%d)", shown, r.what, r.min, r.max)
}

func toInt(name string, val any) (int, error) {
	r := intRanges[name]
	s, ok := scalar(val)
	if !ok {
		if _, isFloat := val.(float64); isFloat {
			return 0, rangeErr(name, describe(val))
		}
		return 0, optErr(ErrBadType, name, "%s is not %s (%d-%d)", describe(val), r.what, r.min, r.max)
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, optErr(ErrBadType, name, "%q is not %s (%d-%d)", s, r.what, r.min, r.max)
	}
	if n < r.min || n > r.max {
		return 0, rangeErr(name, strconv.Quote(s))
	}
	return n, nil
}

func toBool(name string, val any) (bool, error) {
	switch x := val.(type) {
	case bool:
		return x, nil
	}
	s, ok := scalar(val)
	if ok {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "yes", "y", "true", "t", "on", "1":
			return true, nil
		case "no", "n", "false", "f", "off", "0":
			return false, nil
		}
		return false, optErr(ErrBadType, name, "%q is not a boolean (use yes/no, true/false, on/off or 1/0)", s)
	}
	return false, optErr(ErrBadType, name, "%s is not a boolean (use yes/no, true/false, on/off or 1/0)", describe(val))
}

func toList(name string, val any) ([]string, error) {
	switch x := val.(type) {
	case []any:
		out := make([]string, 0, len(x))
		for i, e := range x {
			s, ok := scalar(e)
			if !ok {
				return nil, optErr(ErrBadType, name, "item %d is %s, not a string (quote it)", i+1, describe(e))
			}
			out = append(out, s)
		}
		return out, nil
	case []string:
		return slices.Clone(x), nil
	}
	s, ok := scalar(val)
	if !ok {
		return nil, optErr(ErrBadType, name, "%s is not a list (use a YAML list or a comma-separated string)", describe(val))
	}
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out, nil
}

// splitCommand splits a command given as one string into words like sh, without any
// expansion: command words are passed to the container as they are.
func splitCommand(s string) ([]string, error) {
	words, err := SplitArgs(s)
	if err != nil {
		return nil, optErr(ErrBadValue, "command", "%v (or give command as a list of words)", err)
	}
	out := make([]string, 0, len(words))
	for _, w := range words {
		var b strings.Builder
		for _, p := range w {
			if p.Var != "" {
				return nil, optErr(ErrBadValue, "command", "%q uses $%s, which command does not expand: use args, or quote it with '...'", s, p.Var)
			}
			b.WriteString(p.Lit)
		}
		out = append(out, b.String())
	}
	return out, nil
}

func toMap(name string, val any) (map[string]string, error) {
	var src map[string]any
	switch x := val.(type) {
	case map[string]any:
		src = x
	case map[any]any:
		src = map[string]any{}
		for k, v := range x {
			ks, ok := scalar(k)
			if !ok {
				return nil, optErr(ErrBadType, name, "key %s is not a string", describe(k))
			}
			src[ks] = v
		}
	case map[string]string:
		return maps.Clone(x), nil
	case string:
		t := strings.TrimSpace(x)
		if strings.HasPrefix(t, "{") {
			if err := json.Unmarshal([]byte(t), &src); err != nil {
				return nil, optErr(ErrBadType, name, "%q is not a JSON object: %v", x, err)
			}
			break
		}
		return splitPairs(name, x)
	default:
		return nil, optErr(ErrBadType, name, "%s is not a map (use a YAML map, a JSON object or \"K=V K2=V2\")", describe(val))
	}
	out := make(map[string]string, len(src))
	for k, v := range src {
		if v == nil {
			out[k] = ""
			continue
		}
		s, ok := scalar(v)
		if !ok {
			return nil, optErr(ErrBadType, name, "the value of %s is %s, not a string (quote it)", k, describe(v))
		}
		out[k] = s
	}
	return out, nil
}

// splitPairs parses "K=V K2='a b',K3=\"c\"" like Ansible's check_type_dict: fields are
// separated by spaces or commas outside quotes; quotes group, a backslash escapes.
func splitPairs(name, s string) (map[string]string, error) {
	var fields []string
	var cur strings.Builder
	var quote rune
	inField, escaped := false, false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped, inField = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inField = r, true
		case r == ' ' || r == ',':
			if inField {
				fields = append(fields, cur.String())
				cur.Reset()
				inField = false
			}
		default:
			cur.WriteRune(r)
			inField = true
		}
	}
	if quote != 0 || escaped {
		return nil, optErr(ErrBadType, name, "%q has an unbalanced quote or a trailing backslash", s)
	}
	if inField {
		fields = append(fields, cur.String())
	}
	out := make(map[string]string, len(fields))
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, optErr(ErrBadType, name, "%q in %q is not KEY=VALUE (use \"K=V K2=V2\", a JSON object or a YAML map)", f, s)
		}
		out[k] = v
	}
	return out, nil
}

// applyDefaults fills what the user left out; set holds the options given.
func applyDefaults(s *Service, set map[string]bool, host string) {
	if s.State == "" {
		s.State = DefaultState
	}
	if s.AnnounceAs == "" {
		s.AnnounceAs = DefaultAnnounceAs
	}
	if s.Port == 0 {
		s.Port = s.Announce
	}
	if s.Hostname == "" {
		s.Hostname = defaultHostname(host, s.Name)
	}
	if s.Pull == "" {
		s.Pull = DefaultPull
	}
	if s.StopTimeout == 0 {
		s.StopTimeout = DefaultStopTimeout
	}
	if !set["log"] {
		s.Log = true
	}
	if s.LogDir == "" {
		s.LogDir = DefaultLogDir
	}
	if s.LogSize == 0 {
		s.LogSize = DefaultLogSize
	}
	if s.LogCount == 0 {
		s.LogCount = DefaultLogCount
	}
	if s.AnnounceName == "" {
		s.AnnounceName = s.Name
	}
	if s.Instance == "" {
		s.Instance = host
	}
	if s.Domain == "" {
		s.Domain = DefaultDomain
	}
	if len(s.EtcdEndpoints) == 0 {
		s.EtcdEndpoints = []string{DefaultEtcd}
	}
	if s.TTL == 0 {
		s.TTL = DefaultTTL
	}
	if s.DNSTTL == 0 {
		s.DNSTTL = s.TTL
	}
	if s.SvDir == "" {
		s.SvDir = DefaultSvDir
	}
	if s.ServiceDir == "" {
		s.ServiceDir = DefaultServiceDir
	}
	if s.BinDir == "" {
		s.BinDir = DefaultBinDir
	}
}

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
