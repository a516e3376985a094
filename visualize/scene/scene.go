// Package scene is the live view's model: from a layout and a stream of
// observations (a simulation's or a running lockerd's), the state to draw —
// sites, cabinets, compartments by state, open doors, vans, KPIs — with the
// layout math and the colours. It never imports Ebiten, so it is tested
// without a display; visualize draws it.
package scene

import (
	"image/color"
	"math"
	"sort"
	"time"

	"github.com/lockertwin/lockertwin/controller"
	"github.com/lockertwin/lockertwin/sim/world"
)

// CompState is what a compartment shows.
type CompState uint8

const (
	Free CompState = iota
	Reserved
	Occupied
	AwaitingReturn
	OutOfService
	NumStates
)

var stateNames = [...]string{"free", "reserved", "occupied", "awaiting return", "out of service"}

func (s CompState) String() string { return stateNames[s] }

// Okabe–Ito colours: distinguishable with the common colour-vision
// deficiencies, and ordered so that "fuller" reads darker.
var (
	ColorBackground = color.RGBA{250, 250, 247, 255}
	ColorText       = color.RGBA{30, 30, 30, 255}
	ColorDoorOpen   = color.RGBA{240, 228, 66, 255}  // yellow
	ColorChilled    = color.RGBA{0, 158, 115, 255}   // bluish green
	ColorTooWarm    = color.RGBA{213, 94, 0, 255}    // vermillion: a compartment's temperature out of range
	ColorCourier    = color.RGBA{204, 121, 167, 255} // reddish purple
	ColorDepot      = color.RGBA{0, 0, 0, 255}
	stateColors     = [NumStates]color.RGBA{
		Free:           {215, 215, 210, 255}, // light grey
		Reserved:       {86, 180, 233, 255},  // sky blue
		Occupied:       {0, 114, 178, 255},   // blue
		AwaitingReturn: {230, 159, 0, 255},   // orange
		OutOfService:   {213, 94, 0, 255},    // vermillion
	}
)

// SiteColor shades a whole site by the share of its compartments in use,
// on a square-root ramp so that the first parcels already show.
func SiteColor(utilization float64) color.RGBA {
	f := math.Sqrt(math.Max(0, math.Min(1, utilization)))
	a, b := stateColors[Free], stateColors[Occupied]
	mix := func(x, y uint8) uint8 { return uint8(float64(x)*(1-f) + float64(y)*f + 0.5) }
	return color.RGBA{mix(a.R, b.R), mix(a.G, b.G), mix(a.B, b.B), 255}
}

// StateColor is the colour of a compartment state.
func StateColor(s CompState) color.RGBA { return stateColors[s] }

// Comp is one compartment in the scene.
type Comp struct {
	Class    string
	Chilled  bool
	State    CompState
	before   CompState // state under an out-of-service mark
	DoorOpen bool
	Warm     bool   // its temperature out of range (from its alarm to its clearing)
	Parcel   string // the parcel reserved for or held, if known
}

// Cabinet is one cabinet in the scene.
type Cabinet struct {
	Name  string
	Comps []Comp
}

// Site is one site in the scene.
type Site struct {
	ID       string
	X, Y     float64 // metres
	Cabinets []Cabinet
	occupied int
	total    int
}

// Utilization is the share of the site's compartments not free.
func (s *Site) Utilization() float64 {
	if s.total == 0 {
		return 0
	}
	return float64(s.occupied) / float64(s.total)
}

// Source feeds a view: a layout, and observations as virtual time advances.
type Source interface {
	Layout() world.Layout
	// Advance moves the source's clock to t after its start, calling emit
	// for each observation on the way; it reports whether more will come.
	Advance(t time.Duration, emit func(world.Observation)) (bool, error)
	// Start is the wall-clock time of the source's virtual zero.
	Start() time.Time
}

// Courier is a van seen at a stop: it stands there for a few minutes, then
// drives back to the depot (a stop is observed when the van arrives).
type Courier struct {
	Site                int
	Arrive, Leave, Back time.Time
}

// courierStay is how long a van shows at its stop.
const courierStay = 5 * time.Minute

