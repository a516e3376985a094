// Command lockersim simulates smart parcel locker networks from scenario
// files. See 'lockersim help'.
package main

import (
	"os"

	"github.com/lockertwin/lockertwin/sim/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
