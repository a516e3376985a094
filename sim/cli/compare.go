package cli

import (
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/sim/report"
	"github.com/lockertwin/lockertwin/sim/runner"
	"github.com/lockertwin/lockertwin/sim/world"
)

// failIf is a -fail-if condition on the difference of a KPI between a policy
// and the first (baseline) policy: "overflow_rate>+0.005" fails when some
// policy's mean overflow exceeds the baseline's by more than 0.005.
type failIf struct {
	kpi   string
	op    byte // '>' or '<'
	limit float64
	text  string
}

func parseFailIf(s string) (failIf, error) {
	i := strings.IndexAny(s, "<>")
	if i <= 0 || i == len(s)-1 {
		return failIf{}, fmt.Errorf("-fail-if %q: want KPI>VALUE or KPI<VALUE, e.g. overflow_rate>+0.005", s)
	}
	v, err := strconv.ParseFloat(s[i+1:], 64)
	if err != nil {
		return failIf{}, fmt.Errorf("-fail-if %q: %v", s, err)
	}
	return failIf{kpi: s[:i], op: s[i], limit: v, text: s}, nil
}

func (f failIf) holds(diff float64) bool {
	if f.op == '>' {
		return diff > f.limit
	}
	return diff < f.limit
}

// ExitFailIf is compare's exit code when a -fail-if condition holds.
const ExitFailIf = 3

func runCompare(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	f.register(fs)
	policies := fs.String("policies", "", "comma-separated allocator policies; the first is the baseline")
	var conds []failIf
	fs.Func("fail-if", "exit 3 when a policy's KPI differs from the baseline's so (repeatable), e.g. overflow_rate>+0.005", func(s string) error {
		c, err := parseFailIf(s)
		if err == nil {
			conds = append(conds, c)
		}
		return err
	})
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: lockersim compare SCENARIO -policies a,b [flags]\n\nRuns each policy on the same seeds (common random numbers) and prints KPI differences against the first with paired 95% confidence intervals.")
		fs.PrintDefaults()
	}
	file, ok := parseOne(fs, args, stderr)
	if !ok {
		return usageCode(args)
	}
	names := strings.Split(*policies, ",")
	if *policies == "" || len(names) < 2 {
		fmt.Fprintln(stderr, "lockersim compare: -policies needs at least two policies, e.g. best-fit,reserve-large")
		return ExitUsage
	}
	for i, n := range names {
		if n == "" {
			fmt.Fprintf(stderr, "lockersim compare: -policies %q names an empty policy; give names separated by commas, e.g. best-fit,reserve-large\n", *policies)
			return ExitUsage
		}
		if slices.Contains(names[:i], n) {
			fmt.Fprintf(stderr, "lockersim compare: -policies names %s twice; a policy compared with itself differs by nothing\n", n)
			return ExitUsage
		}
		if err := allocator.Known(n); err != nil {
			fmt.Fprintln(stderr, "lockersim:", err)
			return ExitProblem
		}
	}
	s, _, ok := f.load(file, stderr)
	if !ok {
		return ExitProblem
	}
	// A misspelt KPI is refused now, not after every policy has run.
	for _, c := range conds {
		if err := world.CheckKPI(s, c.kpi); err != nil {
			fmt.Fprintf(stderr, "lockersim compare: -fail-if %q: %v\n", c.text, err)
			return ExitUsage
		}
	}
	outs := make([]*runner.Output, len(names))
	for i, n := range names {
		onProgress, wait := progress(stderr, s.Replications, n)
		out, err := runner.Run(s, runner.Options{Policy: n, Workers: f.workers, Progress: onProgress})
		wait()
		if err != nil {
			fmt.Fprintln(stderr, "lockersim:", err)
			fmt.Fprintln(stderr, "replay it with:", replayCommand("compare", args, f.seedSet, s.Seed))
			return ExitProblem
		}
		outs[i] = out
	}
	base := outs[0]
	fmt.Fprintf(stdout, "%s — %d replication(s) per policy on common random numbers (seed %d); differences against %s\n\n",
		s.Name, s.Replications, s.Seed, names[0])
	// One replication has no interval: its differences are shown bare, not
	// as "+1 [+1, +1]", which would claim a certainty one run cannot give.
	ciHeading, diff := " (95% CI)", report.Difference
	if s.Replications < 2 {
		ciHeading = " (one replication: no CI)"
		diff = func(mean, _, _ float64) string { return report.Signed(mean) }
	}
	fmt.Fprintf(stdout, "%-28s", "KPI")
	for _, n := range names {
		fmt.Fprintf(stdout, " %14s", n)
	}
	for _, n := range names[1:] {
		fmt.Fprintf(stdout, "   %-34s", "Δ "+n+ciHeading)
	}
	fmt.Fprintln(stdout)
	failed := false
	for _, name := range kpiNames(outs) {
		fmt.Fprintf(stdout, "%-28s", name)
		for _, o := range outs {
			v, _ := o.Get(name) // none: the KPI did not occur, a zero
			fmt.Fprintf(stdout, " %14s", report.Num(v.Mean))
		}
		for _, o := range outs[1:] {
			d := paired(name, base, o)
			fmt.Fprintf(stdout, "   %-34s", diff(d.Mean, d.Low, d.High))
		}
		fmt.Fprintln(stdout)
	}
	for _, c := range conds {
		for i, o := range outs[1:] {
			d := paired(c.kpi, base, o)
			if c.holds(d.Mean) {
				fmt.Fprintf(stdout, "\nFAIL: %s: %s − %s = %s\n", c.text, names[i+1], names[0], diff(d.Mean, d.Low, d.High))
				failed = true
			}
		}
	}
	if failed {
		return ExitFailIf
	}
	return ExitOK
}

// kpiNames is every KPI that some policy's run reports, in the baseline's
// order (runner.MergeOrder): a KPI only another policy reports (an alarm
// the baseline never raised, say) shows beside the others.
func kpiNames(outs []*runner.Output) []string {
	lists := make([][]string, len(outs))
	for i, o := range outs {
		for _, s := range o.Summary {
			lists[i] = append(lists[i], s.Name)
		}
	}
	return runner.MergeOrder(lists...)
}

// values is a KPI's value in each replication of o: zeros when o reports
// no such KPI (a count or an alarm kind that did not occur).
func values(o *runner.Output, name string) []float64 {
	if st, ok := o.Get(name); ok {
		return st.Values
	}
	return make([]float64, o.Replications)
}

// paired is the mean and 95 % CI of per-replication differences o − base:
// with common random numbers the pairs share demand and behaviour, so the
// interval is far narrower than comparing two independent means.
func paired(name string, base, o *runner.Output) runner.Stat {
	b, v := values(base, name), values(o, name)
	diffs := make([]float64, len(b))
	for i := range diffs {
		if i < len(v) {
			diffs[i] = v[i] - b[i]
		}
	}
	st := runner.DiffInterval(name, diffs)
	if math.IsNaN(st.Mean) {
		st.Mean, st.Low, st.High = 0, 0, 0
	}
	return st
}
