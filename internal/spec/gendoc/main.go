// Command gendoc writes module/rundock.yml, the Ansible documentation of the rundock module,
// from templates/module-doc.yml.tmpl and the option table of package spec. make generate
// runs it from the repository root; a test of package spec fails when the file is stale.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/templates"
)

func main() {
	out := flag.String("o", "module/rundock.yml", "the file to write")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	tmpl, err := templates.FS.ReadFile("module-doc.yml.tmpl")
	if err != nil {
		return err
	}
	doc, err := spec.ModuleDoc(string(tmpl))
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(out); err == nil && string(old) == string(doc) {
		return nil
	}
	if err := os.WriteFile(out, doc, 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", out, err)
	}
	return nil
}
