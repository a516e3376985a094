//go:build !js

package main

import (
	"fmt"
	"os"
)

func programArgs() []string { return os.Args[1:] }

// inPage: the view runs in a window, started from a terminal.
const inPage = false

// showError reports a problem on standard error.
func showError(msg string) { fmt.Fprintln(os.Stderr, msg) }
