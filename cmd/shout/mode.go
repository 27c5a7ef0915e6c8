package main

import (
	"fmt"

	"shout/upper"
)

// transformer is the engine for the --mode and --lang flags that serve and
// bench share.
func transformer(mode, lang string) (*upper.Transformer, error) {
	m, err := upper.ParseMode(mode)
	if err != nil {
		return nil, err
	}
	t, err := upper.New(m, lang)
	if err != nil {
		return nil, fmt.Errorf("--lang: %w", err)
	}
	return t, nil
}
