package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rundock/rundock/internal/apply"
	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/spec"
)

// shortID is an image ID as docker images shows it.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// ServiceStatus is one line of `rundock status`.
type ServiceStatus struct {
	Name string `json:"name"`
	apply.Status
}

func newStatusCmd() *cobra.Command {
	var svDir, serviceDir, output string
	cmd := &cobra.Command{
		Use:   "status [NAME...]",
		Short: "Show the runit and container state of services (all installed ones by default)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("cannot print output %q: use --output text or --output json", output)
			}
			names := args
			if len(names) == 0 {
				entries, err := os.ReadDir(svDir)
				if err != nil {
					return fmt.Errorf("cannot list sv_dir %s: %w (set --sv-dir)", svDir, err)
				}
				for _, e := range entries {
					if n, ok := strings.CutPrefix(e.Name(), "docker-"); ok && e.IsDir() {
						names = append(names, n)
					}
				}
			}
			var out []ServiceStatus
			for _, n := range names {
				svc := spec.Service{Name: n, SvDir: svDir, ServiceDir: serviceDir}
				if _, err := os.Lstat(filepath.Join(svDir, render.Dir(n))); err != nil && len(args) > 0 {
					return fmt.Errorf("cannot show %s: no tree %s (is the name right? is --sv-dir %s right?)", n, filepath.Join(svDir, render.Dir(n)), svDir)
				}
				st, err := apply.GetStatus(cmd.Context(), svc, nil)
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: %v\n", n, err)
				}
				out = append(out, ServiceStatus{Name: n, Status: st})
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tLINKED\tSERVICE\tANNOUNCER\tCONTAINER\tIMAGE\tLAST DEPLOY")
			for _, s := range out {
				ann := "-"
				if s.Announcer != nil {
					ann = s.Announcer.String()
				}
				if s.Maintenance {
					ann += ", maintenance"
					if s.MaintenanceReason != "" {
						ann += " (" + s.MaintenanceReason + ")"
					}
				}
				c, img := s.Container, "-"
				if c == "" {
					c = "none"
				} else {
					img = s.Image + " " + shortID(s.ImageID)
				}
				dep := "-"
				if d := s.Deploy; d != nil {
					dep = d.Outcome + " " + d.Image + " " + d.Started.Local().Format("2006-01-02 15:04:05")
					if d.RolledBackTo != "" {
						dep += " (rolled back to " + d.RolledBackTo + ")"
					}
				}
				fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Linked, s.Service.String(), ann, c, img, dep)
			}
			for _, s := range out {
				if d := s.Deploy; d != nil && d.Reason != "" {
					fmt.Fprintf(tw, "%s: last deploy %s: %s\n", s.Name, d.Outcome, d.Reason)
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&svDir, "sv-dir", spec.DefaultSvDir, "where service trees are")
	cmd.Flags().StringVar(&serviceDir, "service-dir", spec.DefaultServiceDir, "the directory runsvdir watches")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text|json")
	return cmd
}
