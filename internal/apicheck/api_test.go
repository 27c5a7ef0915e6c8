// Package apicheck holds a test of the module's public API as a whole:
// what a program outside this module can use.
package apicheck

import (
	"fmt"
	"go/build"
	"go/importer"
	"go/token"
	"go/types"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNoInternalInPublicAPI fails when an exported name of a public
// package (a function's parameter or result, a field, a method, a
// variable's type) has a type from an internal package: a program outside
// this module cannot import that package, so it cannot make or name the
// value, and the API is unusable to it however it is documented.
func TestNoInternalInPublicAPI(t *testing.T) {
	out, err := exec.Command("go", "list", "shout/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var public []string
	for _, p := range strings.Fields(string(out)) {
		if !internal(p) && !strings.HasPrefix(p, "shout/cmd/") && p != "shout/deploy" {
			public = append(public, p)
		}
	}
	if len(public) < 5 {
		t.Fatalf("go list found only %v: the test would check nothing", public)
	}
	// Type-checking net with cgo runs the C compiler for the test's own
	// GOARCH, which a machine need not have (GOARCH=386 on amd64 without
	// gcc-multilib); the API is the same without it.
	build.Default.CgoEnabled = false
	imp := importer.ForCompiler(token.NewFileSet(), "source", nil)
	var bad []string
	for _, path := range public {
		pkg, err := imp.Import(path)
		if err != nil {
			t.Fatalf("type-checking %s: %v", path, err)
		}
		w := walker{seen: map[types.Type]bool{}}
		scope := pkg.Scope()
		for _, name := range scope.Names() {
			obj := scope.Lookup(name)
			if !obj.Exported() {
				continue
			}
			w.where = path + "." + name
			w.typ(obj.Type())
		}
		bad = append(bad, w.bad...)
	}
	slices.Sort(bad)
	for _, b := range slices.Compact(bad) {
		t.Error(b)
	}
}

func internal(path string) bool {
	return strings.Contains(path, "/internal/") || strings.HasSuffix(path, "/internal")
}

// walker follows a type through everything a user of it can reach:
// elements, parameters and results, exported fields and methods.
type walker struct {
	where string // the exported name the walk started from
	seen  map[types.Type]bool
	bad   []string
}

func (w *walker) typ(t types.Type) {
	if w.seen[t] {
		return
	}
	w.seen[t] = true
	switch t := t.(type) {
	case *types.Alias:
		w.typ(types.Unalias(t))
	case *types.Named:
		pkg := t.Obj().Pkg()
		if pkg == nil || !strings.HasPrefix(pkg.Path(), "shout") {
			return // the standard library's, or another module's
		}
		if internal(pkg.Path()) {
			w.bad = append(w.bad, fmt.Sprintf("%s uses %s.%s, from an internal package", w.where, pkg.Path(), t.Obj().Name()))
			return
		}
		for m := range t.Methods() {
			if m.Exported() {
				w.typ(m.Type())
			}
		}
		w.typ(t.Underlying())
	case *types.Pointer:
		w.typ(t.Elem())
	case *types.Slice:
		w.typ(t.Elem())
	case *types.Array:
		w.typ(t.Elem())
	case *types.Chan:
		w.typ(t.Elem())
	case *types.Map:
		w.typ(t.Key())
		w.typ(t.Elem())
	case *types.Signature:
		for v := range t.Params().Variables() {
			w.typ(v.Type())
		}
		for v := range t.Results().Variables() {
			w.typ(v.Type())
		}
	case *types.Struct:
		for f := range t.Fields() {
			if f.Exported() {
				w.typ(f.Type())
			}
		}
	case *types.Interface:
		for m := range t.Methods() {
			if m.Exported() {
				w.typ(m.Type())
			}
		}
	}
}
