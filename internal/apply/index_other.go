//go:build !linux

package apply

import "io/fs"

// Without Linux's stat fields the index records nothing: every run compares every file.
func sigOf(fs.FileInfo) (statSig, bool) { return statSig{}, false }

func lstatSig(string) (statSig, bool) { return statSig{}, false }
