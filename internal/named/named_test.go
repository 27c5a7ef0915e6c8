package named_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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

// A handler that encodes a value as JSON gets the text, not {}.
func TestMarshalJSON(t *testing.T) {
	b, err := json.Marshal(named.Errorf("limit (%s)", named.Setting("Conns")))
	if err != nil || string(b) != `"limit (Conns)"` {
		t.Errorf("json.Marshal: %s, %v; want \"limit (Conns)\"", b, err)
	}
}
