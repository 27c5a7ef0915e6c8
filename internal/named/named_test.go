package named_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"shout/internal/named"
)

func flag(setting string) string {
	return map[string]string{"Options.CA": "--ca", "Conns": "--conns"}[setting]
}

func TestText(t *testing.T) {
	inner := named.Errorf("%s: %w", named.Setting("Options.CA"), fs.ErrNotExist)
	for _, tc := range []struct {
		name       string
		err        error
		text, flag string
	}{
		{"two settings", named.Errorf("%s or %s", named.Setting("Options.CA"), named.Setting("Conns")), "Options.CA or Conns", "--ca or --conns"},
		{"wrapped by fmt", fmt.Errorf("connect 127.0.0.1:1: %w", named.Errorf("use fewer %s", named.Setting("Conns"))),
			"connect 127.0.0.1:1: use fewer Conns", "connect 127.0.0.1:1: use fewer --conns"},
		{"an Error in an Error", named.Errorf("%s; use fewer %s", inner, named.Setting("Conns")),
			"Options.CA: file does not exist; use fewer Conns", "--ca: file does not exist; use fewer --conns"},
		{"reworded", named.Reword(fs.ErrNotExist, "no %s", named.Setting("Options.CA")), "no Options.CA", "no --ca"},
		// Every Error in the tree, not only the first errors.As finds.
		{"joined", errors.Join(inner, named.Errorf("use fewer %s", named.Setting("Conns"))),
			"Options.CA: file does not exist\nuse fewer Conns", "--ca: file does not exist\nuse fewer --conns"},
		{"two %w", fmt.Errorf("%w; %w", named.Errorf("no %s", named.Setting("Options.CA")), named.Errorf("use fewer %s", named.Setting("Conns"))),
			"no Options.CA; use fewer Conns", "no --ca; use fewer --conns"},
		{"one twice", errors.Join(inner, inner), "Options.CA: file does not exist\nOptions.CA: file does not exist",
			"--ca: file does not exist\n--ca: file does not exist"},
		{"an Error in fmt's in an Error", named.Errorf("%s: %w", named.Setting("Conns"), fmt.Errorf("at 1: %w", inner)),
			"Conns: at 1: Options.CA: file does not exist", "--conns: at 1: --ca: file does not exist"},
		{"rewritten by a Rewriter", fmt.Errorf("dial: %w", shouting{inner}), "dial: OPTIONS.CA: FILE DOES NOT EXIST", "dial: --CA: FILE DOES NOT EXIST"},
		{"none", errors.New("Conns"), "Conns", "Conns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.text {
				t.Errorf("Error() = %q, want %q", got, tc.text)
			}
			if got := named.Text(tc.err, flag); got != tc.flag {
				t.Errorf("Text = %q, want %q", got, tc.flag)
			}
		})
	}
	if !errors.Is(inner, fs.ErrNotExist) || !errors.Is(named.Reword(fs.ErrNotExist, "x"), fs.ErrNotExist) {
		t.Error("an Error does not wrap what it was made of")
	}
	// Each %w wraps, as fmt.Errorf's do: with two, it wrapped neither.
	if two := named.Errorf("%w: %w", fs.ErrNotExist, fs.ErrPermission); !errors.Is(two, fs.ErrNotExist) || !errors.Is(two, fs.ErrPermission) {
		t.Errorf("%v does not wrap both its %%w", two)
	}
}

// shouting is a wrapper that rewrites the text it wraps (upper-cases
// it), and says so as a Rewriter.
type shouting struct{ err error }

func (s shouting) Error() string           { return s.Rewrite(s.err.Error()) }
func (s shouting) Unwrap() error           { return s.err }
func (s shouting) Rewrite(t string) string { return strings.ToUpper(t) }

var _ named.Rewriter = shouting{}

// hidden rewrites as shouting does, and is no Rewriter.
type hidden struct{ err error }

func (h hidden) Error() string { return strings.ToUpper(h.err.Error()) }
func (h hidden) Unwrap() error { return h.err }

// A wrapper that rewrites an Error's text and is no Rewriter hides it
// from Text: Check says so, where Text cannot.
func TestCheck(t *testing.T) {
	e := named.Errorf("no %s", named.Setting("Options.CA"))
	for _, tc := range []struct {
		name string
		err  error
		lost bool
	}{
		{"an Error", e, false},
		{"wrapped by fmt", fmt.Errorf("dial: %w", e), false},
		{"joined", errors.Join(errors.New("x"), e), false},
		{"rewritten, a Rewriter", shouting{e}, false},
		{"rewritten, no Rewriter", hidden{e}, true},
		{"rewritten in a Join", errors.Join(e, hidden{e}), true},
		// Text renames what an Error says on its own (Errors in its
		// arguments too): one hidden there is as lost.
		{"rewritten in an Error", named.Errorf("%s: %w", named.Setting("Conns"), hidden{e}), true},
		{"rewritten in a Reword", named.Reword(e, "%v", hidden{e}), true},
		{"no Error", errors.New("no Options.CA"), false},
		{"nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := named.Check(tc.err); (err != nil) != tc.lost {
				t.Errorf("Check = %v, want an error: %v", err, tc.lost)
			}
		})
	}
}

// A handler that encodes a value as JSON gets the text, not {}.
func TestMarshalJSON(t *testing.T) {
	b, err := json.Marshal(named.Errorf("limit (%s)", named.Setting("Conns")))
	if err != nil || string(b) != `"limit (Conns)"` {
		t.Errorf("json.Marshal: %s, %v; want \"limit (Conns)\"", b, err)
	}
}
