package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/scenarios"
)

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: lockersim validate FILE...\n\nChecks each scenario file and prints \"FILE: valid\" or every problem as file:line:col.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return ExitUsage
	}
	code := ExitOK
	for _, file := range fs.Args() {
		_, problems := loadScenario(file)
		if errs := problems.Errors(); len(errs) > 0 {
			code = ExitProblem
			fmt.Fprintln(stderr, errs.Error())
		}
		if warns := problems.Warnings(); len(warns) > 0 {
			fmt.Fprintln(stderr, warns.Error())
		}
		if len(problems.Errors()) == 0 {
			fmt.Fprintf(stdout, "%s: valid\n", file)
		}
	}
	return code
}

// loadScenario loads and validates a scenario, adding the checks that need
// packages the scenarios package may not import. All problems come back
// together: errors and warnings.
func loadScenario(file string) (*scenarios.Scenario, scenarios.Problems) {
	s, warnings, err := scenarios.Load(file)
	var problems scenarios.Problems
	if err != nil {
		var ps scenarios.Problems
		if !errors.As(err, &ps) { // Load says every failure as Problems; this keeps any other
			return nil, scenarios.Problems{{File: file, Severity: scenarios.Error, Message: err.Error()}}
		}
		problems = append(problems, ps...)
	}
	problems = append(problems, warnings...)
	if s != nil {
		problems = append(problems, checkPolicy(s)...)
	}
	problems.Sort()
	return s, problems
}

// checkPolicy reports an allocator name that is not registered.
func checkPolicy(s *scenarios.Scenario) scenarios.Problems {
	if err := allocator.Known(s.Policy.Allocator); err != nil {
		return scenarios.Problems{s.Problem("policy.allocator", scenarios.Error, "%s", err)}
	}
	return nil
}
