package apply

import (
	"fmt"
	"strings"
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
	b.WriteString(unified(splitLines(d.Before), splitLines(d.After), 3))
	return b.String()
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

type edit struct {
	op   byte // ' ', '-', '+'
	line string
}

// edits computes a shortest line edit script with a longest-common-subsequence table;
// the files rundock renders are a few dozen lines, so O(n*m) is fine.
func edits(a, b []string) []edit {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []edit
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			out = append(out, edit{' ', a[i]})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			out = append(out, edit{'-', a[i]})
			i++
		default:
			out = append(out, edit{'+', b[j]})
			j++
		}
	}
	return out
}

func unified(a, b []string, context int) string {
	es := edits(a, b)
	var out strings.Builder
	for start := 0; start < len(es); {
		// Find the next change.
		for start < len(es) && es[start].op == ' ' {
			start++
		}
		if start == len(es) {
			break
		}
		lo := max(start-context, 0)
		// Extend the hunk while changes are within 2*context lines of each other.
		end := start
		for k := start; k < len(es); k++ {
			if es[k].op != ' ' {
				end = k
			} else if k-end > 2*context {
				break
			}
		}
		hi := min(end+context+1, len(es))
		ai, bi := 0, 0
		for _, e := range es[:lo] {
			if e.op != '+' {
				ai++
			}
			if e.op != '-' {
				bi++
			}
		}
		var an, bn int
		var body strings.Builder
		for _, e := range es[lo:hi] {
			if e.op != '+' {
				an++
			}
			if e.op != '-' {
				bn++
			}
			body.WriteByte(e.op)
			body.WriteString(e.line)
			if !strings.HasSuffix(e.line, "\n") {
				body.WriteString("\n\\ No newline at end of file\n")
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(ai, an), hunkRange(bi, bn))
		out.WriteString(body.String())
		start = hi
	}
	return out.String()
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}
