package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"text/template"

	"github.com/rundock/rundock/internal/tree"
	"github.com/rundock/rundock/templates"
)

// UpstreamsService is the tree, and the runit service, that runs `rundock upstreams --watch`.
const UpstreamsService = "rundock-upstreams"

// svlogd's own defaults: the upstreams log keeps what svlogd did before its log/run wrote
// a config file.
const (
	upstreamsLogSize  = 1000000
	upstreamsLogCount = 10
)

// upstreamsTmpl adds upstreams-run.tmpl to the service templates (for log-run.tmpl and q).
var upstreamsTmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.Must(scripts().Clone()).ParseFS(templates.FS, "upstreams-run.tmpl"))
})

// upstreamsData is what upstreams-run.tmpl sees.
type upstreamsData struct {
	Argv []string
}

// Upstreams renders the runit tree that runs argv (the rundock binary and its
// `upstreams --watch ...` arguments, each word quoted with Quote), stderr joined to stdout,
// with svlogd writing logDir.
func Upstreams(argv []string, logDir string) (tree.Tree, error) {
	if len(argv) == 0 {
		return tree.Tree{}, errors.New("cannot render " + UpstreamsService + ": no command")
	}
	if logDir == "" {
		return tree.Tree{}, errors.New("cannot render " + UpstreamsService + ": no log directory")
	}
	t := tree.Tree{Dir: UpstreamsService, Services: []tree.Service{{Path: ".", Link: UpstreamsService}}}
	for _, st := range []struct {
		path, tmpl string
		data       any
	}{
		{"log/run", "log-run.tmpl", logData{UpstreamsService, logDir, upstreamsLogSize, upstreamsLogCount}},
		{"run", "upstreams-run.tmpl", upstreamsData{argv}},
	} {
		var buf bytes.Buffer
		if err := upstreamsTmpl().ExecuteTemplate(&buf, st.tmpl, st.data); err != nil {
			return tree.Tree{}, fmt.Errorf("cannot render %s of %s: %w", st.path, UpstreamsService, err)
		}
		t.Files = append(t.Files, tree.File{Path: st.path, Mode: fs.FileMode(0o755), Data: buf.Bytes()})
	}
	return t, nil
}
