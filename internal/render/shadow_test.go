package render

import (
	"reflect"
	"testing"

	"github.com/rundock/rundock/internal/spec"
)

// TestShadow_SameValues: every runData field named like a Service field holds the
// Service's value after shadow (Deps and Drain are runData's own: the dependencies with
// their trees, and the drain only when announced), so the templates read the same values
// at the top level as promoted.
func TestShadow_SameValues(t *testing.T) {
	var s spec.Service
	sv := reflect.ValueOf(&s).Elem()
	for i := range sv.NumField() {
		f := sv.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("v" + sv.Type().Field(i).Name)
		case reflect.Int:
			f.SetInt(int64(1000 + i))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		}
	}
	s.Host6 = "::1" // Dual
	var d runData
	d.shadow(s)
	dv, dt := reflect.ValueOf(d), reflect.TypeOf(d)
	checked := 0
	for i := range dt.NumField() {
		f := dt.Field(i)
		if f.Anonymous || f.Name == "Deps" || f.Name == "Drain" {
			continue
		}
		if sf, ok := reflect.TypeOf(s).FieldByName(f.Name); ok {
			checked++
			if !reflect.DeepEqual(dv.Field(i).Interface(), sv.FieldByIndex(sf.Index).Interface()) {
				t.Errorf("runData.%s = %v, Service.%s = %v", f.Name, dv.Field(i), f.Name, sv.FieldByIndex(sf.Index))
			}
		}
		if m, ok := reflect.TypeOf(s).MethodByName(f.Name); ok {
			checked++
			want := m.Func.Call([]reflect.Value{reflect.ValueOf(s)})[0].Interface()
			if !reflect.DeepEqual(dv.Field(i).Interface(), want) {
				t.Errorf("runData.%s = %v, Service.%s() = %v", f.Name, dv.Field(i), f.Name, want)
			}
		}
	}
	if checked < 40 {
		t.Errorf("checked %d shadowed fields, want the 40 or more runData declares", checked)
	}
}
