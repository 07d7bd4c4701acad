// Package upstreams turns the SkyDNS records that announcers keep in etcd into nginx
// upstream blocks: the configuration file (config.go: which services, which settings), the
// upstream model built from the records (model.go), its rendering through a template
// (render.go), and the Watcher that follows etcd and hands each new rendering to the nginx
// installer (watcher.go, package nginx).
package upstreams

import (
	"bytes"
	"fmt"
	"text/template"

	"github.com/rundock/rundock/templates"
)

// DefaultOutput is the file the nginx configuration includes, by default.
const DefaultOutput = "/etc/nginx/conf.d/rundock-upstreams.conf"

// DefaultTemplate is the built-in template, templates/nginx-upstreams.conf.tmpl: one
// upstream block per Upstream.
var DefaultTemplate = func() string {
	b, err := templates.FS.ReadFile("nginx-upstreams.conf.tmpl")
	if err != nil { // cannot happen: the file is embedded at build time
		panic(err)
	}
	return string(b)
}()

// NewTemplate parses a template for Render; name is used in error messages.
func NewTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("cannot parse template %s: %w", name, err)
	}
	return t, nil
}

// Render executes the template into memory; nothing is written on error.
func Render(t *template.Template, d Data) ([]byte, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("cannot render template %s: %w", t.Name(), err)
	}
	return b.Bytes(), nil
}
