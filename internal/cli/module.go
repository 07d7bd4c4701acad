package cli

import (
	"context"
	"io"
	"os"

	"github.com/rundock/rundock/internal/ansible"
)

// IsModuleInvocation reports whether args is Ansible's `rundock ARGSFILE`: exactly one
// argument that is not a subcommand and names an existing regular file.
func IsModuleInvocation(args []string) bool {
	if len(args) != 1 {
		return false
	}
	for _, c := range NewRoot().Commands() {
		if c.Name() == args[0] || c.HasAlias(args[0]) {
			return false
		}
	}
	switch args[0] {
	case "help", "completion":
		return false
	}
	fi, err := os.Stat(args[0])
	return err == nil && fi.Mode().IsRegular()
}

// RunModule runs the Ansible module on the args file and returns the exit code.
func RunModule(ctx context.Context, argsFile string, w io.Writer) int {
	return ansible.Run(ctx, argsFile, hostName(), w)
}
