package upstreams

import (
	"text/template"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rundock/rundock/internal/nginx"
)

// Names kept while the integration tests still use them; new code uses the targets.
const (
	// Deprecated: use nginx.DefaultCheckCmd.
	DefaultCheckCmd = nginx.DefaultCheckCmd
	// Deprecated: use nginx.DefaultReloadCmd.
	DefaultReloadCmd = nginx.DefaultReloadCmd
	// ServiceName is the runit service that runs `rundock upstreams --watch`. A literal,
	// not render.UpstreamsService, so that upstreams does not import render (and spec);
	// render's test checks the two agree.
	//
	// Deprecated: use render.UpstreamsService.
	ServiceName = "rundock-upstreams"
)

// ErrCheck is returned when nginx rejects a new file; the previous one is back in place.
//
// Deprecated: use nginx.ErrCheck.
var ErrCheck = nginx.ErrCheck

// Nginx installs rendered files, checked by nginx.
//
// Deprecated: use nginx.Installer.
type Nginx = nginx.Installer

// Renderer follows etcd and keeps the upstreams file in step.
//
// Deprecated: use Watcher.
type Renderer = Watcher

// NewRenderer returns a Watcher with the documented defaults.
//
// Deprecated: use NewWatcher.
func NewRenderer(c *clientv3.Client, domain string, cfg *Config, t *template.Template, n *nginx.Installer) *Watcher {
	return NewWatcher(c, domain, cfg, t, n)
}
