package visualize

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strings"
	"time"

	"github.com/hajimehoshi/ebiten/v2"
	"github.com/hajimehoshi/ebiten/v2/ebitenutil"
	"github.com/hajimehoshi/ebiten/v2/inpututil"
	"github.com/hajimehoshi/ebiten/v2/vector"

	. "github.com/lockertwin/lockertwin/visualize/scene"
)

// Screen size of the view.
const (
	ScreenW = 1280
	ScreenH = 800
	panelW  = 300 // the right-hand panel: clock, KPIs, legend, selection
	TPS     = 60  // ticks per second
)

// Speeds a viewer can pick, as multiples of real time.
var Speeds = []float64{1, 10, 60, 600, 3600, 10_000, 36_000, 100_000}

// Game is the Ebiten adapter: Update advances the source by a fixed step of
// virtual time per tick (so the same seed draws the same frames), Draw only
// reads the scene.
type Game struct {
	Scene *Scene
	src   Source
	view  Viewport

	speed    int // index into Speeds
	paused   bool
	stepOnce bool
	virtual  time.Duration
	more     bool
	err      error

	dragging     bool
	dragX, dragY int
	selSite      int
	selCabinet   int

	ticks          int
	frames         int
	legend         *ebiten.Image // the panel's static part, drawn once
	measureFor     time.Duration
	measureStart   time.Time
	measured       string
	screenshot     string
	screenshotTick int
	shot           bool
	done           bool
}

// NewGame builds a view of a source at a speed (an index into Speeds).
func NewGame(src Source, speed int) *Game {
	g := &Game{Scene: NewScene(src.Layout()), src: src, speed: clampInt(speed, 0, len(Speeds)-1), more: true, selSite: -1}
	g.Scene.Now = src.Start()
	g.view = g.Scene.Fit(0, 0, ScreenW-panelW, ScreenH)
	return g
}

func clampInt(v, lo, hi int) int { return max(lo, min(hi, v)) }

// MeasureFor makes the game run for d of wall time, then stop and report
// the frames and ticks per second it achieved (Measured).
func (g *Game) MeasureFor(d time.Duration) { g.measureFor = d }

// Measured is the frame-rate report of a MeasureFor run.
func (g *Game) Measured() string { return g.measured }

// ScreenshotAfter makes the game write a PNG after n ticks and then stop.
func (g *Game) ScreenshotAfter(path string, n int) { g.screenshot, g.screenshotTick = path, n }

// Step advances virtual time by one tick at the current speed.
func (g *Game) Step() error {
	if !g.more {
		return nil
	}
	g.virtual += time.Duration(Speeds[g.speed] * float64(time.Second) / TPS)
	g.more, g.err = g.src.Advance(g.virtual, g.Scene.Apply)
	g.Scene.Tick(g.src.Start().Add(g.virtual))
	return g.err
}

// Update handles input and advances the simulation by one fixed step.
func (g *Game) Update() error {
	if g.done {
		return ebiten.Termination
	}
	if g.measureFor > 0 {
		if g.measureStart.IsZero() {
			g.measureStart = time.Now()
		} else if el := time.Since(g.measureStart); el >= g.measureFor {
			g.measured = fmt.Sprintf("%d frames and %d ticks in %.1fs: %.1f frames/s, %.1f ticks/s (simulated %v)",
				g.frames, g.ticks, el.Seconds(), float64(g.frames)/el.Seconds(), float64(g.ticks)/el.Seconds(), g.virtual.Round(time.Minute))
			return ebiten.Termination
		}
	}
	if g.screenshot != "" && g.ticks >= g.screenshotTick {
		return nil // hold this exact frame until Draw captures it
	}
	g.input()
	if !g.paused || g.stepOnce {
		g.stepOnce = false
		if err := g.Step(); err != nil {
			return err
		}
	}
	g.ticks++
	return nil
}

func (g *Game) input() {
	switch {
	case inpututil.IsKeyJustPressed(ebiten.KeySpace):
		g.paused = !g.paused
	case inpututil.IsKeyJustPressed(ebiten.KeyEqual), inpututil.IsKeyJustPressed(ebiten.KeyKPAdd):
		g.speed = clampInt(g.speed+1, 0, len(Speeds)-1)
	case inpututil.IsKeyJustPressed(ebiten.KeyMinus), inpututil.IsKeyJustPressed(ebiten.KeyKPSubtract):
		g.speed = clampInt(g.speed-1, 0, len(Speeds)-1)
	case inpututil.IsKeyJustPressed(ebiten.KeyRight):
		g.paused, g.stepOnce = true, true
	case inpututil.IsKeyJustPressed(ebiten.Key0):
		g.view = g.Scene.Fit(0, 0, ScreenW-panelW, ScreenH)
	}
	mx, my := ebiten.CursorPosition()
	if _, wy := ebiten.Wheel(); wy != 0 && mx < ScreenW-panelW {
		g.view.ZoomAt(float64(mx), float64(my), math.Pow(1.15, wy))
	}
	if inpututil.IsMouseButtonJustPressed(ebiten.MouseButtonLeft) {
		g.dragging, g.dragX, g.dragY = true, mx, my
		g.selSite, g.selCabinet = g.pick(float64(mx), float64(my))
	}
	if g.dragging && ebiten.IsMouseButtonPressed(ebiten.MouseButtonLeft) {
		g.view.PanX += float64(mx - g.dragX)
		g.view.PanY += float64(my - g.dragY)
		g.dragX, g.dragY = mx, my
	} else {
		g.dragging = false
	}
}

