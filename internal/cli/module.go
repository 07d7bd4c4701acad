package cli

import (
	"context"
	"io"
	"os"
	"strings"

	"github.com/rundock/rundock/internal/ansible"
)

// IsModuleInvocation reports whether args is Ansible's `rundock ARGSFILE`: exactly one
// argument that is not a subcommand and names an existing regular file.
func IsModuleInvocation(args []string) bool {
	if len(args) != 1 {
		return false
	}
	// Ansible passes a path with a slash, which no subcommand name holds: only a bare name
	// needs the command tree, whose construction is a tenth of the module's start-up.
	if !strings.Contains(args[0], "/") && isCommand(args[0]) {
		return false
	}
	fi, err := os.Stat(args[0])
	return err == nil && fi.Mode().IsRegular()
}

// isCommand reports whether name is a subcommand, an alias of one, or cobra's own.
func isCommand(name string) bool {
	switch name {
	case "help", "completion":
		return true
	}
	for _, c := range NewRoot().Commands() {
		if c.Name() == name || c.HasAlias(name) {
			return true
		}
	}
	return false
}

// RunModule runs the Ansible module on the args file and returns the exit code.
func RunModule(ctx context.Context, argsFile string, w io.Writer) int {
	return ansible.Run(ctx, argsFile, hostName(), w)
}
