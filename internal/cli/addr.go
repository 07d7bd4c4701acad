package cli

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/rundock/rundock/internal/hostaddr"
)

func newAddrCmd() *cobra.Command {
	var iface string
	cmd := &cobra.Command{
		Use:   "addr public|private",
		Short: "Print this host's public or private IPv4 address (found over netlink)",
		Long: `Print this host's public or private IPv4 address. The rendered run scripts call it to
expand $PUBLIC_IP, $PRIVATE_IP and $ANNOUNCE_IP when the container starts.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"public", "private"},
		RunE: func(cmd *cobra.Command, args []string) error {
			var ip net.IP
			var err error
			switch args[0] {
			case "public":
				ip, err = hostaddr.Public(iface)
			case "private":
				ip, err = hostaddr.Private(iface)
			default:
				return fmt.Errorf("cannot look up address kind %q: use public or private", args[0])
			}
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
