package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rundock/rundock/internal/apply"
	"github.com/rundock/rundock/internal/defaults"
)

// maintOptions are the flags of `rundock maint`.
type maintOptions struct {
	svDir, reason string
}

func newMaintCmd() *cobra.Command {
	o := &maintOptions{}
	cmd := &cobra.Command{
		Use:   "maint NAME on|off [--reason TEXT]",
		Short: "Withdraw a service's DNS record without stopping its container, or publish it again",
		Long: `maint on withdraws the service's record (the announcer holds it back) while the container
keeps running, until maint off. The mode is a file in the service's tree, so it survives
announcer and host restarts; rundock status shows it and the reason.`,
		Example: `  rundock maint web on --reason "reindexing"
  rundock maint web off`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return maintRun(cmd, o, args[0], args[1])
		},
	}
	cmd.Flags().StringVar(&o.svDir, "sv-dir", defaults.SvDir, "where service trees are")
	cmd.Flags().StringVar(&o.reason, "reason", "", "why, shown by rundock status")
	return cmd
}

func maintRun(cmd *cobra.Command, o *maintOptions, name, mode string) error {
	var on bool
	switch mode {
	case "on":
		on = true
	case "off":
		if o.reason != "" {
			return fmt.Errorf("--reason %q goes with maint on, not off", o.reason)
		}
	default:
		return fmt.Errorf("cannot set maintenance %q: use on or off (rundock maint %s on|off)", mode, name)
	}
	changed, err := apply.Maintenance(cmd.Context(), o.svDir, name, on, o.reason)
	if err != nil {
		return err
	}
	verb := "ok"
	if changed {
		verb = "changed"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: %s: maintenance %s\n", name, verb, mode)
	return nil
}
