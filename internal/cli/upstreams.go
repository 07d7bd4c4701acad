package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// newUpstreamsCmd builds `rundock upstreams`: nginx upstream blocks rendered from the
// SkyDNS records in etcd.
func newUpstreamsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "upstreams",
		Short: "Render nginx upstreams from the SkyDNS records in etcd",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("rundock upstreams: not implemented yet")
		},
	}
}
