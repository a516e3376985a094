// Command lockersim simulates smart parcel locker networks from scenario
// files. See 'lockersim help'.
package main

import (
	"os"
	"runtime/debug"

	"github.com/lockertwin/lockertwin/sim/cli"
)

func main() {
	// A simulation allocates many short-lived objects over a large live set
	// (every parcel in every locker): trading memory for fewer collections
	// speeds the city month by about a fifth. GOGC in the environment wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(300)
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
