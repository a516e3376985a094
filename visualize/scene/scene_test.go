package scene

import (
	"math"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/sim/world"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

func testLayout() world.Layout {
	comps := func(n int, chilled bool) []world.CompartmentLayout {
		out := make([]world.CompartmentLayout, n)
		for i := range out {
			out[i] = world.CompartmentLayout{Class: "S", Chilled: chilled}
		}
		return out
	}
	return world.Layout{
		Depot:   [2]float64{5000, 0},
		Classes: []string{"S"},
		Sites: []world.SiteLayout{
			{ID: "a", X: 0, Y: 0, Cabinets: []world.CabinetLayout{{Name: "c1", Compartments: comps(20, false)}, {Name: "c2", Compartments: comps(4, true)}}},
			{ID: "b", X: 400, Y: 300, Cabinets: []world.CabinetLayout{{Name: "c1", Compartments: comps(8, false)}}},
		},
	}
}

func obs(kind, site, cab string, slot int, parcel string, at time.Duration) world.Observation {
	return world.Observation{At: t0.Add(at), Site: site, Cabinet: cab, Compartment: slot, Kind: kind, Parcel: parcel}
}

func TestSceneFollowsTheLifecycle(t *testing.T) {
	sc := NewScene(testLayout())
	require.Equal(t, 32, sc.TotalByClass["S"])
	c := &sc.Sites[0].Cabinets[0].Comps[2]
	alarm := func(kind, detail string, at time.Duration) world.Observation {
		o := obs(kind, "a", "c1", 3, "", at)
		o.Detail = detail
		return o
	}
	steps := []struct {
		o    world.Observation
		want CompState
		door bool
		warm bool
	}{
		{obs("reserved", "a", "c1", 3, "p1", 0), Reserved, false, false},
		{obs("door_opened", "a", "c1", 3, "", time.Minute), Reserved, true, false},
		{alarm("alarm", "temp_out_of_range", 2*time.Minute), Reserved, true, true},
		{alarm("alarm", "door_left_open", 3*time.Minute), Reserved, true, true},
		{obs("door_closed", "a", "c1", 3, "p1", 4*time.Minute), Reserved, false, true},
		{obs("deposited", "a", "c1", 3, "p1", 4*time.Minute), Occupied, false, true},
		{alarm("alarm_cleared", "temp_out_of_range", 40*time.Minute), Occupied, false, false},
		{obs("expired", "a", "c1", 3, "p1", 50*time.Hour), AwaitingReturn, false, false},
		{obs("out_of_service", "a", "c1", 3, "", 51*time.Hour), OutOfService, false, false},
		{obs("back_in_service", "a", "c1", 3, "", 52*time.Hour), AwaitingReturn, false, false},
		{obs("returned", "a", "c1", 3, "p1", 53*time.Hour), Free, false, false},
	}
	for _, st := range steps {
		sc.Apply(st.o)
		require.Equal(t, st.want, c.State, st.o.Kind)
		require.Equal(t, st.door, c.DoorOpen, st.o.Kind)
		require.Equal(t, st.warm, c.Warm, "%s %s", st.o.Kind, st.o.Detail)
	}
	require.Equal(t, 0, sc.OccupiedByClass["S"])
	require.InDelta(t, 53-4.0/60, sc.DwellP90(), 0.01)

	// A state observation (a live view resyncing) sets the whole compartment:
	// its door closed and its temperature in range, unless more follows.
	sc.Apply(obs("door_opened", "a", "c1", 3, "", 53*time.Hour))
	sc.Apply(alarm("alarm", "temp_out_of_range", 53*time.Hour))
	resync := obs(StateObservation, "a", "c1", 3, "p9", 53*time.Hour)
	resync.Detail = "reserved"
	sc.Apply(resync)
	require.Equal(t, Reserved, c.State)
	require.Equal(t, "p9", c.Parcel)
	require.False(t, c.DoorOpen)
	require.False(t, c.Warm)
	require.Equal(t, t0.Add(53*time.Hour), sc.Now)

	// Unknown sites, cabinets and slots are ignored, not a crash.
	sc.Apply(obs("deposited", "nowhere", "c1", 1, "x", 54*time.Hour))
	sc.Apply(obs("deposited", "a", "c9", 1, "x", 54*time.Hour))
	sc.Apply(obs("deposited", "a", "c1", 99, "x", 54*time.Hour))
	require.Equal(t, 0, sc.OccupiedByClass["S"])

	// Refusals are counted per day.
	sc.Apply(obs("refused", "a", "", 0, "r1", 55*time.Hour))
	sc.Apply(obs("refused", "a", "", 0, "r2", 55*time.Hour))
	require.Equal(t, 2, sc.RefusedToday)
	sc.Apply(obs("refused", "a", "", 0, "r3", 80*time.Hour))
	require.Equal(t, 1, sc.RefusedToday, "a new day starts at zero")
}

func TestSiteUtilizationAndCouriers(t *testing.T) {
	sc := NewScene(testLayout())
	for slot := 1; slot <= 4; slot++ {
		sc.Apply(obs("reserved", "b", "c1", slot, "", 0))
	}
	require.InDelta(t, 0.5, sc.Sites[1].Utilization(), 1e-9)
	sc.Apply(world.Observation{At: t0.Add(time.Hour), Site: "b", Kind: world.CourierStop})
	require.Len(t, sc.Couriers, 1)
	c := sc.Couriers[0]
	d := math.Hypot(400-5000, 300)
	require.InDelta(t, d/courierSpeed, c.Back.Sub(c.Leave).Seconds(), 1e-6)
	x, y := sc.CourierPosition(c)
	require.Equal(t, [2]float64{400, 300}, [2]float64{x, y}, "at the stop")
	sc.Tick(c.Leave.Add(c.Back.Sub(c.Leave) / 2))
	x, y = sc.CourierPosition(c)
	require.InDelta(t, (5000+400)/2.0, x, 1, "half way back to the depot")
	require.InDelta(t, 150, y, 1)
	sc.Tick(c.Back.Add(time.Second))
	require.Empty(t, sc.Couriers, "back at the depot")
}

// campusLayout is university-campus's shape: a small lending locker 233 m
// from a three-cabinet site, on a campus 1,150 m tall.
func campusLayout() world.Layout {
	cab := func(n int) []world.CabinetLayout {
		return []world.CabinetLayout{{Name: "c1", Compartments: make([]world.CompartmentLayout, n)}}
	}
	three := append(append(cab(72), cab(72)...), cab(72)...)
	return world.Layout{Depot: [2]float64{4000, -3000}, Classes: []string{"S"}, Sites: []world.SiteLayout{
		{ID: "student-union", X: 0, Y: 0, Cabinets: three},
		{ID: "north-halls", X: 350, Y: 600, Cabinets: append(cab(72), cab(72)...)},
		{ID: "south-halls", X: -300, Y: -550, Cabinets: append(cab(72), cab(72)...)},
		{ID: "library-lending", X: 120, Y: 200, Cabinets: cab(24)},
	}}
}

func TestViewportFitsEverySite(t *testing.T) {
	one := testLayout()
	one.Sites = one.Sites[:1]
	tests := []struct {
		name   string
		layout world.Layout
	}{{"two sites", testLayout()}, {"one site", one}, {"campus with a close pair", campusLayout()}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := NewScene(tt.layout)
			v := sc.Fit(0, 0, 980, 800)
			cell := v.Cell()
			require.Greater(t, cell, 2.0, "cabinets are drawn, not squares")
			type box struct{ x0, y0, x1, y1 float64 }
			boxes := make([]box, len(sc.Sites))
			for i := range sc.Sites {
				s := &sc.Sites[i]
				x, y := v.ToScreen(s.X, s.Y)
				l, r, u, d := sc.box(s, cell)
				b := box{x - l, y - u, x + r, y + d}
				require.True(t, b.x0 >= 0 && b.y0 >= 0 && b.x1 <= 980 && b.y1 <= 800,
					"site %s's box and name %+v leave the 980×800 area", s.ID, b)
				boxes[i] = b
			}
			// No two sites' cabinets overlap (a name may reach under the
			// neighbour's box, not into it).
			for i := range sc.Sites {
				for j := i + 1; j < len(sc.Sites); j++ {
					wa, ha := SiteBox(&sc.Sites[i], cell)
					wb, hb := SiteBox(&sc.Sites[j], cell)
					xa, ya := v.ToScreen(sc.Sites[i].X, sc.Sites[i].Y)
					xb, yb := v.ToScreen(sc.Sites[j].X, sc.Sites[j].Y)
					apart := math.Abs(xa-xb) >= (wa+wb)/2 || math.Abs(ya-yb) >= (ha+hb)/2
					require.True(t, apart, "%s and %s overlap", sc.Sites[i].ID, sc.Sites[j].ID)
				}
			}
		})
	}
	// North is up.
	sc := NewScene(testLayout())
	v := sc.Fit(0, 0, 980, 800)
	_, ya := v.ToScreen(0, 0)
	_, yb := v.ToScreen(0, 300)
	require.Less(t, yb, ya)
	// Zooming about a point keeps it where it is.
	px, py := v.ToScreen(400, 300)
	v.ZoomAt(px, py, 3)
	qx, qy := v.ToScreen(400, 300)
	require.InDelta(t, px, qx, 1e-6)
	require.InDelta(t, py, qy, 1e-6)
	require.InDelta(t, math.Min(MaxCell, v.BaseCell*3), v.Cell(), 1e-9)
}

