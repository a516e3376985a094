// Command lockerview shows a locker network live: the simulator running a
// scenario in-process, drawn with Ebiten. -screenshot writes a PNG after N
// ticks and exits (deterministic for a scenario and seed).
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
		return 2
	}
	if *liveURL != "" {
		return live(*liveURL, *token, *measure)
	}
	load := func() (*scenarios.Scenario, scenarios.Problems, error) { return scenarios.Load(*scenarioFile) }
	if *shipped != "" {
		load = func() (*scenarios.Scenario, scenarios.Problems, error) { return scenarios.LoadShipped(*shipped) }
	}
	sc, _, err := load()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if *seed != 0 {
		sc.Seed = *seed
	}
	src, err := scene.NewSimSource(sc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lockerview:", err)
		return 1
	}
	g := visualize.NewGame(src, *speed)
	ebiten.SetWindowSize(visualize.ScreenW, visualize.ScreenH)
	ebiten.SetWindowTitle("lockertwin — " + sc.Name)
	ebiten.SetTPS(visualize.TPS)
	if *screenshot != "" {
		g.ScreenshotAfter(*screenshot, *after)
		// Deterministic frames: every tick is one fixed step, drawn.
		ebiten.SetVsyncEnabled(false)
	}
	if *measure > 0 {
		g.MeasureFor(*measure)
	}
	if err := ebiten.RunGame(g); err != nil {
		fmt.Fprintln(os.Stderr, "lockerview:", err)
		return 1
	}
	if err := g.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "lockerview:", err)
		return 1
	}
	if *screenshot != "" {
		fmt.Fprintln(os.Stderr, "wrote", *screenshot)
	}
	if m := g.Measured(); m != "" {
		fmt.Println(m)
	}
	return 0
}

// live follows a running lockerd in real time.
func live(url, token string, measure time.Duration) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src, err := scene.NewLiveSource(ctx, url, token)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lockerview:", err)
		return 1
	}
	defer src.Close()
	g := visualize.NewGame(src, 0)
	src.Apply(g.Scene)
	ebiten.SetWindowSize(visualize.ScreenW, visualize.ScreenH)
	ebiten.SetWindowTitle("lockertwin — live " + url)
	if measure > 0 {
		g.MeasureFor(measure)
	}
	if err := ebiten.RunGame(g); err != nil {
		fmt.Fprintln(os.Stderr, "lockerview:", err)
		return 1
	}
	if m := g.Measured(); m != "" {
		fmt.Println(m)
	}
	return 0
}
