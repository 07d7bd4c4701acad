// Package render turns a service spec into its runit service tree, in memory: the run,
// finish, check and control/t scripts of the container service, its svlogd log service,
// and the announcer service that keeps the container's address in DNS.
package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"

	"github.com/rundock/rundock/internal/defaults"
	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/tree"
	"github.com/rundock/rundock/templates"
)

// Timing of the rendered scripts.
const (
	// MinUptime is how long (seconds) a run must last to reset finish's failure count.
	MinUptime = 10
	// MaxBackoff caps finish's crash-loop delay (seconds).
	MaxBackoff = 30
	// StopGrace is added to stop_timeout to bound control/t's docker stop.
	StopGrace = 15
	// DependsPause is how long (seconds) finish waits before runit starts run again after
	// run gave up waiting for a dependency: short and fixed, not the crash-loop backoff.
	DependsPause = 2
)

// DependsOnLine starts each line of a rendered run that names a dependency and its
// condition ("# depends_on: db healthy"); apply reads them back (cycles, dependents).
const DependsOnLine = "# depends_on: "

// WaitingPath is the file in a container service's directory where run names the
// dependency it waits for ("db healthy"), while it waits and after it gave up.
const WaitingPath = "supervise/rundock-waiting"

// dep is one dependency as the run script waits for it: its tree is Dir.
type dep struct {
	Name, Condition, Dir string
}

// InspectFormat is the docker inspect template the check script reads: the state, and
// the health status when the container has a health check.
const InspectFormat = `{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}`

// scriptNames are the templates of a service's tree.
var scriptNames = []string{"run.tmpl", "finish.tmpl", "check.tmpl", "control-t.tmpl", "log-run.tmpl", "announcer-run.tmpl"}

// scripts parses the templates on first use, not at every start: a run whose trees are all
// unchanged (apply's index) renders none, and an Ansible task starts rundock each time.
var scripts = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("").Option("missingkey=error").Funcs(template.FuncMap{
		"q":     Quote,
		"words": words,
		"join":  strings.Join,
	}).ParseFS(templates.FS, scriptNames...))
})

// sizeHints is, per template, a little more than the largest file it rendered in this
// process: the next service's buffer starts that large instead of growing through copies
// (an apply renders hundreds of trees, and each copy is fresh memory to fault in).
var sizeHints = func() map[string]*atomic.Int64 {
	m := map[string]*atomic.Int64{}
	for _, n := range scriptNames {
		m[n] = new(atomic.Int64)
	}
	return m
}()

// Quote returns s as one sh word: s in single quotes, where each single quote of s
// closes the quoting, is written escaped with a backslash, and reopens it.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// words writes args words for the run script: literal parts quoted, placeholders as
// "$PRIVATE_IP", so sh expands only those.
func words(ws []spec.Word) string {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		var b strings.Builder
		for _, p := range w {
			switch {
			case p.Var != "":
				b.WriteString(`"$` + p.Var + `"`)
			case p.Lit != "":
				b.WriteString(Quote(p.Lit))
			}
		}
		if b.Len() == 0 {
			b.WriteString("''")
		}
		out = append(out, b.String())
	}
	return strings.Join(out, " ")
}

// lookup is one address the run script asks rundock addr for.
type lookup struct {
	Var, Kind, Interface string
}

// lookups are the run-time address placeholders of s, in the order run computes them:
// the variable, the `rundock addr` kind (an announce_as value) and the interface option.
func lookups(s spec.Service) []lookup {
	return []lookup{
		{"PRIVATE_IP", spec.AnnouncePrivate, s.PrivateInterface},
		{"PUBLIC_IP", spec.AnnouncePublic, s.PublicInterface},
		{"PRIVATE_IP6", spec.AnnouncePrivate6, s.PrivateInterface},
		{"PUBLIC_IP6", spec.AnnouncePublic6, s.PublicInterface},
	}
}

// lookupVar returns the variable of the run-time lookup of kind ("" when kind has none,
// as container has not) and marks it used.
func lookupVar(s spec.Service, kind string, used map[string]bool) string {
	for _, l := range lookups(s) {
		if l.Kind == kind {
			used[l.Var] = true
			return l.Var
		}
	}
	return ""
}

