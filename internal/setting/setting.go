// Package setting is the error loadprof's library packages return for a
// setting that is out of range or missing. The error names the setting by
// its Go name ("load.Plan.Rate"), never by a command-line flag: the
// command, which knows its flags, says it in its own terms (see Names).
// load.SettingError is this type for callers outside the module.
package setting

import (
	"errors"
	"fmt"
	"regexp"
)

// Error is a setting the library cannot use.
type Error struct {
	// Setting is the Go name of the setting at fault, package-qualified:
	// "load.Plan.Rate", "bench.Config.Timeout".
	Setting string
	// Msg is the whole message. It names Setting, and any other setting it
	// mentions, by the same Go names, so that Names can find them all.
	Msg string
	// Err is the cause, when the problem came from somewhere else.
	Err error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// Invalid is setting given as value and what is wrong with it:
// "load.Plan.Rate -1: must be positive". An empty value leaves it out.
func Invalid(setting, value, problem string) *Error {
	if value != "" {
		return &Error{Setting: setting, Msg: setting + " " + value + ": " + problem}
	}
	return &Error{Setting: setting, Msg: setting + ": " + problem}
}

// Errorf is an error about setting whose message is format, which names
// the settings itself. A %w argument becomes Err.
func Errorf(setting, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Setting: setting, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// name is how a Go setting name looks in a message: a package, then one or
// more identifiers, dot-separated.
var name = regexp.MustCompile(`\b[a-z]+(?:\.[A-Za-z][A-Za-z0-9]*)+\b`)

// Rename returns msg with every Go setting name that rename knows replaced
// by what rename maps it to (the command's flag). Words rename does not
// know ("result.json") are left as they are.
func Rename(msg string, rename map[string]string) string {
	return name.ReplaceAllStringFunc(msg, func(s string) string {
		if r, ok := rename[s]; ok {
			return r
		}
		return s
	})
}

// Names returns every word of msg shaped like a Go setting name, known or
// not: a test's way to find a setting the command has no flag for.
func Names(msg string) []string {
	return name.FindAllString(msg, -1)
}
