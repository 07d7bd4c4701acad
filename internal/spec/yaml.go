package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// ParseYAML reads the services of a YAML file: one service (a map of options), several
// YAML documents separated by ---, a top-level list of services, or a map with the single
// key services holding that list. Each service goes through FromMap; errors carry the
// line of the service or of the offending option. Two services with one name are
// rejected; a file with no service is an error.
func ParseYAML(data []byte, host string) ([]Service, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var nodes []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		switch {
		case root.Kind == yaml.MappingNode && hasKey(root, "services"):
			if len(root.Content) != 2 {
				return nil, fmt.Errorf("%w: line %d: a file with services: holds nothing else (move the other keys into the services)", ErrSyntax, root.Line)
			}
			list := root.Content[1]
			if list.Kind != yaml.SequenceNode {
				return nil, fmt.Errorf("%w: line %d: services must be a list of services", ErrSyntax, list.Line)
			}
			nodes = append(nodes, list.Content...)
		case root.Kind == yaml.MappingNode:
			nodes = append(nodes, root)
		case root.Kind == yaml.SequenceNode:
			nodes = append(nodes, root.Content...)
		case root.Kind == yaml.ScalarNode && root.Tag == "!!null":
			continue
		default:
			return nil, fmt.Errorf("%w: line %d: expected a service (a map of options) or a list of services", ErrSyntax, root.Line)
		}
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%w: no service in the file: write at least one, e.g. name: web and image: nginx", ErrMissing)
	}
	var out []Service
	var errs []error
	lines := map[string]int{}
	for _, n := range nodes {
		if n.Kind != yaml.MappingNode {
			errs = append(errs, fmt.Errorf("%w: line %d: expected a service (a map of options)", ErrSyntax, n.Line))
			continue
		}
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			errs = append(errs, fmt.Errorf("%w: line %d: %v", ErrSyntax, n.Line, err))
			continue
		}
		s, err := FromMap(m, host)
		if err != nil {
			errs = append(errs, withLines(n, err))
			continue
		}
		if prev, dup := lines[s.Name]; dup {
			errs = append(errs, fmt.Errorf("%w: line %d: the service %q is already defined at line %d: give each service its own name", ErrDuplicate, n.Line, s.Name, prev))
			continue
		}
		lines[s.Name] = n.Line
		out = append(out, s)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// withLines prefixes each option error with the line of that option in the service node,
// and other errors with the line of the service.
func withLines(n *yaml.Node, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		line := n.Line
		var oe *Error
		if errors.As(e, &oe) {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if oe.Option != "" && n.Content[i].Value == oe.Option {
					line = n.Content[i].Line
				}
			}
		}
		out = append(out, fmt.Errorf("line %d: %w", line, e))
	}
	return errors.Join(out...)
}