// runData is what the container service's templates see.
type runData struct {
	spec.Service
	// Name and StartFirst shadow the Service's, with the same values: text/template finds a
	// promoted field by a breadth-first search with allocations on every use, and these two
	// are most of the scripts' lookups.
	Name               string
	StartFirst         bool
	Rundock, Announcer string
	// The other Service fields the templates read, copied to the top level by shadow for
	// the same reason: with hundreds of services, those searches were a sixth of an
	// apply's CPU. A field the templates read but no one copied still works, promoted.
	Announce, DNSTTL, HealthRetries, Port, Priority, StopTimeout, TTL, UpdatePort, Weight int
	AnnounceAs, AnnounceAs6, AnnounceName, Domain, Host, Host6, Hostname, Image, Instance string
	EtcdCACert, EtcdCert, EtcdKey, EtcdPasswordFile, EtcdUser                             string
	HealthCmd, HealthInterval, HealthStartPeriod, HealthTimeout                           string
	Network, PrivateInterface, PublicInterface, User                                      string
	Command, EnvFile, EtcdEndpoints, Ports, Tags, Volumes, VolumesFrom                    []string
	ArgWords                                                                              []spec.Word
	Dual                                                                                  bool
	Lookups                                                                               []lookup
	AnnounceAlias                                                                         string // ANNOUNCE_IP=$ALIAS, when ANNOUNCE_IP is used
	AnnounceHost                                                                          string // ANNOUNCE_IP='HOST', when the host option sets it
	PublishAnnounce                                                                       bool
	Publish6                                                                              bool // the published host address is IPv6: -p "[ADDR]":...
	// Dual stack: ANNOUNCE_IP6=$ALIAS or ='HOST6', published beside ANNOUNCE_IP.
	Announce6Alias, Announce6Host string
	// EnvFilePath is the tree's env file (0600, root only), when env is set: env values stay
	// off docker's argv (readable in /proc by every user) and out of the 0755 run script.
	EnvFilePath    string
	InspectFormat  string
	ControlTimeout int
	MinUptime      int
	MaxBackoff     int
	AnnouncerPort  int
	// StateDir is the tree's state directory (drain and maintenance markers, the previous
	// tree, the last deploy); AnnouncerDir the announcer's service directory.
	StateDir, AnnouncerDir string
	// Drain is the drain in seconds when the service is announced, else 0.
	Drain int
	// RecordKey is the etcd key the announcer writes; apply reads it back from the
	// rendered announcer/run to refuse two services that would share one record.
	RecordKey string
	// RunPull is run's --pull: apply pulls before it stops the old container, so with
	// pull always a restart by runit uses the image apply pulled (a registry outage does
	// not keep the service down), and missing and never stay as given.
	RunPull string
	// Deps are depends_on with each dependency's tree (they shadow Service.Deps, which
	// lack the tree); DependsWait and DependsPause the
	// wait for each and finish's pause after run gave up.
	Deps                      []dep
	DependsWait, DependsPause int
	// Update start-first: SlotPorts when the container publishes the announced port on the
	// host (it alternates between announce and update_port); NextName the new container's
	// name beside the old one; SpecHash identifies what run starts (run with SpecHash ""
	// and the env file, hashed), so run adopts only a container of this tree.
	SlotPorts          bool
	NextName, SpecHash string
	// NamedPortArgs are the announcer's --named-port values, NAME=PORT sorted by name.
	NamedPortArgs          []string
	AdoptFormat, AdoptWant string
	SpecLabelArg           string
}

// shadow copies the Service fields the templates read to d's top level (see runData).
func (d *runData) shadow(s spec.Service) {
	d.Name, d.StartFirst, d.Dual = s.Name, s.StartFirst(), s.Dual()
	d.Announce, d.DNSTTL, d.HealthRetries, d.Port, d.Priority = s.Announce, s.DNSTTL, s.HealthRetries, s.Port, s.Priority
	d.StopTimeout, d.TTL, d.UpdatePort, d.Weight = s.StopTimeout, s.TTL, s.UpdatePort, s.Weight
	d.AnnounceAs, d.AnnounceAs6, d.AnnounceName, d.Domain = s.AnnounceAs, s.AnnounceAs6, s.AnnounceName, s.Domain
	d.Host, d.Host6, d.Hostname, d.Image, d.Instance = s.Host, s.Host6, s.Hostname, s.Image, s.Instance
	d.EtcdCACert, d.EtcdCert, d.EtcdKey, d.EtcdPasswordFile, d.EtcdUser = s.EtcdCACert, s.EtcdCert, s.EtcdKey, s.EtcdPasswordFile, s.EtcdUser
	d.HealthCmd, d.HealthInterval, d.HealthStartPeriod, d.HealthTimeout = s.HealthCmd, s.HealthInterval, s.HealthStartPeriod, s.HealthTimeout
	d.Network, d.PrivateInterface, d.PublicInterface, d.User = s.Network, s.PrivateInterface, s.PublicInterface, s.User
	d.Command, d.EnvFile, d.EtcdEndpoints, d.Ports = s.Command, s.EnvFile, s.EtcdEndpoints, s.Ports
	d.Tags, d.Volumes, d.VolumesFrom, d.ArgWords = s.Tags, s.Volumes, s.VolumesFrom, s.ArgWords
}