// TestSitesInOneBuildingDoNotShrinkTheRest: two sites at one position
// cannot be kept apart at any size; they overlap, and every site is still
// drawn as cabinets rather than squares.
func TestSitesInOneBuildingDoNotShrinkTheRest(t *testing.T) {
	l := campusLayout()
	twin := l.Sites[0]
	twin.ID = "student-union-annex"
	l.Sites = append(l.Sites, twin)
	v := NewScene(l).Fit(0, 0, 980, 800)
	require.Greater(t, v.Cell(), MinCabinetCell)
	require.InDelta(t, NewScene(campusLayout()).Fit(0, 0, 980, 800).Cell(), v.Cell(), 1, "the other pairs decide, as without the annex")
}

func TestCompartmentGrid(t *testing.T) {
	tests := []struct{ n, k, col, row int }{
		{5, 4, 0, 4}, {20, 12, 1, 0}, {60, 59, 4, 11}, {100, 17, 1, 1},
	}
	for _, tt := range tests {
		col, row := CompCell(tt.n, tt.k)
		require.Equal(t, [2]int{tt.col, tt.row}, [2]int{col, row}, "n=%d k=%d", tt.n, tt.k)
	}
}

func TestColoursAreDistinct(t *testing.T) {
	var all []struct{ r, g, b float64 }
	for s := CompState(0); s < NumStates; s++ {
		c := StateColor(s)
		all = append(all, struct{ r, g, b float64 }{float64(c.R), float64(c.G), float64(c.B)})
	}
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			d := math.Sqrt(math.Pow(all[i].r-all[j].r, 2) + math.Pow(all[i].g-all[j].g, 2) + math.Pow(all[i].b-all[j].b, 2))
			require.Greater(t, d, 60.0, "states %d and %d look alike", i, j)
		}
	}
	// A too-warm compartment's edge is not its chilled edge.
	warm, chilled := ColorTooWarm, ColorChilled
	require.Greater(t, math.Abs(float64(warm.R)-float64(chilled.R))+math.Abs(float64(warm.G)-float64(chilled.G)), 150.0)
	// The site ramp darkens monotonically with use.
	prev := 1000.0
	for u := 0.0; u <= 1.0; u += 0.1 {
		c := SiteColor(u)
		lum := 0.2126*float64(c.R) + 0.7152*float64(c.G) + 0.0722*float64(c.B)
		require.Less(t, lum, prev+1e-9)
		prev = lum
	}
}
