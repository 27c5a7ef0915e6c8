// Package named holds errors whose text names settings: a library's
// error names its own (the Go field, TLSOptions.CA), and a program that
// sets them from flags shows its user the flag (--ca) through Text, with
// no copy of the text to keep in step.
package named

import (
	"errors"
	"fmt"
	"strings"
)

// Setting is a setting's name in an Error's text, as the library knows it
// (MaxConns, TLSOptions.CA).
type Setting string

// Error is an error said with fmt's verbs, whose Setting arguments
// Text may name otherwise. Its text is what Errorf or Reword made of it.
type Error struct {
	format string
	args   []any
	errs   []error // what it wraps
}

// Errorf is fmt.Errorf whose Setting arguments a program may rename: a
// %w verb wraps, as fmt.Errorf's do (each of several).
func Errorf(format string, args ...any) *Error {
	e := &Error{format: format, args: args}
	switch w := fmt.Errorf(format, args...).(type) {
	case interface{ Unwrap() error }:
		e.errs = []error{w.Unwrap()}
	case interface{ Unwrap() []error }:
		e.errs = w.Unwrap()
	}
	return e
}

// Reword is err said in other words (format and args, as Errorf's, with
// no %w), which wraps it for errors.Is and errors.As.
func Reword(err error, format string, args ...any) *Error {
	return &Error{format: format, args: args, errs: []error{err}}
}

func (e *Error) Error() string { return e.text(nil) }

func (e *Error) Unwrap() []error { return e.errs }

// MarshalText is the error's text: a log handler that encodes values
// as JSON would make {} of its unexported fields.
func (e *Error) MarshalText() ([]byte, error) { return []byte(e.Error()), nil }

// text is the error's text, each Setting named by name (nil: as it is).
func (e *Error) text(name func(setting string) string) string {
	args := e.args
	if name != nil {
		args = make([]any, len(e.args))
		for i, a := range e.args {
			switch a := a.(type) {
			case Setting:
				args[i] = name(string(a))
			case *Error: // an Error wrapped with %w, or said with %v
				args[i] = renamed{a, name}
			default:
				args[i] = a
			}
		}
	}
	return fmt.Errorf(e.format, args...).Error()
}

// renamed is an Error said with other names, still an error for %w.
type renamed struct {
	e    *Error
	name func(setting string) string
}

func (r renamed) Error() string { return r.e.text(r.name) }

// Text is err's text with each Setting of the first Error in its chain
// (and of the Errors that one says) named by name: shout's commands name
// their flags. Wrappers that say what failed before it ("connect
// 127.0.0.1:1: …", as fmt.Errorf's %w does) keep their words; one that
// does not repeat the Error's own text leaves it as it is.
func Text(err error, name func(setting string) string) string {
	if err == nil {
		return ""
	}
	var e *Error
	if !errors.As(err, &e) {
		return err.Error()
	}
	s, own := err.Error(), e.Error()
	if i := strings.Index(s, own); i >= 0 {
		return s[:i] + e.text(name) + s[i+len(own):]
	}
	return s
}
