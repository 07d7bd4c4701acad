package diff

import "testing"

func TestUnified(t *testing.T) {
	tests := []struct {
		name, a, b, want string
	}{
		{name: "equal", a: "x\ny\n", b: "x\ny\n", want: ""},
		{name: "new file", a: "", b: "a\n", want: "--- old\n+++ new\n@@ -0,0 +1 @@\n+a\n"},
		{name: "one line changed", a: "1\n2\n3\n4\n5\n6\n7\n8\n", b: "1\n2\n3\n4\nfive\n6\n7\n8\n",
			want: "--- old\n+++ new\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"},
		{name: "no newline at end", a: "a\n", b: "a\nb",
			want: "--- old\n+++ new\n@@ -1 +1,2 @@\n a\n+b\n\\ No newline at end of file\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Unified("old", "new", tt.a, tt.b); got != tt.want {
				t.Fatalf("Unified =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