// Scene is the state to draw, built only from a layout and observations: it
// never reaches into the simulator or the controller.
type Scene struct {
	Sites    []Site
	Depot    [2]float64
	Classes  []string
	Now      time.Time
	Couriers []Courier

	index    map[string]int
	cabIndex map[[2]string]int

	// KPIs
	OccupiedByClass map[string]int
	TotalByClass    map[string]int
	RefusedToday    int
	day             int
	deposited       map[string]time.Time
	dwell           []float64 // recent dwell hours, a ring for the p90
	dwellNext       int
	Events          int
}

// courierSpeed is how fast a van moves on the map (m/s, ~36 km/h).
const courierSpeed = 10.0

// NewScene builds a scene from a layout.
func NewScene(l world.Layout) *Scene {
	sc := &Scene{Depot: l.Depot, Classes: l.Classes, index: map[string]int{}, cabIndex: map[[2]string]int{},
		OccupiedByClass: map[string]int{}, TotalByClass: map[string]int{}, deposited: map[string]time.Time{}, day: -1}
	for i, sl := range l.Sites {
		s := Site{ID: sl.ID, X: sl.X, Y: sl.Y}
		for j, cl := range sl.Cabinets {
			cab := Cabinet{Name: cl.Name}
			for _, c := range cl.Compartments {
				cab.Comps = append(cab.Comps, Comp{Class: c.Class, Chilled: c.Chilled})
				sc.TotalByClass[c.Class]++
				s.total++
			}
			s.Cabinets = append(s.Cabinets, cab)
			sc.cabIndex[[2]string{sl.ID, cl.Name}] = j
		}
		sc.Sites = append(sc.Sites, s)
		sc.index[sl.ID] = i
	}
	return sc
}

func (sc *Scene) comp(o world.Observation) (*Site, *Comp) {
	i, ok := sc.index[o.Site]
	if !ok {
		return nil, nil
	}
	s := &sc.Sites[i]
	j, ok := sc.cabIndex[[2]string{o.Site, o.Cabinet}]
	if !ok || o.Compartment < 1 || o.Compartment > len(s.Cabinets[j].Comps) {
		return s, nil
	}
	return s, &s.Cabinets[j].Comps[o.Compartment-1]
}

func (sc *Scene) set(s *Site, c *Comp, to CompState) {
	if c.State == to {
		return
	}
	if c.State == Free {
		s.occupied++
	}
	if to == Free {
		s.occupied--
	}
	if c.State == Occupied || c.State == AwaitingReturn {
		sc.OccupiedByClass[c.Class]--
	}
	if to == Occupied || to == AwaitingReturn {
		sc.OccupiedByClass[c.Class]++
	}
	c.State = to
}

// StateObservation is the Kind of an observation that sets a compartment's
// state outright (Detail: lockerd's status name), its door closed and its
// temperature in range, as a door_opened or alarm after it may say
// otherwise: a live view resyncing.
const StateObservation = "state"

// statusStates maps lockerd's compartment statuses to the scene's states.
var statusStates = map[string]CompState{
	"free": Free, "reserved": Reserved, "occupied": Occupied, "awaiting-return": AwaitingReturn,
	"out-of-service": OutOfService,
}

// Apply updates the scene for one observation.
func (sc *Scene) Apply(o world.Observation) {
	sc.Events++
	if o.At.After(sc.Now) {
		sc.Now = o.At
	}
	if d := sc.dayOf(o.At); d != sc.day {
		sc.day, sc.RefusedToday = d, 0
	}
	if o.Kind == world.CourierStop {
		sc.courierTo(o)
		return
	}
	if o.Kind == "refused" {
		sc.RefusedToday++
		return
	}
	s, c := sc.comp(o)
	if c == nil {
		return
	}
	switch o.Kind {
	case StateObservation:
		st, known := statusStates[o.Detail]
		if !known {
			return
		}
		sc.set(s, c, st)
		c.Parcel, c.DoorOpen, c.Warm = o.Parcel, false, false
	case "reserved":
		sc.set(s, c, Reserved)
		c.Parcel = o.Parcel
	case "reservation_lapsed", "cancelled":
		sc.set(s, c, Free)
		c.Parcel = ""
	case "deposited":
		sc.set(s, c, Occupied)
		c.Parcel = o.Parcel
		sc.deposited[o.Parcel] = o.At
	case "expired":
		sc.set(s, c, AwaitingReturn)
	case "picked_up", "returned":
		sc.set(s, c, Free)
		c.Parcel = ""
		if at, ok := sc.deposited[o.Parcel]; ok {
			sc.recordDwell(o.At.Sub(at).Hours())
			delete(sc.deposited, o.Parcel)
		}
	case "exception_resolved":
		if o.Detail == "removed" {
			sc.set(s, c, Free)
			c.Parcel = ""
			delete(sc.deposited, o.Parcel)
		}
	case "out_of_service":
		c.before = c.State
		sc.set(s, c, OutOfService)
	case "back_in_service":
		sc.set(s, c, c.before)
	case "door_opened":
		c.DoorOpen = true
	case "door_closed":
		c.DoorOpen = false
	case "alarm":
		if o.Detail == controller.ConditionOutOfRange {
			c.Warm = true
		}
	case "alarm_cleared":
		if o.Detail == controller.ConditionOutOfRange {
			c.Warm = false
		}
	}
}

