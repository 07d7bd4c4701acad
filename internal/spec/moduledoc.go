package spec

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"text/template"

	"gopkg.in/yaml.v3"
)

// docWidth is where the module documentation's descriptions wrap.
const docWidth = 96

// ModuleDoc renders the Ansible documentation of the module (module/rundock.yml) from
// tmpl, the hand-written parts (templates/module-doc.yml.tmpl), whose {{.Options}} becomes
// the options as options.go declares them. make generate writes it (internal/spec/gendoc).
func ModuleDoc(tmpl string) ([]byte, error) {
	t, err := template.New("module-doc").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return nil, fmt.Errorf("cannot parse the module documentation template: %w", err)
	}
	var opts strings.Builder
	for i := range optionTable {
		writeOptionDoc(&opts, &optionTable[i])
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, map[string]string{"Options": opts.String()}); err != nil {
		return nil, fmt.Errorf("cannot render the module documentation: %w", err)
	}
	return buf.Bytes(), nil
}

// writeOptionDoc writes one entry of DOCUMENTATION's options, indented under options:.
func writeOptionDoc(b *strings.Builder, o *Option) {
	const in = "    "
	fmt.Fprintf(b, "%s%s:\n", in, o.Name)
	paras := o.docParagraphs()
	if len(paras) == 1 {
		b.WriteString(yamlScalar(in+"  description: ", in+"    ", paras[0], false))
	} else {
		b.WriteString(in + "  description:\n")
		for _, p := range paras {
			b.WriteString(yamlScalar(in+"    - ", in+"      ", p, true))
		}
	}
	fmt.Fprintf(b, "%s  type: %s\n", in, o.Kind.ansible())
	if o.Kind == KindList {
		fmt.Fprintf(b, "%s  elements: str\n", in)
	}
	if o.required {
		fmt.Fprintf(b, "%s  required: true\n", in)
	}
	if o.choices != nil {
		fmt.Fprintf(b, "%s  choices: %s\n", in, flowList(o.choices))
	}
	switch d := o.def.(type) {
	case nil:
	case []string:
		fmt.Fprintf(b, "%s  default: %s\n", in, flowList(d))
	case int, bool:
		fmt.Fprintf(b, "%s  default: %v\n", in, d)
	default:
		b.WriteString(yamlScalar(in+"  default: ", in+"    ", fmt.Sprint(d), false))
	}
}

// docParagraphs is the option's description with the range of an integer and a default
// computed from other options appended to its last paragraph.
func (o *Option) docParagraphs() []string {
	paras := append([]string(nil), o.doc...)
	var extra []string
	if o.Kind == KindInt {
		extra = append(extra, fmt.Sprintf("From %d to %d.", o.min, o.max))
	}
	if o.derived != "" {
		extra = append(extra, "Defaults to "+o.derived+".")
	}
	if len(extra) > 0 {
		paras[len(paras)-1] += " " + strings.Join(extra, " ")
	}
	return paras
}

// yamlScalar writes s after first as a plain scalar wrapped at docWidth, continuation
// lines after cont, when YAML reads that back as s; otherwise quoted on one line. item
// says s is a list item (first ends in "- "), not a map value.
func yamlScalar(first, cont, s string, item bool) string {
	var out strings.Builder
	line := first
	for i, w := range strings.Split(s, " ") {
		if i > 0 && len(line)+1+len(w) > docWidth {
			out.WriteString(line + "\n")
			line = cont + w
			continue
		}
		if i > 0 {
			line += " "
		}
		line += w
	}
	out.WriteString(line + "\n")
	if readsBack(out.String(), s, item) {
		return out.String()
	}
	q, _ := yaml.Marshal(s)
	return first + strings.TrimRight(string(q), "\n") + "\n"
}

// readsBack reports whether YAML reads text (a map entry, or a list item) as the string s.
func readsBack(text, s string, item bool) bool {
	text = strings.TrimLeft(text, " ")
	if item {
		var l []string
		return yaml.Unmarshal([]byte(text), &l) == nil && len(l) == 1 && l[0] == s
	}
	var m map[string]string
	if yaml.Unmarshal([]byte(text), &m) != nil || len(m) != 1 {
		return false
	}
	for _, v := range m {
		return v == s
	}
	return false
}

// flowList writes l as a YAML flow sequence, quoting the items YAML would not read back.
func flowList(l []string) string {
	items := make([]string, len(l))
	for i, s := range l {
		var back []string
		if yaml.Unmarshal([]byte("["+s+"]"), &back) == nil && len(back) == 1 && back[0] == s {
			items[i] = s
		} else {
			items[i] = strconv.Quote(s)
		}
	}
	return "[" + strings.Join(items, ", ") + "]"
}
