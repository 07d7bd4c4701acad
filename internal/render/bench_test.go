package render

import (
	"os"
	"testing"

	"github.com/rundock/rundock/internal/spec"
)

// BenchmarkRender measures parsing testdata/full.yaml (every option) and rendering it.
func BenchmarkRender(b *testing.B) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		services, err := spec.ParseYAML(data, "back-1")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Render(services[0]); err != nil {
			b.Fatal(err)
		}
	}
}
