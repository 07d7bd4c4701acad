package spec

import (
	"errors"
	"strings"
)

// The image reference grammar docker run accepts (distribution/reference, which the Docker
// CLI parses with), checked by hand: that package compiles a dozen regular expressions when
// a program starts, a sixth of the Ansible module's start-up, and every rundock run checks
// one image at most. imageref_test.go holds this to the package, case by case and by fuzzing.
//
//	reference := name [ ":" tag ] [ "@" digest ]
//	name      := [ domain [ ":" port ] "/" ] path-component { "/" path-component }
//	path-component := [a-z0-9]+ { ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ }
//	domain    := domain-component { "." domain-component } | "[" [a-fA-F0-9:]+ "]"
//	domain-component := [a-zA-Z0-9] | [a-zA-Z0-9] [a-zA-Z0-9-]* [a-zA-Z0-9]
//	tag       := [\w] [\w.-]{0,127}
//	digest    := ( "sha256" | "sha384" | "sha512" ) ":" lowercase hex of the hash's length

// maxRepoNameLen is the longest repository path (without the registry) Docker takes.
const maxRepoNameLen = 255

// parseNormalizedNamed checks s as a name Docker completes to a full one (nginx is
// docker.io/library/nginx): reference.ParseNormalizedNamed accepts exactly these.
func parseNormalizedNamed(s string) error {
	if isImageHex(s) {
		return errors.New("a 64-character hexadecimal string is an image ID, not a repository name")
	}
	domain, remainder := splitImageDomain(s)
	remote, _, _ := strings.Cut(remainder, ":")
	if strings.ToLower(remote) != remote {
		return errors.New("repository name must be lowercase")
	}
	return parseImageRef(domain + "/" + remainder)
}

// parseAnyImageRef also takes an image ID: 64 hex digits or a digest
// (reference.ParseAnyReference).
func parseAnyImageRef(s string) error {
	if isImageHex(s) || validDigest(s) {
		return nil
	}
	return parseNormalizedNamed(s)
}

// splitImageDomain splits off the registry as Docker decides there is one: a first
// component with a dot or colon, localhost or with capitals; else Docker Hub, whose
// one-component names are under library/.
func splitImageDomain(s string) (domain, remainder string) {
	first, rest, ok := strings.Cut(s, "/")
	switch {
	case !ok:
		return "docker.io", "library/" + s
	case first == "localhost" || strings.ContainsAny(first, ".:") || strings.ToLower(first) != first:
		domain, remainder = first, rest
	default:
		domain, remainder = "docker.io", s
	}
	if first == "index.docker.io" {
		domain = "docker.io"
	}
	if domain == "docker.io" && !strings.Contains(remainder, "/") {
		remainder = "library/" + remainder
	}
	return domain, remainder
}

// parseImageRef checks s against the reference grammar.
func parseImageRef(s string) error {
	name, digest, hasDigest := strings.Cut(s, "@")
	if hasDigest && !validDigest(digest) {
		return errors.New("invalid digest: want sha256, sha384 or sha512, a colon and the lowercase hex hash")
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		if !validTag(name[i+1:]) {
			return errors.New("invalid tag: up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'")
		}
		name = name[:i]
	}
	// With a registry, the repository path is what follows it (and what must fit 255).
	path := name
	if first, rest, ok := strings.Cut(name, "/"); ok && validDomain(first) && validRemote(rest) {
		path = rest
	} else if !validRemote(name) {
		if strings.ToLower(s) != s && parseImageRef(strings.ToLower(s)) == nil {
			return errors.New("repository name must be lowercase")
		}
		return errors.New("invalid repository name: lowercase letters and digits, separated by '.', '_', '__', '-' or '/'")
	}
	if len(path) > maxRepoNameLen {
		return errors.New("repository name must not be more than 255 characters")
	}
	return nil
}

// validRemote: path components joined by '/'.
func validRemote(s string) bool {
	for c := range strings.SplitSeq(s, "/") {
		if !validPathComponent(c) {
			return false
		}
	}
	return true
}

// validPathComponent: runs of [a-z0-9] separated by '.', '_', '__' or dashes.
func validPathComponent(s string) bool {
	i := 0
	for {
		j := i
		for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j == i {
			return false
		}
		if j == len(s) {
			return true
		}
		switch s[j] {
		case '.':
			j++
		case '_':
			j++
			if j < len(s) && s[j] == '_' {
				j++
			}
		case '-':
			for j < len(s) && s[j] == '-' {
				j++
			}
		default:
			return false
		}
		i = j
	}
}

// validDomain: a host name or a bracketed IPv6 address, and an optional :port.
func validDomain(s string) bool {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 2 || strings.Trim(s[1:end], "0123456789abcdefABCDEF:") != "" {
			return false
		}
		host, port = "", s[end+1:]
	} else if i := strings.IndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i:]
	}
	if port != "" && (port[0] != ':' || len(port) == 1 || strings.Trim(port[1:], "0123456789") != "") {
		return false
	}
	if host == "" {
		return strings.HasPrefix(s, "[")
	}
	for c := range strings.SplitSeq(host, ".") {
		if c == "" || c[0] == '-' || c[len(c)-1] == '-' || strings.Trim(c, alnum+"ABCDEFGHIJKLMNOPQRSTUVWXYZ-") != "" {
			return false
		}
	}
	return true
}

const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"

// validTag: [\w][\w.-]{0,127}.
func validTag(s string) bool {
	word := alnum + "ABCDEFGHIJKLMNOPQRSTUVWXYZ_"
	return len(s) >= 1 && len(s) <= 128 && strings.IndexByte(word, s[0]) >= 0 && strings.Trim(s, word+".-") == ""
}

// validDigest: a digest of an algorithm Docker knows, as go-digest validates one.
func validDigest(s string) bool {
	alg, hex, _ := strings.Cut(s, ":")
	size := 0
	switch alg {
	case "sha256":
		size = 64
	case "sha384":
		size = 96
	case "sha512":
		size = 128
	}
	return size > 0 && len(hex) == size && strings.Trim(hex, "0123456789abcdef") == ""
}

// isImageHex: 64 lowercase hex digits, an image ID without its sha256: prefix.
func isImageHex(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}
