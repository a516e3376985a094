// Package cli is lockersim's command line: subcommand dispatch with one
// flag.FlagSet per subcommand. It is a library so that tests run every
// subcommand in-process; sim/cmd/lockersim only calls Main.
package cli

import (
	"fmt"
	"io"
	"strings"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitProblem = 1 // the input is wrong (an invalid scenario, say)
	ExitUsage   = 2 // the command line is wrong
)

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"run", "simulate a scenario: KPIs with confidence intervals, summary.json, timeseries.csv, report.html", runRun},
		{"compare", "run allocator policies on common random numbers and compare their KPIs", runCompare},
		{"validate", "check scenario files and report every problem as file:line:col", runValidate},
	}
}

// Main runs lockersim with args (without the program name) and returns the
// process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 2 && args[0] == "help" { // "help run" is "run -h"
		args = []string{args[1], "-h"}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "lockersim: unknown command %q\n\n", args[0])
	usage(stderr)
	return ExitUsage
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("lockersim simulates smart parcel locker networks.\n\nUsage:\n  lockersim <command> [flags] [args]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'lockersim <command> -h' (or 'lockersim help <command>') for a command's flags.\n")
	io.WriteString(w, b.String())
}
