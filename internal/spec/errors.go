package spec

import (
	"errors"
	"fmt"
)

// Sentinel errors, for errors.Is. Every error FromMap, ParseYAML and SplitArgs return wraps
// one of them; the message itself names the option, the offending value and the fix.
var (
	// ErrUnknownOption: a key that is not an option name.
	ErrUnknownOption = errors.New("unknown option")
	// ErrBadType: a value of the wrong kind (a list where a string goes, "abc" for a number).
	ErrBadType = errors.New("wrong type")
	// ErrBadValue: a value of the right kind that is not allowed (port 0, name "Web").
	ErrBadValue = errors.New("bad value")
	// ErrMissing: a required option is not set.
	ErrMissing = errors.New("missing option")
	// ErrBadArgs: args cannot be split into plain words (expansion, operator, unbalanced quote).
	ErrBadArgs = errors.New("bad args")
	// ErrDuplicate: two services of one file have the same name.
	ErrDuplicate = errors.New("duplicate service")
	// ErrSyntax: the YAML itself does not parse, or its shape is not a service list.
	ErrSyntax = errors.New("bad YAML")
)

// Error is one problem with one option. Error() reads "option port: "abc" is not a port
// number (1-65535)"; errors.Is matches Kind.
type Error struct {
	Option string // option name, "" for a problem with the whole service
	Msg    string // what is wrong, with the value and the fix
	Kind   error  // one of the sentinel errors
}

// Error returns "option NAME: MESSAGE", or MESSAGE for a problem with no single option.
func (e *Error) Error() string {
	if e.Option == "" {
		return e.Msg
	}
	return "option " + e.Option + ": " + e.Msg
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Kind }

func optErr(kind error, option, format string, args ...any) *Error {
	return &Error{Option: option, Msg: fmt.Sprintf(format, args...), Kind: kind}
}
