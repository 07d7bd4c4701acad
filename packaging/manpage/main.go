// Command manpage writes the manual pages of rundock(1) and announcer(1) from their cobra
// command trees, so the pages say what --help says. packaging/build-deb.sh runs it:
//
//	go run ./packaging/manpage -o DIR -version V -date 2026-12-03
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rundock/rundock/internal/announcercmd"
	"github.com/rundock/rundock/internal/cli"
)

func main() {
	out := flag.String("o", ".", "the directory to write NAME.1 into")
	version := flag.String("version", "", "the version in the page footer")
	date := flag.String("date", "", "the date in the page footer (YYYY-MM-DD)")
	flag.Parse()
	pages := map[string]*cobra.Command{
		"rundock":   cli.NewRoot(),
		"announcer": announcercmd.New(io.Discard, nil),
	}
	for name, cmd := range pages {
		var b bytes.Buffer
		page(&b, name, cmd, *version, *date)
		if err := os.WriteFile(filepath.Join(*out, name+".1"), b.Bytes(), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "manpage:", err)
			os.Exit(1)
		}
	}
}

// page writes one manual page: the root command, then every visible subcommand with its
// flags, as --help shows them.
func page(w io.Writer, name string, root *cobra.Command, version, date string) {
	root.InitDefaultHelpCmd()
	fmt.Fprintf(w, ".TH %s 1 %q %q \"User Commands\"\n", strings.ToUpper(name), date, name+" "+version)
	fmt.Fprintf(w, ".SH NAME\n%s \\- %s\n", name, roff(root.Short))
	synopsis := strings.TrimPrefix(root.UseLine(), name)
	if root.HasAvailableSubCommands() {
		synopsis = "COMMAND [flags]"
	}
	fmt.Fprintf(w, ".SH SYNOPSIS\n.B %s\n%s\n", name, roff(synopsis))
	fmt.Fprintf(w, ".SH DESCRIPTION\n%s\n", paragraphs(long(root)))
	if fl := root.NonInheritedFlags().FlagUsages(); strings.TrimSpace(fl) != "" {
		fmt.Fprintf(w, ".SH OPTIONS\n.nf\n%s.fi\n", roff(fl))
	}
	var subs []*cobra.Command
	for _, c := range root.Commands() {
		if c.IsAvailableCommand() && c.Name() != "help" {
			subs = append(subs, c)
		}
	}
	if len(subs) > 0 {
		fmt.Fprintf(w, ".SH COMMANDS\n")
		for _, c := range subs {
			fmt.Fprintf(w, ".SS %s\n%s\n", roff(c.CommandPath()), paragraphs(long(c)))
			if c.Example != "" {
				fmt.Fprintf(w, ".PP\nExamples:\n.nf\n%s\n.fi\n", roff(c.Example))
			}
			if fl := c.NonInheritedFlags().FlagUsages(); strings.TrimSpace(fl) != "" {
				fmt.Fprintf(w, ".PP\nOptions:\n.nf\n%s.fi\n", roff(fl))
			}
		}
	}
	fmt.Fprintf(w, ".SH SEE ALSO\n/usr/share/doc/rundock/README.md, runsv(8), svlogd(8), sv(8)\n")
}

func long(c *cobra.Command) string {
	if c.Long != "" {
		return c.Long
	}
	return c.Short
}

// paragraphs keeps the text's paragraphs (blank lines) and lets roff fill the rest.
func paragraphs(s string) string {
	var out []string
	for _, p := range strings.Split(strings.TrimSpace(s), "\n\n") {
		out = append(out, roff(p))
	}
	return strings.Join(out, "\n.PP\n")
}

// roff escapes text for a man page: backslashes, hyphens (so they stay ASCII minus signs,
// as options must be), and a line starting with a control character.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}
