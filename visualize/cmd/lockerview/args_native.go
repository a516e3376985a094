//go:build !js

package main

import "os"

func programArgs() []string { return os.Args[1:] }
