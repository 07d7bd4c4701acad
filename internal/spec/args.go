package spec

import (
	"errors"
	"fmt"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// placeholders are the only variables args may use; the run script computes them when
// the container starts.
var placeholders = []string{"PUBLIC_IP", "PRIVATE_IP", "ANNOUNCE_IP", "PUBLIC_IP6", "PRIVATE_IP6"}

// splitArgWords is the parse step of args: it fills ArgWords from Args, so that the
// renderer quotes literals and expands only placeholders.
func splitArgWords(s *Service) error {
	words, err := SplitArgs(s.Args)
	s.ArgWords = words
	if err != nil {
		return optErr(ErrBadArgs, "args", "%v", err)
	}
	return nil
}

// SplitArgs splits s into words the way sh does (quotes and backslashes honoured), keeping
// $PUBLIC_IP, $PRIVATE_IP and $ANNOUNCE_IP (or ${...}) as placeholder parts. Everything
// else that sh would expand or interpret is rejected with its column: command and
// arithmetic substitution, other variables, a leading ~, operators (; | & < > ( )),
// comments, control characters (newlines included) and unbalanced quotes. Glob
// characters are kept as literals: the run script quotes every word.
func SplitArgs(s string) ([]Word, error) {
	if s == "" {
		return nil, nil // most services: no sh parser to set up
	}
	if msg := badChar(s); msg != "" {
		return nil, fmt.Errorf("%w: %q %s", ErrBadArgs, s, msg)
	}
	p := syntax.NewParser(syntax.Variant(syntax.LangPOSIX))
	var words []Word
	covered := 0 // bytes of s up to the end of the last word
	for w, err := range p.WordsSeq(strings.NewReader(s)) {
		if err != nil {
			return nil, argsErr(s, err)
		}
		start, end := int(w.Pos().Offset()), int(w.End().Offset())
		if err := onlyBlanks(s, covered, start); err != nil {
			return nil, err
		}
		covered = end
		word, err := convertWord(s, w)
		if err != nil {
			return nil, err
		}
		words = append(words, word)
	}
	if err := onlyBlanks(s, covered, len(s)); err != nil {
		return nil, err
	}
	return words, nil
}

// onlyBlanks makes sure nothing but spaces lies between words: the word parser skips
// comments silently, and they would drop the rest of args.
func onlyBlanks(s string, from, to int) error {
	for i := from; i < to && i < len(s); i++ {
		if s[i] != ' ' {
			return fmt.Errorf("%w: %q has %q at column %d, which sh would not take as a plain word (a comment?): quote it", ErrBadArgs, s, s[i:], i+1)
		}
	}
	return nil
}

func argsErr(s string, err error) error {
	var pe syntax.ParseError
	if errors.As(err, &pe) {
		if pe.Incomplete {
			return fmt.Errorf("%w: %q at column %d: unbalanced quote: %s: close it", ErrBadArgs, s, pe.Pos.Col(), pe.Text)
		}
		return fmt.Errorf("%w: %q at column %d: %s: quote shell characters, e.g. ';' or \"a;b\"", ErrBadArgs, s, pe.Pos.Col(), pe.Text)
	}
	return fmt.Errorf("%w: %q: %v", ErrBadArgs, s, err)
}

func convertWord(s string, w *syntax.Word) (Word, error) {
	var out Word
	add := func(p Part) {
		if p.Var == "" && len(out) > 0 && out[len(out)-1].Var == "" {
			out[len(out)-1].Lit += p.Lit
			return
		}
		out = append(out, p)
	}
	for i, part := range w.Parts {
		switch x := part.(type) {
		case *syntax.Lit:
			if i == 0 && strings.HasPrefix(x.Value, "~") {
				return nil, reject(s, x, "a word starting with ~, which sh expands to a home directory", "write the absolute path, or quote it")
			}
			if trailingBackslashes(x.Value)%2 == 1 && i == len(w.Parts)-1 {
				return nil, reject(s, x, "a word ending in a backslash, which escapes nothing", "remove it or write '\\'")
			}
			if strings.HasSuffix(x.Value, "$") && trailingBackslashes(x.Value[:len(x.Value)-1])%2 == 0 && i+1 < len(w.Parts) {
				return nil, reject(s, w.Parts[i+1], "$ before a quote, which shells read differently ($'...')", "write '$' for a literal dollar sign")
			}
			add(Part{Lit: unescape(x.Value, false)})
		case *syntax.SglQuoted:
			if x.Dollar {
				return nil, reject(s, x, "$'...' quoting, which sh does not know", "use '...'")
			}
			add(Part{Lit: x.Value})
		case *syntax.DblQuoted:
			if x.Dollar {
				return nil, reject(s, x, "$\"...\" quoting, which sh does not know", "use \"...\"")
			}
			if len(x.Parts) == 0 {
				add(Part{Lit: ""})
			}
			for _, dp := range x.Parts {
				switch y := dp.(type) {
				case *syntax.Lit:
					add(Part{Lit: unescape(y.Value, true)})
				case *syntax.ParamExp:
					v, err := placeholder(s, y)
					if err != nil {
						return nil, err
					}
					add(Part{Var: v})
				default:
					return nil, reject(s, dp, "an expansion inside double quotes", "use single quotes for literal text")
				}
			}
		case *syntax.ParamExp:
			v, err := placeholder(s, x)
			if err != nil {
				return nil, err
			}
			add(Part{Var: v})
		case *syntax.CmdSubst:
			return nil, reject(s, x, "a command substitution", "args are not run by a shell; write the value itself, or quote it with '...' for a literal")
		case *syntax.ArithmExp:
			return nil, reject(s, x, "an arithmetic expansion", "write the number itself")
		default:
			return nil, reject(s, part, "an expansion", "quote it with '...' for a literal")
		}
	}
	return out, nil
}

// placeholder accepts a plain $NAME or ${NAME} of one of the Placeholders.
func placeholder(s string, p *syntax.ParamExp) (string, error) {
	simple := p.Param != nil && p.Flags == nil && !p.Excl && !p.Length && !p.Width && !p.IsSet &&
		p.NestedParam == nil && p.Index == nil && len(p.Modifiers) == 0 && p.Slice == nil &&
		p.Repl == nil && p.Names == 0 && p.Exp == nil
	if simple {
		for _, v := range placeholders {
			if p.Param.Value == v {
				return v, nil
			}
		}
	}
	return "", reject(s, p, "a variable other than $PUBLIC_IP, $PRIVATE_IP and $ANNOUNCE_IP", "write a literal $ as '$'")
}

func reject(s string, n syntax.Node, what, fix string) error {
	from, to := int(n.Pos().Offset()), int(n.End().Offset())
	frag := ""
	if from < to && to <= len(s) {
		frag = s[from:to]
	}
	return fmt.Errorf("%w: %q at column %d: %q is %s: %s", ErrBadArgs, s, from+1, frag, what, fix)
}

func trailingBackslashes(s string) int {
	n := 0
	for n < len(s) && s[len(s)-1-n] == '\\' {
		n++
	}
	return n
}

// unescape removes the backslashes sh removes: before any character outside quotes,
// before $ ` " \ inside double quotes. A backslash-newline cannot occur: newlines are
// rejected before parsing.
func unescape(lit string, dquoted bool) string {
	if !strings.Contains(lit, `\`) {
		return lit
	}
	var b strings.Builder
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		if c == '\\' && i+1 < len(lit) {
			next := lit[i+1]
			if !dquoted || strings.IndexByte("$`\"\\", next) >= 0 {
				b.WriteByte(next)
				i++
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}
