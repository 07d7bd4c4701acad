package spec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const (
	docTemplate = "../../templates/module-doc.yml.tmpl"
	docFile     = "../../module/rundock.yml"
)

// The committed module documentation is the one the option table generates.
func TestModuleDoc_Current(t *testing.T) {
	tmpl, err := os.ReadFile(docTemplate)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ModuleDoc(string(tmpl))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		i := 0
		for i < len(gl) && i < len(wl) && gl[i] == wl[i] {
			i++
		}
		line := func(l []string) string {
			if i < len(l) {
				return l[i]
			}
			return "(end of file)"
		}
		t.Fatalf("module/rundock.yml is not what internal/spec/options.go and templates/module-doc.yml.tmpl generate: run make generate\n"+
			"first difference at line %d:\n committed: %s\n generated: %s", i+1, line(gl), line(wl))
	}
}

// YAML reads back from the generated documentation what the table declares, for every
// option and nothing else.
func TestModuleDoc_Options(t *testing.T) {
	tmpl, err := os.ReadFile(docTemplate)
	if err != nil {
		t.Fatal(err)
	}
	data, err := ModuleDoc(string(tmpl))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Documentation struct {
			Options map[string]struct {
				Description any      `yaml:"description"`
				Type        string   `yaml:"type"`
				Elements    string   `yaml:"elements"`
				Required    bool     `yaml:"required"`
				Choices     []string `yaml:"choices"`
				Default     any      `yaml:"default"`
			} `yaml:"options"`
		} `yaml:"DOCUMENTATION"`
		Examples string         `yaml:"EXAMPLES"`
		Return   map[string]any `yaml:"RETURN"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("the generated documentation is not YAML: %v", err)
	}
	if doc.Examples == "" || doc.Return["changed"] == nil {
		t.Error("EXAMPLES or RETURN missing")
	}
	var names []string
	for name := range doc.Documentation.Options {
		names = append(names, name)
	}
	slices.Sort(names)
	if !slices.Equal(names, Options()) {
		t.Fatalf("documented options %v, declared %v", names, Options())
	}
	for _, o := range AllOptions() {
		t.Run(o.Name, func(t *testing.T) {
			d := doc.Documentation.Options[o.Name]
			var desc []string
			switch x := d.Description.(type) {
			case string:
				desc = []string{x}
			case []any:
				for _, p := range x {
					desc = append(desc, fmt.Sprint(p))
				}
			}
			if want := o.docParagraphs(); !slices.Equal(desc, want) {
				t.Errorf("description %q, want %q", desc, want)
			}
			if d.Type != o.Kind.ansible() || (o.Kind == KindList) != (d.Elements == "str") {
				t.Errorf("type %s elements %q, want %s", d.Type, d.Elements, o.Kind.ansible())
			}
			if d.Required != o.required || !slices.Equal(d.Choices, o.choices) {
				t.Errorf("required %v choices %v, want %v %v", d.Required, d.Choices, o.required, o.choices)
			}
			want := o.def
			switch x := want.(type) {
			case State:
				want = string(x)
			case []string:
				var l []any
				for _, s := range x {
					l = append(l, s)
				}
				want = l
			}
			if !reflect.DeepEqual(d.Default, want) {
				t.Errorf("default %#v, want %#v", d.Default, want)
			}
		})
	}
}

// What the table declares is what FromMap does: the defaults, the required options, the
// choices and the ranges.
func TestOptions_Declared(t *testing.T) {
	base := map[string]any{"name": "web", "image": "nginx"}
	s, err := FromMap(base, "h")
	if err != nil {
		t.Fatal(err)
	}
	// Options that take effect only with others: their choices and ranges are tried with
	// these set too.
	companions := map[string]map[string]any{
		"update":       {"announce": 80, "announce_as": "container"},
		"update_port":  {"update": "start-first"},
		"announce_as6": {"announce": 80},
	}
	with := func(name string, m map[string]any) map[string]any {
		for k, v := range companions[name] {
			m[k] = v
		}
		return m
	}
	for _, o := range AllOptions() {
		t.Run(o.Name, func(t *testing.T) {
			if o.Usage() == "" || len(o.doc) == 0 {
				t.Error("no help or no documentation")
			}
			if o.def != nil {
				got := field(&s, o.Name).Interface()
				want := reflect.ValueOf(o.def)
				if !reflect.DeepEqual(got, want.Convert(reflect.TypeOf(got)).Interface()) {
					t.Errorf("default %#v, want %#v", got, o.def)
				}
			}
			if o.required {
				m := map[string]any{"name": "web", "image": "nginx", o.Name: nil}
				if _, err := FromMap(m, "h"); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "option "+o.Name) {
					t.Errorf("without %s: error %v, want ErrMissing naming it", o.Name, err)
				}
			}
			for _, c := range o.choices {
				if _, err := FromMap(with(o.Name, map[string]any{"name": "web", "image": "nginx", o.Name: c}), "h"); err != nil {
					t.Errorf("choice %q: %v", c, err)
				}
			}
			if o.Kind == KindInt {
				for _, n := range []int{o.min, o.max} {
					m := with(o.Name, map[string]any{"name": "web", "image": "nginx", "announce": 80, o.Name: n})
					if _, err := FromMap(m, "h"); err != nil {
						t.Errorf("%d: %v", n, err)
					}
				}
				for _, n := range []int{o.min - 1, o.max + 1} {
					m := with(o.Name, map[string]any{"name": "web", "image": "nginx", "announce": 80, o.Name: n})
					if _, err := FromMap(m, "h"); !errors.Is(err, ErrBadValue) {
						t.Errorf("%d: error %v, want ErrBadValue", n, err)
					}
				}
			}
		})
	}
}
