package apply

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/tree"
)

// The files of a tree's state directory (render.StatePath), which apply never compares,
// prunes or overwrites as part of the tree. runsv does not look at them.
const (
	// maintenanceFile withholds the record while it exists (the announcer reads it); it
	// holds the reason.
	maintenanceFile = "maintenance"
	// deployFile is the last deploy: in progress while Outcome is "deploying", so an
	// apply killed half-way is found and finished by the next one.
	deployFile = "deploy.json"
	// previousDir holds the tree as it was when its container last served, for a
	// rollback that needs no registry.
	previousDir = "previous"
)

// Deploy outcomes.
const (
	OutcomeDeploying  = "deploying"
	OutcomeOK         = "ok"
	OutcomeRolledBack = "rolled back"
	OutcomeFailed     = "failed"
)

// Deploy is the record of a service's last start or restart by apply.
type Deploy struct {
	Outcome string    `json:"outcome"`
	Image   string    `json:"image"`              // the reference deployed
	ImageID string    `json:"image_id,omitempty"` // what it resolved to
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	// Reason says why a deploy failed: what the wait saw, the container's last log
	// lines and health output.
	Reason string `json:"reason,omitempty"`
	// RolledBackTo is the image the previous tree runs again after a rollback.
	RolledBackTo string `json:"rolled_back_to,omitempty"`
	// An update start-first: Phase is how far it got (PhaseNext: the new container starts
	// beside the old one; PhaseSwitch: the old one drains and stops, and runit's run adopts
	// the new one), OldID the container it replaces, NextID and NextPort the new one,
	// PrevPort the host port the old one holds (0 with announce_as container).
	Phase    string `json:"phase,omitempty"`
	OldID    string `json:"old_id,omitempty"`
	NextID   string `json:"next_id,omitempty"`
	NextPort int    `json:"next_port,omitempty"`
	PrevPort int    `json:"prev_port,omitempty"`
}

// The phases of an update start-first (Deploy.Phase).
const (
	PhaseNext   = "start new beside old"
	PhaseSwitch = "switch"
)

func statePath(root, name string) string {
	return filepath.Join(root, render.StatePath, name)
}

// readDeploy reads the last deploy of the tree at root; nil when there is none.
func readDeploy(root string) (*Deploy, error) {
	b, err := safefs.ReadFile(statePath(root, deployFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var d Deploy
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("cannot read %s: %w (remove it to start over)", statePath(root, deployFile), err)
	}
	return &d, nil
}

// writeDeploy records d atomically.
func writeDeploy(root string, d Deploy) error {
	if err := safefs.MkdirAll(root, filepath.Join(root, render.StatePath)); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(d, "", "  ")
	return safefs.WriteFile(statePath(root, deployFile), append(b, '\n'), 0o600)
}

// readMaintenance returns whether the service is in maintenance, and why.
func readMaintenance(root string) (on bool, reason string) {
	b, err := safefs.ReadFile(statePath(root, maintenanceFile))
	if err != nil {
		return false, ""
	}
	return true, string(trimNewline(b))
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// savePrevious keeps the files of the tree at root (as they are on disk) under
// previousDir: built hidden, then swapped in place of the older copy.
func savePrevious(root string) error {
	onDisk, err := scanTree(root)
	if err != nil {
		return err
	}
	var files []tree.File
	for p, mode := range onDisk {
		if mode == fs.ModeDir {
			continue
		}
		data, err := safefs.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		if err != nil {
			return err
		}
		files = append(files, tree.File{Path: p, Mode: mode, Data: data})
	}
	dir := filepath.Join(root, render.StatePath)
	if err := safefs.MkdirAll(root, dir); err != nil {
		return err
	}
	if err := safefs.RemoveDir(dir, previousDir+".new"); err != nil {
		return err
	}
	if err := safefs.CreateDir(dir, previousDir+".new", files); err != nil {
		return err
	}
	if err := safefs.RemoveDir(dir, previousDir); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(dir, previousDir+".new"), filepath.Join(dir, previousDir)); err != nil {
		return fmt.Errorf("cannot keep the previous tree: %w", err)
	}
	safefs.SyncDir(dir)
	return nil
}

// readPrevious returns the kept previous tree's files; nil when there is none.
func readPrevious(root string) ([]tree.File, error) {
	dir := statePath(root, previousDir)
	if ok, _ := safefs.Exists(dir); !ok {
		return nil, nil
	}
	onDisk, err := scanTree(dir)
	if err != nil {
		return nil, err
	}
	var files []tree.File
	for p, mode := range onDisk {
		if mode == fs.ModeDir {
			continue
		}
		data, err := safefs.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			return nil, err
		}
		files = append(files, tree.File{Path: p, Mode: mode, Data: data})
	}
	return files, nil
}
