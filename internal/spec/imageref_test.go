package spec

import (
	// go-digest knows sha384 and sha512 only when crypto/sha512 is linked, as it is in
	// rundock (TLS): the same here, or the reference below would refuse their digests.
	_ "crypto/sha512"
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// imageRefCases are the edges of the grammar: registries, ports, IPv6, separators, tags,
// digests, IDs, lengths and capitals.
var imageRefCases = []string{
	"", "nginx", "nginx:1.27", "nginx:latest@sha256:" + strings.Repeat("a", 64), "library/nginx",
	"docker.io/nginx", "index.docker.io/nginx", "docker.io/library/nginx", "tutum/influxdb:latest",
	"Tutum/InfluxDB:Latest", "tutum/InfluxDB", "Tutum/influxdb", "localhost/x", "localhost:5000/x",
	"localhost:5000", "localhost", "example.com", "example.com/a/b/c:tag", "EXAMPLE.com/a",
	"exa_mple.com/a", "-example.com/a", "example-.com/a", "ex--ample.com/a", "a.b.c:99999/x",
	"a:/x", "a:b/x", ":5000/x", "[::1]:5000/x", "[::1]/x", "[]/x", "[::g]/x", "[::1]:/x",
	"[::1", "a/b__c", "a/b___c", "a/b._c", "a/b-_c", "a/b---c", "a/b.c", "a/.b", "a/b.", "a//b",
	"a/b/", "/a", "a_b", "a__b", "a-b", "-a", "a-", "ng inx", "nginx$(id)", "--privileged",
	"nginx:", "nginx:.x", "nginx:-x", "nginx:_x", "nginx:X.y-Z_1", "nginx:" + strings.Repeat("t", 128),
	"nginx:" + strings.Repeat("t", 129), "nginx@sha256:" + strings.Repeat("a", 63),
	"nginx@sha256:" + strings.Repeat("A", 64), "nginx@sha512:" + strings.Repeat("0", 128),
	"nginx@sha384:" + strings.Repeat("0", 96), "nginx@md5:" + strings.Repeat("0", 32),
	"nginx@sha256:" + strings.Repeat("a", 64) + "@x", "nginx@", "@sha256:" + strings.Repeat("a", 64),
	"sha256:" + strings.Repeat("a", 64), "sha256:" + strings.Repeat("a", 65), strings.Repeat("a", 64),
	strings.Repeat("A", 64), strings.Repeat("a", 63), strings.Repeat("a", 65), "nginx:1:2",
	strings.Repeat("a", 246), strings.Repeat("a", 247), "x/" + strings.Repeat("a", 254),
	"example.com/" + strings.Repeat("a", 255), "example.com/" + strings.Repeat("a", 256),
	"a.b/" + strings.Repeat("a", 256), "nginx\n", "ñginx", "a/ñ", "Ñ/a", "a:b", "a:b/c:d",
	"localhost:5000/Foo", "foo.com:5000/bar:Tag", "a.b@sha256:" + strings.Repeat("a", 64),
}

// TestImageRef_AsDistributionReference: the hand-written checks accept and refuse what
// distribution/reference does.
func TestImageRef_AsDistributionReference(t *testing.T) {
	for _, s := range imageRefCases {
		t.Run(s, func(t *testing.T) { sameAsReference(t, s) })
	}
}

// FuzzImageRef holds the checks to distribution/reference on any string
// (go test -fuzz FuzzImageRef ./internal/spec).
func FuzzImageRef(f *testing.F) {
	for _, s := range imageRefCases {
		f.Add(s)
	}
	f.Fuzz(sameAsReference)
}

func sameAsReference(t *testing.T, s string) {
	_, want := reference.ParseNormalizedNamed(s)
	if got := parseNormalizedNamed(s); (got == nil) != (want == nil) {
		t.Errorf("parseNormalizedNamed(%q) = %v, reference.ParseNormalizedNamed: %v", s, got, want)
	}
	_, want = reference.ParseAnyReference(s)
	if got := parseAnyImageRef(s); (got == nil) != (want == nil) {
		t.Errorf("parseAnyImageRef(%q) = %v, reference.ParseAnyReference: %v", s, got, want)
	}
}
