package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/rundock/rundock/internal/version"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print rundock's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "rundock %s (%s)\n", version.Version, runtime.Version())
			return nil
		},
	}
}
