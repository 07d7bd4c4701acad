package spec

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// Kind is the type of an option's value. It decides how a value is read (coerce.go), how
// the CLI flag takes it and which Ansible type documents it.
type Kind int

// The kinds of option values.
const (
	KindString Kind = iota // a string
	KindPath               // a string naming a file or directory on the host
	KindInt                // an integer in a range
	KindBool               // yes/no
	KindList               // a list of strings
	KindMap                // a map of strings to strings (env)
)

// ansible is the kind's name in an Ansible argument spec.
func (k Kind) ansible() string {
	return [...]string{KindString: "str", KindPath: "path", KindInt: "int", KindBool: "bool", KindList: "list", KindMap: "dict"}[k]
}

// Option is the one declaration of an option (options.go holds them all): reading a value,
// its default, its checks, its CLI flag and its Ansible documentation all come from here.
type Option struct {
	// Name is the option's name in Ansible arguments and YAML; the CLI flag is the same
	// with '-' for '_'.
	Name string
	// Kind is the type of the option's value.
	Kind Kind

	help     string   // one line, plain text, for the CLI flag
	doc      []string // paragraphs for the Ansible documentation, with I() and C() markup
	def      any      // the default when the option is left out (its zero value); nil: none
	derived  string   // a default computed from other options (applyDefaults), in words
	choices  []string // the values allowed; checked by the option's check (oneOf)
	required bool     // documented as required; its check reports it missing

	// Integers: the range, and what a value is called in errors ("a port number").
	min, max int
	what     string
	// zeroUnset: 0 means "not set" and escapes the range (announce: no announcement).
	zeroUnset bool

	// coerce reads a value instead of the kind's reader (command splits a string like sh).
	coerce func(o *Option, val any) (any, error)
	// parse derives other fields from the read value once defaults are filled (args →
	// ArgWords); its error is reported in the option's turn of the checks.
	parse func(s *Service) error
	// check reports what is wrong with the value; nil: any value of the kind goes.
	check func(t target) error
}

// Usage is the help text of the option's CLI flag: the help line with the choices, the
// range and the default.
func (o Option) Usage() string {
	var notes []string
	if o.choices != nil {
		notes = append(notes, strings.Join(o.choices, "|"))
	}
	if o.Kind == KindInt {
		notes = append(notes, fmt.Sprintf("%d-%d", o.min, o.max))
	}
	if o.required {
		notes = append(notes, "required")
	}
	if d := o.defaultText(); d != "" {
		notes = append(notes, "default "+plain(d))
	}
	if o.Kind == KindList || o.Kind == KindMap {
		notes = append(notes, "repeatable")
	}
	if len(notes) == 0 {
		return o.help
	}
	return o.help + " (" + strings.Join(notes, "; ") + ")"
}

// defaultText is the default in words, literal or derived, with markup; "" for none.
func (o Option) defaultText() string {
	switch d := o.def.(type) {
	case nil:
		return o.derived
	case []string:
		return strings.Join(d, ",")
	default:
		return fmt.Sprint(d)
	}
}

var markupRe = regexp.MustCompile(`[IC]\(([^)]*)\)`)

// plain removes Ansible's I() and C() markup.
func plain(s string) string { return markupRe.ReplaceAllString(s, "$1") }

// AllOptions returns every option in declaration order, the order of the module
// documentation and of the checks.
func AllOptions() []Option { return slices.Clone(optionTable) }

// Options returns every option name, sorted.
func Options() []string { return sortedNames }

var (
	byName      = map[string]*Option{}
	fieldIndex  = map[string]int{} // option name → index of its Service field
	sortedNames []string
)

// init binds each declared option to the Service field of the same JSON name, and fails
// the program at start when the two disagree: a field nobody declared, or a declaration
// of the wrong kind.
func init() {
	t := reflect.TypeFor[Service]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			fieldIndex[name] = i
		}
	}
	want := map[Kind]reflect.Kind{KindString: reflect.String, KindPath: reflect.String, KindInt: reflect.Int,
		KindBool: reflect.Bool, KindList: reflect.Slice, KindMap: reflect.Map}
	for i := range optionTable {
		o := &optionTable[i]
		idx, ok := fieldIndex[o.Name]
		if !ok {
			panic("spec: option " + o.Name + " has no Service field")
		}
		if k := t.Field(idx).Type.Kind(); k != want[o.Kind] {
			panic(fmt.Sprintf("spec: option %s is declared %s, its field is %s", o.Name, o.Kind.ansible(), k))
		}
		if o.Kind == KindInt && o.what == "" {
			panic("spec: option " + o.Name + " has no range")
		}
		if _, dup := byName[o.Name]; dup {
			panic("spec: option " + o.Name + " is declared twice")
		}
		byName[o.Name] = o
		sortedNames = append(sortedNames, o.Name)
	}
	for name := range fieldIndex {
		if byName[name] == nil {
			panic("spec: Service field " + name + " is not declared in options.go")
		}
	}
	slices.Sort(sortedNames)
}

// field returns the Service field of option name.
func field(s *Service, name string) reflect.Value {
	return reflect.ValueOf(s).Elem().Field(fieldIndex[name])
}

// target is what a check sees: one option of a service whose defaults are filled.
type target struct {
	opt *Option
	s   *Service
	set map[string]bool // options the user gave; nil when unknown (Validate)
	bad map[string]bool // options already reported: unreadable or with a control character
	// host is the host's short name FromMap was given, lowercased; "" in Validate. The
	// instance and hostname defaults come from it when it is a DNS label.
	host string
}

// str is the value of a string option.
func (t target) str() string { return field(t.s, t.opt.Name).String() }

// strs is the value of a string option as a list of one, or of a list option.
func (t target) strs() []string {
	f := field(t.s, t.opt.Name)
	if f.Kind() == reflect.String {
		return []string{f.String()}
	}
	return f.Interface().([]string)
}