// Update start-first: names and files shared by the rendered scripts and apply.
const (
	// NextSuffix makes the new container's name while the old one runs (web.next).
	NextSuffix = ".next"
	// NextInstanceSuffix makes the instance label of the new container's record
	// (node-1-next), so it is announced beside the old one.
	NextInstanceSuffix = spec.NextInstanceSuffix
	// SpecLabel is the label that carries the spec hash of the tree a container was
	// started from.
	SpecLabel = "rundock.spec"
	// SpecLine starts the line of a start-first run that names its spec hash.
	SpecLine = "# spec: "
	// PortFile, in the state directory, names the host port the service holds (announce
	// or update_port).
	PortFile = "port"
	// adoptFormat is the docker inspect template run compares with "HASH true".
	adoptFormat = `{{index .Config.Labels "` + SpecLabel + `"}} {{.State.Running}}`
)

// NextName returns the name of the container an update start-first starts beside name.
func NextName(name string) string { return name + NextSuffix }

// logData is what log-run.tmpl sees.
type logData struct {
	Name              string
	Dir               string
	LogSize, LogCount int
}

// Dir returns the name of a service's tree under sv_dir.
func Dir(name string) string { return "docker-" + name }

// AnnouncerPath is the announcer service's directory inside a tree.
const AnnouncerPath = "announcer"

// RecordKeyLine starts the line of a rendered announcer/run that names its record's key.
const RecordKeyLine = "# record: "

// RecordKey is the etcd key of the record s's announcer keeps.
func RecordKey(s spec.Service) (string, error) {
	k, err := skydns.InstanceKey(defaults.Prefix, s.Domain, s.AnnounceName, s.Instance)
	if err == nil && s.Dual() {
		k = skydns.FamilyKey(k, skydns.FamilyIPv4)
	}
	return k, err
}

// EnvPath is the env file inside a tree: env's KEY=VALUE lines for docker run --env-file,
// readable by root only.
const EnvPath = "env"

// EnvFileData is the env file of env: one KEY=VALUE line per variable, sorted. docker reads
// each value literally up to the end of its line; spec refuses values with a newline.
func EnvFileData(env map[string]string) []byte {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(env)) {
		b.WriteString(k + "=" + env[k] + "\n")
	}
	return []byte(b.String())
}

// StatePath is the directory inside a tree where rundock and the scripts keep state that is
// not rendered: the drain and maintenance markers, the previous tree and the last deploy.
// apply leaves it alone like runsv's supervise/.
const StatePath = ".rundock"

// Services lists every runit service a tree of name can hold, whether rendered or not: the
// container service at the root, linked as docker-NAME, and the announcer, linked as
// docker-NAME.announcer. apply stops these when nothing is rendered (disabled, absent).
func Services(name string) []tree.Service {
	return []tree.Service{{Path: ".", Link: Dir(name)}, {Path: AnnouncerPath, Link: Dir(name) + "." + AnnouncerPath}}
}

