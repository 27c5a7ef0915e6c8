// Package named holds errors whose text names settings: a library's
// error names its own (the Go field, TLSOptions.CA), and a program that
// sets them from flags shows its user the flag (--ca) through Text, with
// no copy of the text to keep in step.
package named

import (
	"fmt"
	"slices"
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

func (e *Error) Error() string {
	s, _ := e.text(nil)
	return s
}

func (e *Error) Unwrap() []error { return e.errs }

// MarshalText is the error's text: a log handler that encodes values
// as JSON would make {} of its unexported fields.
func (e *Error) MarshalText() ([]byte, error) { return []byte(e.Error()), nil }

// text is the error's text, each Setting named by name (nil: as it is),
// and each error it says that holds Errors (an Error, errors.Join's of
// them) said with Text; and the Errors in those that Text could not find
// (for Check: rename stops at an Error, whose text says the rest).
func (e *Error) text(name func(setting string) string) (string, []*Error) {
	args := e.args
	var lost []*Error
	if name != nil {
		args = make([]any, len(e.args))
		for i, a := range e.args {
			switch a := a.(type) {
			case Setting:
				args[i] = name(string(a))
			case error: // wrapped with %w, or said with %v
				args[i] = a
				t, l := rename(a, name)
				if t != a.Error() {
					args[i] = said(t) // still an error for %w
				}
				lost = append(lost, l...)
			default:
				args[i] = a
			}
		}
	}
	return fmt.Errorf(e.format, args...).Error(), lost
}

// said is an error's text said otherwise.
type said string

func (s said) Error() string { return string(s) }

// A Rewriter is an error whose text holds the one it wraps rewritten
// (escaped, say), not as it is: Text finds an Error's text in it as
// Rewrite makes it, and rewrites the Error's renamed text the same way.
// A wrapper that rewrites and is no Rewriter hides the Errors it wraps
// from Text, which leaves their names as they are; Check finds it.
type Rewriter interface {
	error
	Rewrite(text string) string
}

// Text is err's text with each Setting of every Error in its tree (each
// of errors.Join's, each %w's, an Error said in another) named by name:
// shout's commands name their flags. Wrappers that say what failed around
// an Error's text ("connect 127.0.0.1:1: …", as fmt.Errorf's %w does)
// keep their words; one that rewrites it must be a Rewriter.
func Text(err error, name func(setting string) string) string {
	s, _ := rename(err, name)
	return s
}

// Check reports the Errors in err's tree whose text Text cannot find in
// err's, to name their settings: a wrapper between rewrote it and is no
// Rewriter. For tests of a program that shows its errors with Text.
func Check(err error) error {
	_, lost := rename(err, func(setting string) string { return "<" + setting + ">" })
	if len(lost) == 0 {
		return nil
	}
	return fmt.Errorf("named: the text of %q does not hold %q as it is: a wrapper between rewrote it, and is no named.Rewriter", err.Error(), lost[0].Error())
}

// found is an Error in an error's tree and the Rewriters above it,
// outermost first.
type found struct {
	e  *Error
	rw []Rewriter
}

// rename is Text, and the Errors it could not find in err's text.
func rename(err error, name func(setting string) string) (string, []*Error) {
	if err == nil {
		return "", nil
	}
	var all []found
	var walk func(err error, rw []Rewriter)
	walk = func(err error, rw []Rewriter) {
		if e, ok := err.(*Error); ok { // its text renames what it says
			all = append(all, found{e, rw})
			return
		}
		if r, ok := err.(Rewriter); ok {
			rw = append(rw[:len(rw):len(rw)], r)
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			if w := u.Unwrap(); w != nil {
				walk(w, rw)
			}
		case interface{ Unwrap() []error }:
			for _, w := range u.Unwrap() {
				walk(w, rw)
			}
		}
	}
	walk(err, nil)

	// Each Error's text where it is in err's, the first place not taken
	// by another (errors.Join(e, e) holds it twice), renamed.
	s := err.Error()
	type span struct {
		from, to int
		text     string
	}
	var spans []span
	var lost []*Error
	taken := func(from, to int) bool {
		for _, p := range spans {
			if from < p.to && p.from < to {
				return true
			}
		}
		return false
	}
	for _, f := range all {
		renamed, inner := f.e.text(name)
		lost = append(lost, inner...)
		own := f.e.Error()
		for i := len(f.rw) - 1; i >= 0; i-- {
			own, renamed = f.rw[i].Rewrite(own), f.rw[i].Rewrite(renamed)
		}
		if own == renamed {
			continue
		}
		at := -1
		for from := 0; from <= len(s); {
			i := strings.Index(s[from:], own)
			if i < 0 {
				break
			}
			if i += from; !taken(i, i+len(own)) {
				at = i
				break
			}
			from = i + 1
		}
		if at < 0 || own == "" {
			lost = append(lost, f.e)
			continue
		}
		spans = append(spans, span{at, at + len(own), renamed})
	}
	slices.SortFunc(spans, func(a, b span) int { return a.from - b.from })
	var b strings.Builder
	last := 0
	for _, p := range spans {
		b.WriteString(s[last:p.from])
		b.WriteString(p.text)
		last = p.to
	}
	b.WriteString(s[last:])
	return b.String(), lost
}
