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
//
// A number is read as the text it is written as (YAML 1.2 reads 0755 as a decimal, not
// an octal): env: {UMASK: 0755} gives UMASK=0755, and integer options read that text in
// decimal. Only true and false are booleans, and null or ~ leave an option unset.
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
		n = deref(n)
		if n.Kind != yaml.MappingNode {
			errs = append(errs, fmt.Errorf("%w: line %d: expected a service (a map of options)", ErrSyntax, n.Line))
			continue
		}
		budget := maxYAMLValues
		v, err := yamlValue(n, &budget)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m := v.(map[string]any)
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

// maxYAMLValues bounds the values one service may expand to, aliases counted each time
// they are used: a few aliases of aliases would otherwise expand to billions of values.
const maxYAMLValues = 1 << 20

// deref follows an alias to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// yamlValue converts a node into the values FromMap reads: a string for every scalar but
// true, false and null (so a number keeps its text), []any for a list, map[string]any for
// a map. It replaces yaml.v3's decoding, which checks a map for duplicate keys pair by
// pair (100k keys took 44 s); here a map of seen keys does it in one pass. Merge keys
// (<<) are honoured: explicit keys win, then the merged maps in order.
func yamlValue(n *yaml.Node, budget *int) (any, error) {
	if *budget--; *budget < 0 {
		return nil, fmt.Errorf("%w: line %d: the service expands to more than %d values (aliases used over and over?): write it out plainly", ErrSyntax, n.Line, maxYAMLValues)
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, fmt.Errorf("%w: line %d: unknown alias", ErrSyntax, n.Line)
		}
		return yamlValue(n.Alias, budget)
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			return n.Value == "true" || n.Value == "True" || n.Value == "TRUE", nil
		}
		return n.Value, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := yamlValue(c, budget)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		lines := make(map[string]int, len(n.Content)/2)
		var merges []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := deref(n.Content[i])
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				merges = append(merges, n.Content[i+1])
				continue
			}
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("%w: line %d: a map key must be text, not a list or a map", ErrSyntax, k.Line)
			}
			if prev, dup := lines[k.Value]; dup {
				return nil, fmt.Errorf("%w: line %d: mapping key %q already defined at line %d", ErrSyntax, k.Line, k.Value, prev)
			}
			lines[k.Value] = k.Line
			v, err := yamlValue(n.Content[i+1], budget)
			if err != nil {
				return nil, err
			}
			out[k.Value] = v
		}
		for _, m := range merges {
			m = deref(m)
			srcs := []*yaml.Node{m}
			if m.Kind == yaml.SequenceNode {
				srcs = m.Content
			}
			for _, src := range srcs {
				if src = deref(src); src.Kind != yaml.MappingNode {
					return nil, fmt.Errorf("%w: line %d: << merges a map or a list of maps", ErrSyntax, src.Line)
				}
				v, err := yamlValue(src, budget)
				if err != nil {
					return nil, err
				}
				for k, val := range v.(map[string]any) {
					if _, set := out[k]; !set {
						out[k] = val
					}
				}
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: line %d: unexpected YAML node", ErrSyntax, n.Line)
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
