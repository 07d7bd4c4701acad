package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rundock/rundock/internal/hostaddr"
)

func newAddrCmd() *cobra.Command {
	var iface string
	cmd := &cobra.Command{
		Use:   "addr public|private|public6|private6",
		Short: "Print this host's public or private IPv4 or IPv6 address (found over netlink)",
		Long: `Print this host's public or private IPv4 address, or with public6 and private6 its
IPv6 address (the interface of the IPv6 default route; the first ULA fd00::/8 address). The
rendered run scripts call it to expand $PUBLIC_IP, $PRIVATE_IP, $PUBLIC_IP6, $PRIVATE_IP6 and
$ANNOUNCE_IP when the container starts.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"public", "private", "public6", "private6"},
		RunE: func(cmd *cobra.Command, args []string) error {
			ip, err := hostaddr.Lookup(args[0], iface)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), ip)
			return nil
		},
	}
	cmd.Flags().StringVar(&iface, "interface", "", "take the address from this interface (default: chosen automatically)")
	return cmd
}
