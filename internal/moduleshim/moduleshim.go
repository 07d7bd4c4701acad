// Package moduleshim finds the rundock a small Ansible module runs in its place.
//
// Ansible copies a binary module to the target for every task and runs it there. The
// rundock binary is 11 MiB; a module that only reads bin_dir from its arguments and execs
// the rundock installed there (which the rendered run scripts need on the host anyway) is
// about 2 MiB, and each task copies that instead. The installed rundock reads the same
// arguments file, so the two behave alike: the shim adds no option and checks none but
// the one it needs to find rundock.
package moduleshim

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rundock/rundock/internal/defaults"
)

// Target returns the rundock to run for the Ansible arguments file argsFile: bin_dir's
// rundock, or defaults.BinDir's when the task names no bin_dir. The error says what was
// wrong and how to fix it.
func Target(argsFile string) (string, error) {
	data, err := os.ReadFile(argsFile)
	if err != nil {
		return "", fmt.Errorf("cannot read the module's arguments: %w", err)
	}
	var args map[string]any
	if err := json.Unmarshal(data, &args); err != nil {
		return "", fmt.Errorf("cannot read the module's arguments %s: %w", argsFile, err)
	}
	dir := defaults.BinDir
	if v, ok := args["bin_dir"]; ok && v != nil {
		s, ok := v.(string)
		if !ok || !filepath.IsAbs(s) {
			return "", fmt.Errorf("bin_dir %v: write it as an absolute path, the directory rundock is installed in", v)
		}
		dir = s
	}
	exe := filepath.Join(dir, "rundock")
	fi, err := os.Stat(exe)
	switch {
	case err != nil:
		return "", fmt.Errorf("rundock is not installed at %s (%v): install it there (the Debian package, or the binary with the announcer), or set bin_dir to where it is", exe, err)
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("%s is not an executable file (mode %s): install rundock there, or set bin_dir to where it is", exe, fi.Mode())
	}
	return exe, nil
}

// Failed is the module result of a failure, as Ansible reads it from stdout.
func Failed(err error) []byte {
	b, _ := json.Marshal(map[string]any{"failed": true, "changed": false, "msg": "rundock module: " + err.Error()})
	return append(b, '\n')
}
