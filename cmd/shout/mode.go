package main

import (
	"strings"

	"shout/upper"
)

// transformer is the engine for the --mode and --lang flags that serve and
// bench share.
func transformer(mode, lang string) (*upper.Transformer, error) {
	m, err := upper.ParseMode(mode)
	if err != nil {
		return nil, usage(err)
	}
	t, err := upper.New(m, lang)
	if err != nil {
		// upper's errors name their package; the user named a flag.
		return nil, usagef("--lang: %s", strings.TrimPrefix(err.Error(), "upper: "))
	}
	return t, nil
}
