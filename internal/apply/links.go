package apply

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rundock/rundock/internal/tree"
)

// linkChange is a link in service_dir to create or to point elsewhere.
type linkChange struct {
	link, target string
}

// planLinks compares service_dir with the tree's services: links to create or fix, and
// links into this tree (root) that no service wants any more.
func planLinks(serviceDir, root string, t tree.Tree) (changes []linkChange, stale []string, err error) {
	want := map[string]string{}
	for _, s := range t.Services {
		target := filepath.Join(root, filepath.FromSlash(s.Path))
		link := filepath.Join(serviceDir, s.Link)
		want[link] = target
		fi, err := os.Lstat(link)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			changes = append(changes, linkChange{link, target})
		case err != nil:
			return nil, nil, fmt.Errorf("cannot inspect %s: %w", link, err)
		case fi.Mode()&fs.ModeSymlink == 0:
			return nil, nil, fmt.Errorf("cannot link %s: %w: it exists and is not a symlink; move it away and run again", link, ErrNotOurs)
		default:
			cur, err := os.Readlink(link)
			if err != nil {
				return nil, nil, fmt.Errorf("cannot read link %s: %w", link, err)
			}
			if filepath.Clean(cur) != target {
				if !inside(absLink(serviceDir, cur), root) {
					return nil, nil, foreignLink(link, cur, root)
				}
				changes = append(changes, linkChange{link, target})
			}
		}
	}
	ours, err := ourLinks(serviceDir, root, t.Dir)
	if err != nil {
		return nil, nil, err
	}
	for _, l := range ours {
		if _, ok := want[l]; !ok {
			stale = append(stale, l)
		}
	}
	return changes, stale, nil
}

// absLink is a link's target as an absolute, clean path.
func absLink(serviceDir, target string) string {
	if !filepath.IsAbs(target) {
		target = filepath.Join(serviceDir, target)
	}
	return filepath.Clean(target)
}

// inside reports whether p is root or below it.
func inside(p, root string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}

func foreignLink(link, target, root string) error {
	return fmt.Errorf("cannot manage %s: %w: it points to %s, outside %s; rundock leaves another service alone: remove it (rm %s) or point it into %s",
		link, ErrNotOurs, target, root, link, root)
}

// ourLinks lists the symlinks in service_dir that point into the tree at root. A link with
// one of its names (dir, dir.*) that points elsewhere is refused.
func ourLinks(serviceDir, root, dir string) ([]string, error) {
	entries, err := os.ReadDir(serviceDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot list service_dir %s: %w", serviceDir, err)
	}
	var out []string
	for _, e := range entries {
		if e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		p := filepath.Join(serviceDir, e.Name())
		target, err := os.Readlink(p)
		if err != nil {
			continue
		}
		target = absLink(serviceDir, target)
		switch {
		case inside(target, root):
			out = append(out, p)
		case e.Name() == dir || strings.HasPrefix(e.Name(), dir+"."):
			// Our link name, someone else's service: never stopped or unlinked by us.
			return nil, foreignLink(p, target, root)
		}
	}
	return out, nil
}
