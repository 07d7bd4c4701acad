package dnsname

import (
	"strings"
	"testing"
)

func TestIsLabel(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{name: "letters", in: "web", want: true},
		{name: "digits and dash", in: "node-1", want: true},
		{name: "one character", in: "a", want: true},
		{name: "all digits", in: "123", want: true},
		{name: "63 characters", in: strings.Repeat("a", 63), want: true},
		{name: "ErrEmpty", in: ""},
		{name: "Err64Characters", in: strings.Repeat("a", 64)},
		{name: "ErrUppercase", in: "Web"},
		{name: "ErrUnderscore", in: "in_flux"},
		{name: "ErrLeadingDash", in: "-web"},
		{name: "ErrTrailingDash", in: "web-"},
		{name: "ErrDot", in: "a.b"},
		{name: "ErrIPv6", in: "::1"},
		{name: "ErrSpace", in: "a b"},
		{name: "ErrNonASCII", in: "wéb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsLabel(tt.in); got != tt.want {
				t.Fatalf("IsLabel(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestIsHostName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{name: "single label", in: "localhost", want: true},
		{name: "fqdn", in: "backend-1.example.net", want: true},
		{name: "final dot", in: "backend-1.example.net.", want: true},
		{name: "any case", in: "Backend.Example.NET", want: true},
		{name: "253 characters", in: strings.Repeat(strings.Repeat("a", 49)+".", 5) + "abc", want: true},
		{name: "ErrEmpty", in: ""},
		{name: "ErrDotOnly", in: "."},
		{name: "Err254Characters", in: strings.Repeat(strings.Repeat("a", 49)+".", 5) + "abcd"},
		{name: "ErrEmptyLabel", in: "a..b"},
		{name: "ErrInjection", in: "10.0.0.4; include /etc/passwd"},
		{name: "ErrIPv6", in: "fd00::1"},
		{name: "ErrUnderscore", in: "my_host.example.com"},
		{name: "ErrKelvinSign", in: "\u212aube.example.com"}, // strings.ToLower makes it "kube"
		{name: "ErrDottedCapitalI", in: "\u0130nfra.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsHostName(tt.in); got != tt.want {
				t.Fatalf("IsHostName(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestCheckDomain(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // substring of the error; "" for none
	}{
		{name: "ok", in: "s.prod.example.com"},
		{name: "single label", in: "local"},
		{name: "ErrFinalDot", in: "example.com.", want: "without the final dot"},
		{name: "ErrBadLabel", in: "s.Prod.example.com", want: `label "Prod"`},
		{name: "ErrEmptyLabel", in: "s..example.com", want: `label ""`},
		{name: "ErrEmpty", in: "", want: `label ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckDomain(tt.in)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			case err != nil && !strings.Contains(err.Error(), Rule) && tt.want != "without the final dot":
				t.Fatalf("error %v does not say the rule", err)
			}
		})
	}
}

// FuzzIsLabel: whatever IsLabel accepts is a one-label host name and a valid domain.
func FuzzIsLabel(f *testing.F) {
	for _, s := range []string{"web", "node-1", "-a", "a.b", "::1", strings.Repeat("z", 63)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if IsLabel(s) && (!IsHostName(s) || CheckDomain(s) != nil) {
			t.Fatalf("%q is a label but not a host name or domain", s)
		}
	})
}
