package apply

import (
	"fmt"
	"strings"

	"github.com/rundock/rundock/internal/diff"
)

// FileDiff is the change to one file: its content before and after ("" when it does not
// exist on that side), for Ansible's diff display and the CLI's dry run.
type FileDiff struct {
	Path   string `json:"path"`
	Before string `json:"before"`
	After  string `json:"after"`
	// BeforeMode and AfterMode are the permission bits ("0755"), "" when absent.
	BeforeMode string `json:"before_mode,omitempty"`
	AfterMode  string `json:"after_mode,omitempty"`
}

// Unified returns the change as a unified diff with three lines of context. A mode-only
// change is shown as a "mode" header line.
func (d FileDiff) Unified() string {
	var b strings.Builder
	from, to := "a/"+d.Path, "b/"+d.Path
	if d.BeforeMode == "" {
		from = "/dev/null"
	}
	if d.AfterMode == "" {
		to = "/dev/null"
	}
	fmt.Fprintf(&b, "--- %s\n+++ %s\n", from, to)
	if d.BeforeMode != "" && d.AfterMode != "" && d.BeforeMode != d.AfterMode {
		fmt.Fprintf(&b, "mode %s -> %s\n", d.BeforeMode, d.AfterMode)
	}
	b.WriteString(diff.Hunks(d.Before, d.After, 3))
	return b.String()
}
