package spec

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestFromMap_DependsOn(t *testing.T) {
	tests := []struct {
		name string
		val  any
		want []Dependency
	}{
		{"yaml list", []any{"db", "cache:started", "queue:healthy"},
			[]Dependency{{"db", ConditionHealthy}, {"cache", ConditionStarted}, {"queue", ConditionHealthy}}},
		{"key=value comma list", "db, cache:started",
			[]Dependency{{"db", ConditionHealthy}, {"cache", ConditionStarted}}},
		{"spaces around the colon", []any{"db : started"}, []Dependency{{"db", ConditionStarted}}},
		{"left out", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := FromMap(map[string]any{"name": "app", "image": "app:1", "depends_on": tt.val}, "back-1")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.Deps, tt.want) {
				t.Errorf("Deps = %v, want %v", s.Deps, tt.want)
			}
			// Validate (what render calls) parses it again to the same.
			v, err := Validate(s)
			if err != nil || !reflect.DeepEqual(v.Deps, tt.want) {
				t.Errorf("Validate: %v, %v", v.Deps, err)
			}
		})
	}
}

func TestFromMap_DependsOn_Errors(t *testing.T) {
	tests := []struct {
		name string
		val  any
		kind error
		msg  string
	}{
		{"not a label", []any{"my_db"}, ErrBadValue, `"my_db" is not a DNS label`},
		{"upper case", []any{"DB"}, ErrBadValue, `(try "db")`},
		{"empty name", []any{":started"}, ErrBadValue, "is not a DNS label"},
		{"unknown condition", []any{"db:ready"}, ErrBadValue, `"ready" is not a condition (use NAME, NAME:healthy or NAME:started)`},
		{"compose condition", []any{"db:service_healthy"}, ErrBadValue, "use db:healthy"},
		{"itself", []any{"app"}, ErrBadValue, "is the service itself"},
		{"twice", []any{"db", "db:started"}, ErrBadValue, `"db" is listed twice`},
		{"a map", map[string]any{"db": "x"}, ErrBadType, "is not a list"},
		{"a map item", []any{map[string]any{"name": "db"}}, ErrBadType, "item 1 is a map"},
		{"control character", []any{"db\n"}, ErrBadValue, "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromMap(map[string]any{"name": "app", "image": "app:1", "depends_on": tt.val}, "back-1")
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %v is not %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), "option depends_on: ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not name depends_on and say %q", err, tt.msg)
			}
		})
	}
}

func TestParseYAML_DependsOn(t *testing.T) {
	svcs, err := ParseYAML([]byte("name: app\nimage: app:1\ndepends_on:\n  - db\n  - cache:started\n"), "back-1")
	if err != nil {
		t.Fatal(err)
	}
	want := []Dependency{{"db", ConditionHealthy}, {"cache", ConditionStarted}}
	if !reflect.DeepEqual(svcs[0].Deps, want) {
		t.Errorf("Deps = %v, want %v", svcs[0].Deps, want)
	}
}