// Render builds the runit tree of s. s must have its defaults filled (spec.FromMap does
// that); it is validated again, so no unchecked value reaches a script. The result is
// deterministic: files sorted by path, scripts 0755.
func Render(s spec.Service) (tree.Tree, error) {
	name := s.Name
	s, err := spec.Validate(s)
	if err != nil {
		return tree.Tree{}, fmt.Errorf("cannot render service %q: %w", name, err)
	}
	if s.Image == "" {
		return tree.Tree{}, fmt.Errorf("cannot render service %q: no image (set image; only state absent or disabled goes without)", s.Name)
	}
	d := runData{
		Service:        s,
		Rundock:        path.Join(s.BinDir, "rundock"),
		Announcer:      path.Join(s.BinDir, "announcer"),
		InspectFormat:  InspectFormat,
		ControlTimeout: s.StopTimeout + StopGrace,
		MinUptime:      MinUptime,
		MaxBackoff:     MaxBackoff,
		AnnouncerPort:  s.Announce,
		StateDir:       path.Join(s.SvDir, Dir(s.Name), StatePath),
		AnnouncerDir:   path.Join(s.SvDir, Dir(s.Name), AnnouncerPath),
		RunPull:        s.Pull,
		DependsWait:    spec.DependsWait,
		DependsPause:   DependsPause,
	}
	d.shadow(s)
	for _, dp := range s.Deps {
		d.Deps = append(d.Deps, dep{dp.Name, dp.Condition, path.Join(s.SvDir, Dir(dp.Name))})
	}
	if s.Announce != 0 {
		d.Drain = s.Drain
		if d.RecordKey, err = RecordKey(s); err != nil {
			return tree.Tree{}, fmt.Errorf("cannot render service %q: %w", s.Name, err)
		}
	}
	if s.Pull == spec.PullAlways {
		d.RunPull = spec.PullMissing
	}
	if s.AnnouncesContainer() {
		d.AnnouncerPort = s.Port
	}
	for _, n := range slices.Sorted(maps.Keys(s.NamedPorts)) {
		d.NamedPortArgs = append(d.NamedPortArgs, n+"="+s.NamedPorts[n])
	}
	if s.StartFirst() {
		d.SlotPorts = s.HostPublished()
		d.NextName = NextName(s.Name)
		d.AdoptFormat = adoptFormat
	}
	if len(s.Env) > 0 {
		d.EnvFilePath = path.Join(s.SvDir, Dir(s.Name), EnvPath)
	}

	used := map[string]bool{}
	for _, w := range s.ArgWords {
		for _, p := range w {
			if p.Var != "" {
				used[p.Var] = true
			}
		}
	}
	d.PublishAnnounce = s.Announce != 0 && !s.AnnouncesContainer()
	if s.Host != "" && (d.PublishAnnounce || used["ANNOUNCE_IP"]) {
		d.AnnounceHost = s.Host
	} else if d.PublishAnnounce || used["ANNOUNCE_IP"] {
		// Each discovered address is the run-time lookup `rundock addr KIND`, KIND being
		// the announce_as value that names it.
		d.AnnounceAlias = lookupVar(s, s.AnnounceAs, used)
	}
	d.Publish6 = s.PublishIPv6()
	if s.Dual() && s.Host6 != "" {
		d.Announce6Host = s.Host6
	} else if s.Dual() {
		d.Announce6Alias = lookupVar(s, s.AnnounceAs6, used)
	}
	for _, l := range lookups(s) {
		if used[l.Var] {
			d.Lookups = append(d.Lookups, l)
		}
	}

	if s.StartFirst() {
		// The hash covers what the container is started with: run itself (without the
		// hash) and the env file.
		var buf bytes.Buffer
		if err := scripts().ExecuteTemplate(&buf, "run.tmpl", &d); err != nil {
			return tree.Tree{}, fmt.Errorf("cannot render run of service %q: %w", s.Name, err)
		}
		h := sha256.New()
		h.Write(buf.Bytes())
		h.Write(EnvFileData(s.Env))
		d.SpecHash = hex.EncodeToString(h.Sum(nil))[:16]
		d.AdoptWant = d.SpecHash + " true"
		d.SpecLabelArg = SpecLabel + "=" + d.SpecHash
	}

	layout := Services(s.Name)
	t := tree.Tree{Dir: Dir(s.Name), Services: layout[:1]}
	add := func(p, name string, data any) error {
		var buf bytes.Buffer
		hint := sizeHints[name]
		buf.Grow(int(hint.Load()))
		if err := scripts().ExecuteTemplate(&buf, name, data); err != nil {
			return fmt.Errorf("cannot render %s of service %q: %w", p, s.Name, err)
		}
		if n := int64(buf.Len()); n > hint.Load() {
			hint.Store(n + n/8)
		}
		t.Files = append(t.Files, tree.File{Path: p, Mode: fs.FileMode(0o755), Data: buf.Bytes()})
		return nil
	}
	steps := []struct {
		path, tmpl string
		data       any
		when       bool
	}{
		{"run", "run.tmpl", &d, true},
		{"finish", "finish.tmpl", &d, true},
		{"check", "check.tmpl", &d, true},
		{"control/t", "control-t.tmpl", &d, true},
		{"log/run", "log-run.tmpl", logData{s.Name, path.Join(s.LogDir, s.Name), s.LogSize, s.LogCount}, s.Log},
		{AnnouncerPath + "/run", "announcer-run.tmpl", &d, s.Announce != 0},
		{AnnouncerPath + "/log/run", "log-run.tmpl", logData{s.Name, path.Join(s.LogDir, s.Name+"."+AnnouncerPath), s.LogSize, s.LogCount}, s.Log && s.Announce != 0},
	}
	for _, st := range steps {
		if !st.when {
			continue
		}
		if err := add(st.path, st.tmpl, st.data); err != nil {
			return tree.Tree{}, err
		}
	}
	if len(s.Env) > 0 {
		t.Files = append(t.Files, tree.File{Path: EnvPath, Mode: 0o600, Data: EnvFileData(s.Env)})
	}
	if s.Announce != 0 {
		t.Services = append(t.Services, layout[1])
	}
	slices.SortFunc(t.Files, func(a, b tree.File) int { return strings.Compare(a.Path, b.Path) })
	return t, nil
}