func (sc *Scene) dayOf(t time.Time) int { return int(t.Unix() / 86400) }

const dwellWindow = 2000

func (sc *Scene) recordDwell(h float64) {
	if len(sc.dwell) < dwellWindow {
		sc.dwell = append(sc.dwell, h)
		return
	}
	sc.dwell[sc.dwellNext] = h
	sc.dwellNext = (sc.dwellNext + 1) % dwellWindow
}

// DwellP90 is the 90th percentile of the last 2,000 dwell times, in hours.
func (sc *Scene) DwellP90() float64 {
	if len(sc.dwell) == 0 {
		return 0
	}
	xs := append([]float64(nil), sc.dwell...)
	sort.Float64s(xs)
	return xs[int(0.9*float64(len(xs)-1))]
}

func (sc *Scene) courierTo(o world.Observation) {
	i, ok := sc.index[o.Site]
	if !ok {
		return
	}
	s := sc.Sites[i]
	d := math.Hypot(s.X-sc.Depot[0], s.Y-sc.Depot[1])
	travel := time.Duration(d / courierSpeed * float64(time.Second))
	leave := o.At.Add(courierStay)
	sc.Couriers = append(sc.Couriers, Courier{Site: i, Arrive: o.At, Leave: leave, Back: leave.Add(travel)})
}

// Tick moves the scene's clock on and drops vans back at the depot.
func (sc *Scene) Tick(now time.Time) {
	if now.After(sc.Now) {
		sc.Now = now
	}
	keep := sc.Couriers[:0]
	for _, c := range sc.Couriers {
		if sc.Now.Before(c.Back) {
			keep = append(keep, c)
		}
	}
	sc.Couriers = keep
}

// CourierPosition is where a van is now (metres): at its stop, then on the
// straight line back to the depot.
func (sc *Scene) CourierPosition(c Courier) (float64, float64) {
	s := sc.Sites[c.Site]
	f := 0.0 // share of the way back
	if total := c.Back.Sub(c.Leave); total > 0 && sc.Now.After(c.Leave) {
		f = math.Min(1, float64(sc.Now.Sub(c.Leave))/float64(total))
	}
	return s.X + f*(sc.Depot[0]-s.X), s.Y + f*(sc.Depot[1]-s.Y)
}

// Viewport maps metres to screen pixels: fit to a rectangle, then zoom and
// pan. Y grows upward on the map and downward on the screen.
type Viewport struct {
	W, H       float64 // screen area in pixels
	Left, Top  float64 // where the map area starts on screen
	cx, cy     float64 // the map point (metres) at the centre of the area
	scale      float64
	Zoom       float64
	PanX, PanY float64 // pixels
	// BaseCell is a compartment's size in pixels at zoom 1: as large as it
	// can be without neighbouring sites overlapping.
	BaseCell float64
}

// MaxCell caps a compartment's drawn size in pixels.
const MaxCell = 18.0

// Site names are drawn under their boxes, in the view's 6×16 pixel font,
// while there are at most labelledSites sites and a compartment is at least
// labelCell pixels.
const (
	labelledSites = 50
	labelCell     = 4.0
	labelCharW    = 6.0
	labelH        = 18.0 // the 16-pixel line and the 2 above it
)

