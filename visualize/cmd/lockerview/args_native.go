//go:build !js

package main

import (
	"fmt"
	"os"

	// Before Ebiten starts: a plain message, not a panic, without a display.
	_ "github.com/lockertwin/lockertwin/visualize/cmd/lockerview/internal/display/guard"
)

func programArgs() []string { return os.Args[1:] }

// inPage: the view runs in a window, started from a terminal.
const inPage = false

// showError reports a problem on standard error.
func showError(msg string) { fmt.Fprintln(os.Stderr, msg) }
