// Package cli is the rundock command line: apply, status, addr, version, completion and
// upstreams, built with cobra. cmd/rundock only runs it and maps errors to exit codes.
package cli

import (
	"context"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// NewRoot builds the rundock command tree.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "rundock",
		Short: "Run Docker containers under runit, announced in DNS through etcd",
		Long: `rundock renders runit service trees (sv_dir/docker-NAME) that run one Docker container
each, idempotently, and links them into service_dir. It also runs as an Ansible binary
module: "rundock ARGSFILE".`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetGlobalNormalizationFunc(normalize)
	root.AddCommand(newApplyCmd(), newStatusCmd(), newMaintCmd(), newAddrCmd(), newVersionCmd(), newUpstreamsCmd())
	root.AddCommand(newLogsCmd())
	return root
}

// normalize lets every flag be spelled with '-' or '_' (--announce-as, --announce_as),
// so the option names of YAML files and Ansible work as flags unchanged.
func normalize(f *pflag.FlagSet, name string) pflag.NormalizedName {
	return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
}

// Execute runs the command line with args and returns the error to report.
func Execute(ctx context.Context, args []string) error {
	root := NewRoot()
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// hostName is the short, lowercased host name used for the hostname and instance defaults.
func hostName() string {
	h, _ := os.Hostname()
	h, _, _ = strings.Cut(strings.ToLower(h), ".")
	return h
}

func logger(cmd *cobra.Command) *slog.Logger {
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}