// cell is the compartment cell size in pixels at the current zoom.
func (g *Game) cell() float64 { return g.view.Cell() }

// underSite says whether a screen point falls in a site's drawn cabinets.
func (g *Game) underSite(px, py float64) bool {
	i, _ := g.pick(px, py)
	return i >= 0
}

// pick finds the site and cabinet under a screen point.
func (g *Game) pick(px, py float64) (int, int) {
	cell := g.cell()
	for i := range g.Scene.Sites {
		s := &g.Scene.Sites[i]
		x, y := g.view.ToScreen(s.X, s.Y)
		if cell < MinCabinetCell {
			if math.Abs(px-x) <= 4 && math.Abs(py-y) <= 4 {
				return i, 0
			}
			continue
		}
		w, h := SiteBox(s, cell)
		left, top := x-w/2, y-h/2
		if px < left || px > left+w || py < top || py > top+h {
			continue
		}
		off := left
		for j, c := range s.Cabinets {
			cols := float64((len(c.Comps) + CompRows(len(c.Comps)) - 1) / CompRows(len(c.Comps)))
			if px <= off+cols*cell {
				return i, j
			}
			off += cols*cell + cell
		}
		return i, len(s.Cabinets) - 1
	}
	return -1, 0
}

func rect(dst *ebiten.Image, x, y, w, h float64, c color.Color) {
	vector.DrawFilledRect(dst, float32(x), float32(y), float32(w), float32(h), c, false)
}

// Draw renders the scene; it changes nothing.
func (g *Game) Draw(screen *ebiten.Image) {
	g.frames++
	screen.Fill(ColorBackground)
	sc := g.Scene
	cell := g.cell()
	// Depot and vans.
	// The depot, unless a site's cabinets are drawn over it (a store's
	// own back room), where it would show through the gaps between cells.
	dx, dy := g.view.ToScreen(sc.Depot[0], sc.Depot[1])
	if cell < MinCabinetCell || !g.underSite(dx, dy) {
		rect(screen, dx-5, dy-5, 10, 10, ColorDepot)
	}
	for _, c := range sc.Couriers {
		x, y := sc.CourierPosition(c)
		px, py := g.view.ToScreen(x, y)
		vector.DrawFilledCircle(screen, float32(px), float32(py), 4, ColorCourier, true)
	}
	for i := range sc.Sites {
		s := &sc.Sites[i]
		x, y := g.view.ToScreen(s.X, s.Y)
		if cell < MinCabinetCell {
			// Far out: a site is a square shaded by how full it is.
			if x < -8 || y < -8 || x > ScreenW-panelW+8 || y > ScreenH+8 {
				continue
			}
			rect(screen, x-3, y-3, 6, 6, SiteColor(s.Utilization()))
			continue
		}
		w, h := SiteBox(s, cell)
		left, top := x-w/2, y-h/2
		if left > ScreenW-panelW || top > ScreenH || left+w < 0 || top+h < 0 {
			continue
		}
		off := left
		for j, cab := range s.Cabinets {
			n := len(cab.Comps)
			for k := range cab.Comps {
				c := &cab.Comps[k]
				col, row := CompCell(n, k)
				cx, cy := off+float64(col)*cell, top+float64(row)*cell
				fill := StateColor(c.State)
				if c.DoorOpen {
					fill = ColorDoorOpen
				}
				rect(screen, cx, cy, cell-1, cell-1, fill)
				switch {
				case cell < 5:
				case c.Warm:
					rect(screen, cx, cy, 2, cell-1, ColorTooWarm)
				case c.Chilled:
					rect(screen, cx, cy, 2, cell-1, ColorChilled)
				}
			}
			cols := (n + CompRows(n) - 1) / CompRows(n)
			if i == g.selSite && j == g.selCabinet {
				vector.StrokeRect(screen, float32(off-2), float32(top-2), float32(float64(cols)*cell+3), float32(h+3), 2, ColorText, false)
			}
			off += float64(cols)*cell + cell
		}
		if sc.ShowsNames(cell) {
			ebitenutil.DebugPrintAt(screen, s.ID, int(left), int(top+h+2))
		}
	}
	g.drawPanel(screen)
	if g.screenshot != "" && !g.shot && g.ticks >= g.screenshotTick {
		g.shot = true
		if err := SavePNG(screen, g.screenshot); err != nil {
			g.err = err
		}
		g.done = true
	}
}

