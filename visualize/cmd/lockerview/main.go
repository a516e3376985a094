// Command lockerview shows a locker network live, drawn with Ebiten: the
// simulator running a scenario in-process, or a running lockerd followed
// over its API (-url). -screenshot writes a PNG after N ticks and exits
// (deterministic for a scenario and seed).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/hajimehoshi/ebiten/v2"

	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/lockertwin/lockertwin/visualize"
	"github.com/lockertwin/lockertwin/visualize/scene"
)

func main() { os.Exit(run()) }

func run() int {
	fs := flag.NewFlagSet("lockerview", flag.ContinueOnError)
	scenarioFile := fs.String("scenario", "scenarios/residential-tower.yaml", "scenario to simulate and show")
	shipped := fs.String("shipped", "", "show a shipped scenario by name (e.g. city-network.yaml) instead of a file")
	seed := fs.Uint64("seed", 0, "override the scenario's seed")
	speed := fs.Int("speed", 5, fmt.Sprintf("initial speed, an index into %v (times real time)", visualize.Speeds))
	screenshot := fs.String("screenshot", "", "write a PNG after -after ticks and exit")
	after := fs.Int("after", 600, "ticks before the screenshot (60 ticks = 1 s of viewing)")
	measure := fs.Duration("measure", 0, "run this long, then print frames and ticks per second and exit")
	liveURL := fs.String("url", "", "follow a running lockerd (e.g. http://127.0.0.1:8080) instead of simulating")
	token := fs.String("token", "", "lockerd courier or admin token, with -url")
	if err := fs.Parse(programArgs()); err != nil {
		if inPage {
			showError("lockerview: " + err.Error()) // flag printed it to the console
		}
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := checkFlags(set, fs.Args()); err != nil {
		showError("lockerview: " + err.Error())
		return 2
	}
	shot := shotOptions{path: *screenshot, after: *after, measure: *measure}
	if *liveURL != "" {
		return live(*liveURL, *token, shot)
	}
	load := func() (*scenarios.Scenario, scenarios.Problems, error) { return scenarios.Load(*scenarioFile) }
	if *shipped != "" {
		load = func() (*scenarios.Scenario, scenarios.Problems, error) { return scenarios.LoadShipped(*shipped) }
	}
	sc, _, err := load()
	if err != nil {
		showError(err.Error())
		return 1
	}
	if *seed != 0 {
		sc.Seed = *seed
	}
	src, err := scene.NewSimSource(sc)
	if err != nil {
		showError("lockerview: " + err.Error())
		return 1
	}
	return play(visualize.NewGame(src, *speed), "lockertwin — "+sc.Name, shot)
}

// checkFlags refuses flags that do nothing together, rather than ignoring
// one: following a lockerd shows its own time and state, so a scenario, a
// seed or a speed has no meaning there, and a token only goes with -url.
// It refuses arguments after the flags too (args): flag parsing stops at
// the first, and a scenario given so would be ignored, with every flag
// after it.
func checkFlags(set map[string]bool, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q: lockerview takes only flags (a scenario is -scenario FILE or -shipped NAME)", args[0])
	}
	if set["url"] {
		for _, name := range []string{"scenario", "shipped", "seed", "speed"} {
			if set[name] {
				return fmt.Errorf("-%s is for simulating a scenario; -url follows a running lockerd in its own time", name)
			}
		}
		return nil
	}
	if set["token"] {
		return fmt.Errorf("-token goes with -url (a lockerd to follow)")
	}
	if set["scenario"] && set["shipped"] {
		return fmt.Errorf("-scenario and -shipped both name a scenario: give one")
	}
	return nil
}

// shotOptions are the flags that end a view by themselves: a screenshot
// after some ticks, or a measurement of the frame rate.
type shotOptions struct {
	path    string
	after   int
	measure time.Duration
}

// play runs the game in a window until it is closed, or until its
// screenshot is written or its measurement taken.
func play(g *visualize.Game, title string, shot shotOptions) int {
	ebiten.SetWindowSize(visualize.ScreenW, visualize.ScreenH)
	ebiten.SetWindowTitle(title)
	ebiten.SetTPS(visualize.TPS)
	if shot.path != "" {
		g.ScreenshotAfter(shot.path, shot.after)
		// Deterministic frames: every tick is one fixed step, drawn.
		ebiten.SetVsyncEnabled(false)
	}
	if shot.measure > 0 {
		g.MeasureFor(shot.measure)
	}
	if err := ebiten.RunGame(g); err != nil {
		showError("lockerview: " + err.Error())
		return 1
	}
	if err := g.Err(); err != nil {
		showError("lockerview: " + err.Error())
		return 1
	}
	if shot.path != "" {
		fmt.Fprintln(os.Stderr, "wrote", shot.path)
	}
	if m := g.Measured(); m != "" {
		fmt.Println(m)
	}
	return 0
}

// live follows a running lockerd in real time.
func live(url, token string, shot shotOptions) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src, err := scene.NewLiveSource(ctx, url, token)
	if err != nil {
		showError("lockerview: " + err.Error())
		return 1
	}
	defer src.Close()
	g := visualize.NewGame(src, 0)
	src.Apply(g.Scene)
	return play(g, "lockertwin — live "+url, shot)
}
