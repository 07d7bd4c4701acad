// Package templates holds the text/template files rundock renders: the runit scripts of a
// service tree and the nginx upstreams. Renderers parse them from FS.
package templates

import "embed"

// FS holds every *.tmpl file of this directory.
//
//go:embed *.tmpl
var FS embed.FS