func (g *Game) drawPanel(screen *ebiten.Image) {
	sc := g.Scene
	x0 := float64(ScreenW - panelW)
	if g.legend == nil {
		g.legend = ebiten.NewImage(panelW, ScreenH)
		drawLegend(g.legend)
	}
	op := &ebiten.DrawImageOptions{}
	op.GeoM.Translate(x0, 0)
	screen.DrawImage(g.legend, op)
	var b strings.Builder
	state := "running"
	if g.paused {
		state = "paused"
	}
	if !g.more {
		state = "finished"
	}
	fmt.Fprintf(&b, "%s\n", sc.Now.UTC().Format("Mon 2006-01-02 15:04"))
	fmt.Fprintf(&b, "speed x%s (%s)\n\n\n\n\n", speedLabel(Speeds[g.speed]), state)
	fmt.Fprintf(&b, "occupancy by class\n")
	for _, c := range sc.Classes {
		if t := sc.TotalByClass[c]; t > 0 {
			fmt.Fprintf(&b, "  %-8s %5d/%-5d %3.0f%%\n", c, sc.OccupiedByClass[c], t, 100*float64(sc.OccupiedByClass[c])/float64(t))
		}
	}
	fmt.Fprintf(&b, "refused today   %d\n", sc.RefusedToday)
	fmt.Fprintf(&b, "dwell p90       %.1f h\n", sc.DwellP90())
	fmt.Fprintf(&b, "vans out        %d\n", len(sc.Couriers))
	ebitenutil.DebugPrintAt(screen, b.String(), int(x0)+12, 12)
	y := legendBottom
	if g.selSite >= 0 && g.selSite < len(sc.Sites) {
		s := &sc.Sites[g.selSite]
		cab := s.Cabinets[min(g.selCabinet, len(s.Cabinets)-1)]
		counts := map[CompState]int{}
		for _, c := range cab.Comps {
			counts[c.State]++
		}
		var sel strings.Builder
		fmt.Fprintf(&sel, "site %s, cabinet %s\n%d compartments, %.0f%% used\n", s.ID, cab.Name, len(cab.Comps), 100*s.Utilization())
		for st := CompState(0); st < NumStates; st++ {
			fmt.Fprintf(&sel, "  %-15s %d\n", st.String(), counts[st])
		}
		shown := 0
		for k, c := range cab.Comps {
			if c.Parcel != "" && shown < 12 {
				fmt.Fprintf(&sel, "  #%-3d %-9s %s\n", k+1, c.State.String(), c.Parcel)
				shown++
			}
		}
		ebitenutil.DebugPrintAt(screen, sel.String(), int(x0)+12, int(y))
	}
}

// legendBottom is where the selection panel starts.
const legendBottom = 530.0

// drawLegend draws the panel's static part: help, colour legend, site ramp.
func drawLegend(img *ebiten.Image) {
	img.Fill(color.RGBA{236, 236, 230, 255})
	ebitenutil.DebugPrintAt(img, "space pause  +/- speed  -> step\nwheel zoom  drag pan  0 fit\nclick a cabinet", 12, 12+2*16)
	y := 300.0
	for s := CompState(0); s < NumStates; s++ {
		rect(img, 12, y, 12, 12, StateColor(s))
		ebitenutil.DebugPrintAt(img, s.String(), 30, int(y)-2)
		y += 18
	}
	rect(img, 12, y, 12, 12, ColorDoorOpen)
	ebitenutil.DebugPrintAt(img, "door open", 30, int(y)-2)
	y += 18
	rect(img, 12, y, 3, 12, ColorChilled)
	ebitenutil.DebugPrintAt(img, "chilled (left edge)", 30, int(y)-2)
	y += 18
	rect(img, 12, y, 3, 12, ColorTooWarm)
	ebitenutil.DebugPrintAt(img, "too warm (left edge)", 30, int(y)-2)
	y += 18
	vector.DrawFilledCircle(img, 18, float32(y+6), 4, ColorCourier, true)
	ebitenutil.DebugPrintAt(img, "courier van", 30, int(y)-2)
	y += 22
	ebitenutil.DebugPrintAt(img, "zoomed out, a site is one square:", 12, int(y))
	y += 18
	for k := 0; k <= 10; k++ {
		rect(img, 12+float64(k)*14, y, 13, 12, SiteColor(float64(k)/10))
	}
	ebitenutil.DebugPrintAt(img, "0%", 12, int(y)+14)
	ebitenutil.DebugPrintAt(img, "100% used", 12+10*14-30, int(y)+14)
}

func speedLabel(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.0fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}

// Layout fixes the logical screen size.
func (g *Game) Layout(int, int) (int, int) { return ScreenW, ScreenH }

// Err returns the error that stopped the game, if any.
func (g *Game) Err() error { return g.err }

// SavePNG writes an image's pixels to a PNG file.
func SavePNG(img *ebiten.Image, path string) error {
	b := img.Bounds()
	rgba := image.NewRGBA(b)
	img.ReadPixels(rgba.Pix)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, rgba); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
