// Package diff makes unified diffs of the small text files rundock writes (runit scripts,
// nginx upstreams): what check mode, --dry-run and Ansible's --diff show.
package diff

import (
	"fmt"
	"strings"
)

// Unified returns a unified diff from a to b with three lines of context, under the headers
// --- fromName and +++ toName; "" when a and b are equal.
func Unified(fromName, toName, a, b string) string {
	if a == b {
		return ""
	}
	return fmt.Sprintf("--- %s\n+++ %s\n", fromName, toName) + Hunks(a, b, 3)
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

// Hunks returns the hunks of a unified diff from a to b, with context lines of context
// around each change; "" when a and b are equal.
func Hunks(a, b string, context int) string {
	es := edits(splitLines(a), splitLines(b))
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
