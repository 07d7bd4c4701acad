package cli

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/rundock/rundock/internal/defaults"
	"github.com/rundock/rundock/internal/dnsname"
	"github.com/rundock/rundock/internal/svlog"
)

// logsOptions are the flags and argument of rundock logs.
type logsOptions struct {
	Name      string
	LogDir    string
	Announcer bool
	Follow    bool
	Lines     string // a number or "all"
	UTC       bool
	Poll      time.Duration // how often -f looks for new lines; tests shorten it
	Out       io.Writer
}

func newLogsCmd() *cobra.Command {
	return newCmdLogs(nil)
}

// newCmdLogs builds the logs command; runF replaces logsRun in tests.
func newCmdLogs(runF func(*cobra.Command, *logsOptions) error) *cobra.Command {
	o := &logsOptions{}
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print the svlogd log of a service with local timestamps",
		Long: `Print the last lines of a service's svlogd log (LOG_DIR/NAME, or LOG_DIR/NAME.announcer
with --announcer), across the rotated @*.s files and current, with svlogd's UTC (-tt) or
TAI64N (-t) timestamps shown in local time. -f keeps printing new lines, across rotations,
until interrupted.`,
		Example: `  rundock logs influxdb            # the last 10 lines
  rundock logs influxdb -n all -f   # everything, then follow
  rundock logs influxdb --announcer -n 50`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			o.Out = cmd.OutOrStdout()
			if runF != nil {
				return runF(cmd, o)
			}
			return logsRun(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.LogDir, "log-dir", defaults.LogDir, "the log_dir the service was applied with")
	f.BoolVar(&o.Announcer, "announcer", false, "the announcer's log (LOG_DIR/NAME.announcer) instead of the container's")
	f.BoolVarP(&o.Follow, "follow", "f", false, "keep printing new lines, across log rotations, until interrupted")
	f.StringVarP(&o.Lines, "lines", "n", "10", `how many of the last lines to print, or "all"`)
	f.BoolVar(&o.UTC, "utc", false, "show timestamps in UTC instead of local time")
	return cmd
}

// logsRun prints the log; with Follow it returns when cmd's context is done.
func logsRun(cmd *cobra.Command, o *logsOptions) error {
	n, err := parseLines(o.Lines)
	if err != nil {
		return err
	}
	if !dnsname.IsLabel(o.Name) {
		return fmt.Errorf("cannot read the log of %q: a service name is a DNS label (a-z, 0-9, -)", o.Name)
	}
	dir := filepath.Join(o.LogDir, o.Name)
	what := "service " + o.Name
	if o.Announcer {
		dir += ".announcer"
		what = "the announcer of " + o.Name
	}
	loc := time.Local
	if o.UTC {
		loc = time.UTC
	}
	lines, pos, err := svlog.Tail(dir, n)
	if errors.Is(err, svlog.ErrNoLog) {
		return fmt.Errorf("no log for %s: %w (was it applied with log enabled and started? is --log-dir right?)", what, err)
	}
	if err != nil {
		return err
	}
	for _, l := range lines {
		if _, err := fmt.Fprintln(o.Out, svlog.Format(l, loc)); err != nil {
			return err
		}
	}
	if !o.Follow {
		return nil
	}
	return svlog.Follow(cmd.Context(), dir, pos, o.Poll, func(l svlog.Line) error {
		_, err := fmt.Fprintln(o.Out, svlog.Format(l, loc))
		return err
	})
}

// parseLines reads -n: a count of lines, or "all" (as journalctl -n all).
func parseLines(s string) (int, error) {
	if s == "all" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("cannot use -n %q: give a number of lines (0 or more) or all", s)
	}
	return n, nil
}