// Fit returns a viewport showing every site in a w×h area at (left, top),
// with a margin: each site's cabinets and name, not only its position (the
// depot is drawn if it falls inside). Compartments are as large as they can
// be while no two sites' boxes overlap.
func (sc *Scene) Fit(left, top, w, h float64) Viewport {
	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, s := range sc.Sites {
		minX, minY = math.Min(minX, s.X), math.Min(minY, s.Y)
		maxX, maxY = math.Max(maxX, s.X), math.Max(maxY, s.Y)
	}
	if len(sc.Sites) == 0 {
		minX, minY, maxX, maxY = 0, 0, 1, 1
	}
	// A small campus still gets a few hundred metres of room around it.
	spanX, spanY := math.Max(maxX-minX, 200), math.Max(maxY-minY, 200)
	const margin = 0.1
	availW, availH := w*(1-2*margin), h*(1-2*margin)
	v := Viewport{W: w, H: h, Left: left, Top: top, cx: (minX + maxX) / 2, cy: (minY + maxY) / 2, Zoom: 1,
		scale: math.Min(availW/spanX, availH/spanY)}
	// The boxes grow with the scale (their cells are sized by the spacing
	// of sites on screen), so shrink the scale until they fit: each round's
	// cell is no larger than the last, and a few rounds settle it.
	for range 16 {
		f := v.settle(sc, availW, availH)
		if f >= 1-1e-9 {
			return v
		}
		v.scale *= f
	}
	v.settle(sc, availW, availH) // the cell and centre of the last scale
	return v
}

// settle sizes the cells for the viewport's scale and centres the sites'
// boxes, and returns the factor by which the scale must change for them
// to fit availW×availH (≥ 1 when they do).
func (v *Viewport) settle(sc *Scene, availW, availH float64) float64 {
	v.BaseCell = sc.baseCell(v.scale, v.W, v.H)
	x0, y0, x1, y1 := sc.extent(v.scale, v.BaseCell)
	v.cx, v.cy = (x0+x1)/2/v.scale, -(y0+y1)/2/v.scale
	return math.Min(availW/(x1-x0), availH/(y1-y0))
}

// ShowsNames says whether sites' names are drawn under their boxes at a
// cell size: the fit leaves room for them exactly when the view draws them.
func (sc *Scene) ShowsNames(cell float64) bool {
	return len(sc.Sites) <= labelledSites && cell >= labelCell
}

// box is a site's drawn rectangle about its position, in pixels: its
// cabinets at a cell size, and its name beneath when names are drawn.
func (sc *Scene) box(s *Site, cell float64) (left, right, up, down float64) {
	bw, bh := SiteBox(s, cell)
	left, right, up, down = bw/2, bw/2, bh/2, bh/2
	if sc.ShowsNames(cell) {
		right = math.Max(right, float64(len(s.ID))*labelCharW-bw/2)
		down += labelH
	}
	return left, right, up, down
}

// extent is the screen rectangle every site's box takes at a scale and cell
// size, in pixels from the map's origin (y down).
func (sc *Scene) extent(scale, cell float64) (x0, y0, x1, y1 float64) {
	x0, y0, x1, y1 = math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for i := range sc.Sites {
		s := &sc.Sites[i]
		l, r, u, d := sc.box(s, cell)
		px, py := s.X*scale, -s.Y*scale
		x0, x1 = math.Min(x0, px-l), math.Max(x1, px+r)
		y0, y1 = math.Min(y0, py-u), math.Max(y1, py+d)
	}
	if len(sc.Sites) == 0 {
		return 0, 0, 1, 1
	}
	return x0, y0, x1, y1
}

// pairwiseSites is the most sites for which baseCell keeps every pair
// apart; a larger network (a city) is sized by its typical spacing, and at
// the scale that shows all of it each site is a square anyway.
const pairwiseSites = 200

// MinCabinetCell is the smallest cell at which cabinets are drawn (below
// it, a site is a square).
const MinCabinetCell = 2.0

