package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/lockertwin/lockertwin/sim/report"
	"github.com/lockertwin/lockertwin/sim/runner"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// runFlags are the flags run and compare share.
type runFlags struct {
	seed         uint64
	seedSet      bool
	replications int
	duration     string
	workers      int
}

func (f *runFlags) register(fs *flag.FlagSet) {
	fs.Func("seed", "override the scenario's seed (0 to 18446744073709551615)", func(s string) error {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return errors.New("want a whole number from 0 to 18446744073709551615")
		}
		f.seed, f.seedSet = seed, true
		return nil
	})
	fs.IntVar(&f.replications, "replications", 0, "override the scenario's number of replications")
	fs.StringVar(&f.duration, "duration", "", "override the measured horizon (e.g. 14d)")
	fs.IntVar(&f.workers, "workers", runtime.GOMAXPROCS(0), "replications run in parallel (0: one per core)")
}

// load reads the scenario, applies overrides and checks everything before
// any simulation starts.
func (f *runFlags) load(file string, stderr io.Writer) (*scenarios.Scenario, []byte, bool) {
	s, problems := loadScenario(file)
	if errs := problems.Errors(); len(errs) > 0 {
		fmt.Fprintln(stderr, errs.Error())
		return nil, nil, false
	}
	if w := problems.Warnings(); len(w) > 0 {
		fmt.Fprintln(stderr, w.Error())
	}
	if f.seedSet {
		s.Seed = f.seed
	}
	if f.workers < 0 {
		fmt.Fprintln(stderr, "lockersim: -workers must be 0 (one per core) or more")
		return nil, nil, false
	}
	if f.replications < 0 || f.replications > 10_000 {
		fmt.Fprintln(stderr, "lockersim: -replications must be between 1 and 10000")
		return nil, nil, false
	}
	if f.replications > 0 {
		s.Replications = f.replications
	}
	if f.duration != "" {
		d, err := scenarios.ParseDuration(f.duration)
		if err == nil && d > 0 {
			err = scenarios.CheckHorizon(s.Warmup, d)
		}
		if err != nil || d <= 0 {
			fmt.Fprintf(stderr, "lockersim: -duration: %v\n", orPositive(err))
			return nil, nil, false
		}
		s.Duration = d
	}
	src, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, nil, false
	}
	return s, src, true
}

func orPositive(err error) error {
	if err == nil {
		return errors.New("must be positive")
	}
	return err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress returns a Progress callback drawing a bar on a terminal, or nil.
func progress(stderr io.Writer, total int, label string) (func(done, total int), func()) {
	if !isTerminal(stderr) {
		return nil, func() {}
	}
	p := mpb.New(mpb.WithOutput(stderr), mpb.WithWidth(40))
	bar := p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name(label+" "), decor.CountersNoUnit("%d/%d replications")),
		mpb.AppendDecorators(decor.Elapsed(decor.ET_STYLE_GO)))
	return func(done, _ int) { bar.SetCurrent(int64(done)) }, p.Wait
}

func runRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	f.register(fs)
	out := fs.String("out", "", "write summary.json, timeseries.csv and report.html here")
	asJSON := fs.Bool("json", false, "print summary.json on stdout instead of the table")
	policy := fs.String("policy", "", "override the scenario's allocator policy")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the simulation to this file (go tool pprof reads it)")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the run to this file when it ends (go tool pprof reads it)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: lockersim run SCENARIO [flags]\n\nSimulates a scenario with the real controller and prints its KPIs with 95% confidence intervals.")
		fs.PrintDefaults()
	}
	file, ok := parseOne(fs, args, stderr)
	if !ok {
		return usageCode(args)
	}
	s, src, ok := f.load(file, stderr)
	if !ok {
		return ExitProblem
	}
	if *policy != "" {
		if err := allocator.Known(*policy); err != nil {
			fmt.Fprintln(stderr, "lockersim:", err)
			return ExitProblem
		}
	}
	if *out != "" {
		if err := report.CheckWritable(*out); err != nil {
			fmt.Fprintln(stderr, "lockersim:", err)
			return ExitProblem
		}
	}
	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "lockersim: -cpuprofile:", err)
			return ExitProblem
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			fmt.Fprintln(stderr, "lockersim: -cpuprofile:", err)
			return ExitProblem
		}
	}
	var mf *os.File
	if *memProfile != "" {
		var err error
		if mf, err = os.Create(*memProfile); err != nil {
			fmt.Fprintln(stderr, "lockersim: -memprofile:", err)
			return ExitProblem
		}
		defer mf.Close()
	}
	onProgress, wait := progress(stderr, s.Replications, s.Name)
	res, err := runner.Run(s, runner.Options{Policy: *policy, Workers: f.workers, Progress: onProgress})
	wait()
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if mf != nil {
		runtime.GC() // the profile is as of the last collection: make it now
		if werr := pprof.Lookup("allocs").WriteTo(mf, 0); werr != nil {
			fmt.Fprintln(stderr, "lockersim: -memprofile:", werr)
			return ExitProblem
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "lockersim:", err)
		fmt.Fprintln(stderr, "replay it with:", replayCommand("run", args, f.seedSet, s.Seed))
		return ExitProblem
	}
	if *asJSON {
		data, _ := json.MarshalIndent(report.NewSummary(res), "", "  ")
		fmt.Fprintln(stdout, string(data))
	} else {
		fmt.Fprint(stdout, report.Table(res))
		fmt.Fprintf(stdout, "\n%d events, %d parcels in %.2fs wall (%.0f events/s)\n",
			res.Events, res.Parcels, res.WallSeconds, float64(res.Events)/max(res.WallSeconds, 1e-9))
	}
	if *out != "" {
		files, err := report.Write(*out, res, src)
		if err != nil {
			fmt.Fprintln(stderr, "lockersim:", err)
			return ExitProblem
		}
		fmt.Fprintf(stderr, "wrote %s, %s and %s\n", files.Summary, files.Timeseries, files.Report)
	}
	return ExitOK
}

// parseOne parses flags placed before or after the one positional argument.
func parseOne(fs *flag.FlagSet, args []string, stderr io.Writer) (string, bool) {
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return "", false
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fs.Usage()
		return "", false
	}
	return pos[0], true
}

func usageCode(args []string) int {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return ExitOK
		}
	}
	return ExitUsage
}

// replayCommand is the command line that runs a failed run again: the
// same arguments (overrides of the horizon, replications or policy
// included), with the seed named when it came from the scenario.
func replayCommand(cmd string, args []string, seedSet bool, seed uint64) string {
	words := []string{"lockersim", cmd}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]<>|&;()#~{}") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		words = append(words, a)
	}
	if !seedSet {
		words = append(words, "-seed", strconv.FormatUint(seed, 10))
	}
	return strings.Join(words, " ")
}
