package spec

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Reading option values: like Ansible's type checkers, a value may be typed (YAML, JSON)
// or a string as Ansible's key=value form passes it.

// read stores val into the option's field of s, converted by the option's kind.
func (o *Option) read(s *Service, val any) error {
	var v any
	var err error
	switch {
	case o.coerce != nil:
		v, err = o.coerce(o, val)
	case o.Kind == KindString || o.Kind == KindPath:
		v, err = toString(o.Name, val)
	case o.Kind == KindInt:
		v, err = toInt(o, val)
	case o.Kind == KindBool:
		v, err = toBool(o.Name, val)
	case o.Kind == KindList:
		v, err = toList(o.Name, val)
	case o.Kind == KindMap:
		v, err = toMap(o.Name, val)
	default:
		panic(fmt.Sprintf("spec: option %s has an unhandled kind %d", o.Name, o.Kind))
	}
	if err != nil {
		return err
	}
	f := field(s, o.Name)
	f.Set(reflect.ValueOf(v).Convert(f.Type()))
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

// toInt reads an integer within the option's range.
func toInt(o *Option, val any) (int, error) {
	s, ok := scalar(val)
	if !ok {
		if _, isFloat := val.(float64); isFloat {
			return 0, rangeErr(o, describe(val))
		}
		return 0, optErr(ErrBadType, o.Name, "%s is not %s (%d-%d)", describe(val), o.what, o.min, o.max)
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, optErr(ErrBadType, o.Name, "%q is not %s (%d-%d)", s, o.what, o.min, o.max)
	}
	if n < o.min || n > o.max {
		return 0, rangeErr(o, strconv.Quote(s))
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

// commandWords reads command: a list, or like Ansible's docker_container a string split
// like sh splits it, not at commas.
func commandWords(o *Option, val any) (any, error) {
	if s, ok := val.(string); ok {
		return splitCommand(s)
	}
	return toList(o.Name, val)
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
			// Named by its key and kind only: an env value may be a secret.
			return nil, optErr(ErrBadType, name, "the value of %s is %s, not a string (quote it)", k, kindOf(v))
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

// kindOf names what kind of value val is, without the value itself.
func kindOf(val any) string {
	switch val.(type) {
	case bool:
		return describe(val) // true or false: no secret, and it says what YAML read
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a map"
	}
	return "a number"
}