// baseCell is the largest cell (capped at MaxCell) at which the widest site
// fits in the w×h area and no two sites' boxes overlap, with a cell's gap
// between them and room for the upper one's name. A pair too close to be
// kept apart at a visible size (two sites in one building) is let overlap
// rather than shrink every site to a square: zooming in parts them.
func (sc *Scene) baseCell(scale, w, h float64) float64 {
	cols, rows := 1.0, 1.0
	for i := range sc.Sites {
		bw, bh := SiteBox(&sc.Sites[i], 1)
		cols, rows = math.Max(cols, bw), math.Max(rows, bh)
	}
	cell := math.Min(MaxCell, math.Min(w, h)*0.8/math.Max(cols, rows))
	if len(sc.Sites) > pairwiseSites {
		return math.Min(cell, nearestSpacing(sc.Sites)*scale*0.85/cols)
	}
	for i := range sc.Sites {
		a := &sc.Sites[i]
		aw, ah := SiteBox(a, 1)
		for j := i + 1; j < len(sc.Sites); j++ {
			b := &sc.Sites[j]
			bw, bh := SiteBox(b, 1)
			dx, dy := math.Abs(a.X-b.X)*scale, math.Abs(a.Y-b.Y)*scale
			// Apart side by side, or one above the other with the
			// upper's name between them: whichever allows the larger cell.
			side := dx / ((aw+bw)/2 + 1)
			stacked := (dy - labelH) / ((ah+bh)/2 + 1)
			if apart := math.Max(side, stacked); apart >= MinCabinetCell {
				cell = math.Min(cell, apart)
			}
		}
	}
	return cell
}

// nearestSpacing is the median distance from a site to its nearest
// neighbour (sampled, so a 2,000-site city stays cheap).
func nearestSpacing(sites []Site) float64 {
	step := max(1, len(sites)/200)
	var ds []float64
	for i := 0; i < len(sites); i += step {
		best := math.Inf(1)
		for j := range sites {
			if j != i {
				best = math.Min(best, math.Hypot(sites[i].X-sites[j].X, sites[i].Y-sites[j].Y))
			}
		}
		ds = append(ds, best)
	}
	sort.Float64s(ds)
	return ds[len(ds)/2]
}

// ToScreen maps a point in metres to pixels.
func (v Viewport) ToScreen(x, y float64) (float64, float64) {
	cx := v.Left + v.W/2 + (x-v.cx)*v.scale*v.Zoom + v.PanX
	cy := v.Top + v.H/2 - (y-v.cy)*v.scale*v.Zoom + v.PanY
	return cx, cy
}

// ZoomAt changes the zoom by factor keeping the screen point (px, py) fixed.
func (v *Viewport) ZoomAt(px, py, factor float64) {
	nz := math.Max(0.2, math.Min(400, v.Zoom*factor))
	f := nz / v.Zoom
	cx, cy := v.Left+v.W/2+v.PanX, v.Top+v.H/2+v.PanY
	v.PanX += (px - cx) * (1 - f)
	v.PanY += (py - cy) * (1 - f)
	v.Zoom = nz
}

// PixelsPerMetre is the current scale.
func (v Viewport) PixelsPerMetre() float64 { return v.scale * v.Zoom }

// Cell is a compartment's drawn size in pixels at the current zoom.
func (v Viewport) Cell() float64 { return math.Min(MaxCell, v.BaseCell*v.Zoom) }

// SiteBox is the screen rectangle a site's cabinets occupy at a cell size:
// cabinets side by side, each a column grid of its compartments.
func SiteBox(s *Site, cell float64) (w, h float64) {
	rows := 0
	for _, c := range s.Cabinets {
		cols := int(math.Ceil(float64(len(c.Comps)) / float64(CompRows(len(c.Comps)))))
		w += float64(cols)*cell + cell
		rows = max(rows, CompRows(len(c.Comps)))
	}
	return w, float64(rows) * cell
}

// compRows is how many compartments a cabinet stacks per column.
func CompRows(n int) int {
	switch {
	case n <= 12:
		return max(n, 1)
	case n <= 60:
		return 12
	default:
		return 16
	}
}

// CompCell returns compartment k's cell (column, row) in its cabinet.
func CompCell(n, k int) (col, row int) {
	r := CompRows(n)
	return k / r, k % r
}
