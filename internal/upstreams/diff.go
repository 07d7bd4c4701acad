package upstreams

import "github.com/rundock/rundock/internal/diff"

// Diff returns a unified diff (3 lines of context) from old to new, "" when they are equal.
func Diff(oldName, newName string, old, new []byte) string {
	return diff.Unified(oldName, newName, string(old), string(new))
}
