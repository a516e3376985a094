// Package allocatortest is the contract every allocation policy must meet,
// as a suite any policy's tests can run: Run(t, newPolicy). It checks, on a
// fixture with several cabinets, classes and zones, that a policy never
// hands out an occupied, reserved, out-of-service, too small or wrong-zone
// compartment, never the same compartment twice, is deterministic, honours
// hints, and refuses with the right reason; and it runs a stateful property
// test of random operations against a simple reference model.
package allocatortest

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/stretchr/testify/require"
)

// NewPolicy makes a fresh policy for a catalog. Two calls must return
// policies that behave identically (seed any randomness the same way).
type NewPolicy func(cat *allocator.Catalog) allocator.Policy

// Registered returns a NewPolicy for a registered policy, with a fixed-seed
// random stream and the default configuration.
func Registered(name string) NewPolicy {
	return func(cat *allocator.Catalog) allocator.Policy {
		p, err := allocator.New(name, cat, allocator.Config{Rand: rand.New(rand.NewPCG(1, 2))})
		if err != nil {
			panic(err)
		}
		return p
	}
}

// Fixture classes: three ambient sizes and two chilled, InPost-like.
const (
	S allocator.ClassID = iota
	M
	L
	MCold
	LCold
)

// FixtureCatalog returns the suite's class catalog.
func FixtureCatalog() *allocator.Catalog {
	cat, err := allocator.NewCatalog([]allocator.Class{
		{Name: "S", WidthMm: 380, HeightMm: 80, DepthMm: 640},
		{Name: "M", WidthMm: 380, HeightMm: 190, DepthMm: 640},
		{Name: "L", WidthMm: 380, HeightMm: 410, DepthMm: 640},
		{Name: "M-cold", WidthMm: 380, HeightMm: 190, DepthMm: 640, Zone: allocator.Chilled},
		{Name: "L-cold", WidthMm: 380, HeightMm: 410, DepthMm: 640, Zone: allocator.Chilled},
	})
	if err != nil {
		panic(err)
	}
	return cat
}

// FixtureInventory returns three cabinets of different mixes, laid out with
// StackLayout (so compartments have heights for the accessibility hint).
func FixtureInventory(cat *allocator.Catalog) *allocator.Inventory {
	mixes := [][]allocator.ClassCount{
		{{Class: S, Count: 6}, {Class: M, Count: 4}, {Class: L, Count: 2}, {Class: MCold, Count: 2}},
		{{Class: S, Count: 3}, {Class: M, Count: 5}, {Class: L, Count: 1}, {Class: LCold, Count: 1}},
		{{Class: S, Count: 4}, {Class: M, Count: 2}, {Class: L, Count: 3}, {Class: MCold, Count: 1}, {Class: LCold, Count: 2}},
	}
	specs := make([]allocator.CabinetSpec, len(mixes))
	for i, mix := range mixes {
		comps, err := allocator.StackLayout(cat, mix)
		if err != nil {
			panic(err)
		}
		specs[i] = allocator.CabinetSpec{Name: fmt.Sprintf("cab-%d", i), Compartments: comps}
	}
	inv, err := allocator.NewInventory(cat, specs)
	if err != nil {
		panic(err)
	}
	return inv
}

// Run runs the whole contract against a policy.
func Run(t *testing.T, newPolicy NewPolicy) {
	t.Helper()
	t.Run("ValidChoicesOnly", func(t *testing.T) { validChoicesOnly(t, newPolicy) })
	t.Run("NeverTwiceAndFullBankIsBusy", func(t *testing.T) { neverTwice(t, newPolicy) })
	t.Run("Deterministic", func(t *testing.T) { deterministic(t, newPolicy) })
	t.Run("ZonesNeverMix", func(t *testing.T) { zonesNeverMix(t, newPolicy) })
	t.Run("ImpossibleParcels", func(t *testing.T) { impossible(t, newPolicy) })
	t.Run("Dimensions", func(t *testing.T) { dimensions(t, newPolicy) })
	t.Run("Hints", func(t *testing.T) { hints(t, newPolicy) })
	t.Run("StatefulAgainstReference", func(t *testing.T) { stateful(t, newPolicy) })
}

// fits reports whether the request may take compartment class c.
func fits(cat *allocator.Catalog, req allocator.Request, c allocator.ClassID) bool {
	cl := cat.Class(c)
	if !req.Dims.IsZero() {
		return cl.Zone == req.Zone && req.Dims.FitsIn(cl.Inner())
	}
	for _, u := range cat.Upward(req.Class) {
		if u == c {
			return true
		}
	}
	return false
}

// requireValid checks a policy's answer against the inventory's state and
// the contract, and returns the reason (ReasonNone when it chose).
func requireValid(t *testing.T, inv *allocator.Inventory, req allocator.Request, id allocator.CompartmentID, err error) allocator.Reason {
	t.Helper()
	cat := inv.Catalog()
	// admissible: free ones the request may take; fitting and reachable:
	// the site's compartments that would take it at some occupancy.
	admissible, fitting, reachable := 0, 0, 0
	for i := 0; i < inv.Len(); i++ {
		c, _ := inv.Compartment(allocator.CompartmentID(i))
		if !fits(cat, req, c.Class) {
			continue
		}
		fitting++
		if req.Hints.MaxTopMm <= 0 || c.TopMm <= req.Hints.MaxTopMm {
			reachable++
			if inv.Status(c.ID) == allocator.Free {
				admissible++
			}
		}
	}
	if err != nil {
		require.Equal(t, allocator.NoCompartment, id, "a refusal returns NoCompartment")
		r := allocator.ReasonOf(err)
		switch r {
		case allocator.ReasonAllBusy:
			require.Zero(t, admissible, "refused as all busy while %d admissible compartments are free (req %+v)", admissible, req)
			require.Positive(t, reachable, "all-busy, but no compartment would ever take it (req %+v)", req)
		case allocator.ReasonReserveHeld:
			require.Positive(t, admissible, "reserve-held with nothing free: that is all-busy")
		case allocator.ReasonNoFittingClass:
			require.Zero(t, fitting, "no-fitting-class but %d of the site's compartments fit (req %+v)", fitting, req)
		case allocator.ReasonOutOfReach:
			require.Positive(t, req.Hints.MaxTopMm, "out-of-reach without a reach")
			require.Positive(t, fitting, "out-of-reach, but nothing fits: that is no-fitting-class")
			require.Zero(t, reachable, "out-of-reach while %d fitting compartments are within reach", reachable)
		default:
			require.Failf(t, "unexpected refusal", "%v (reason %v)", err, r)
		}
		return r
	}
	c, ok := inv.Compartment(id)
	require.True(t, ok, "chose unknown compartment %d", id)
	require.Equal(t, allocator.Free, inv.Status(id), "chose compartment %d which is %v", id, inv.Status(id))
	require.True(t, fits(cat, req, c.Class), "compartment %d of class %q does not fit request %+v", id, cat.Class(c.Class).Name, req)
	if req.Hints.MaxTopMm > 0 {
		require.LessOrEqual(t, c.TopMm, req.Hints.MaxTopMm, "compartment %d is above the accessible reach", id)
	}
	return allocator.ReasonNone
}

func validChoicesOnly(t *testing.T, newPolicy NewPolicy) {
	cat := FixtureCatalog()
	inv := FixtureInventory(cat)
	p := newPolicy(cat)
	// Make every kind of non-free compartment exist.
	require.NoError(t, inv.Reserve(0))
	require.NoError(t, inv.Reserve(1))
	require.NoError(t, inv.Occupy(1))
	require.NoError(t, inv.TakeOutOfService(2))
	require.NoError(t, inv.Reserve(3))
	require.NoError(t, inv.TakeOutOfService(3))
	for _, class := range []allocator.ClassID{S, M, L, MCold, LCold} {
		for i := 0; i < 40; i++ {
			req := allocator.Request{Class: class}
			id, err := p.Choose(inv, req)
			if requireValid(t, inv, req, id, err) != allocator.ReasonNone {
				break
			}
			require.NoError(t, inv.Reserve(id))
		}
	}
	for _, id := range []allocator.CompartmentID{2, 3} {
		require.Equal(t, allocator.OutOfService, inv.Status(id), "out-of-service compartments stay out")
	}
}

func neverTwice(t *testing.T, newPolicy NewPolicy) {
	cat := FixtureCatalog()
	inv := FixtureInventory(cat)
	a := allocator.NewAllocator(inv, newPolicy(cat))
	seen := map[allocator.CompartmentID]bool{}
	fill := func(class allocator.ClassID) allocator.Reason {
		for {
			id, err := a.Assign(allocator.Request{Class: class})
			if err != nil {
				return allocator.ReasonOf(err)
			}
			require.False(t, seen[id], "compartment %d handed out twice", id)
			seen[id] = true
		}
	}
	// Small parcels first (a reserve may stop them), then parcels needing
	// each larger class take what is held for them; then the bank is full.
	held := []allocator.Reason{allocator.ReasonAllBusy, allocator.ReasonReserveHeld}
	require.Contains(t, held, fill(S))
	require.Contains(t, held, fill(M))
	require.Equal(t, allocator.ReasonAllBusy, fill(L), "parcels needing L take the reserve, then the bank is full")
	require.Contains(t, []allocator.Reason{allocator.ReasonAllBusy, allocator.ReasonReserveHeld}, fill(MCold))
	require.Equal(t, allocator.ReasonAllBusy, fill(LCold))
	for _, c := range []allocator.ClassID{S, M, L, MCold, LCold} {
		_, err := a.Assign(allocator.Request{Class: c})
		require.ErrorIs(t, err, allocator.ErrAllBusy, "full bank, class %v", cat.Class(c).Name)
	}
	require.Len(t, seen, inv.Len(), "every compartment handed out exactly once")
	require.Equal(t, inv.Len(), inv.Count(allocator.Reserved))
}

// script is a fixed sequence of mixed operations used for determinism.
func script(t *testing.T, newPolicy NewPolicy, seed uint64) []allocator.CompartmentID {
	cat := FixtureCatalog()
	inv := FixtureInventory(cat)
	a := allocator.NewAllocator(inv, newPolicy(cat))
	rng := rand.New(rand.NewPCG(seed, 99))
	var out []allocator.CompartmentID
	var held []allocator.CompartmentID
	for i := 0; i < 300; i++ {
		if len(held) > 0 && rng.IntN(3) == 0 {
			k := rng.IntN(len(held))
			require.NoError(t, inv.Release(held[k]))
			held = append(held[:k], held[k+1:]...)
			continue
		}
		id, err := a.Assign(allocator.Request{Class: allocator.ClassID(rng.IntN(5))})
		out = append(out, id)
		if err == nil {
			held = append(held, id)
		}
	}
	return out
}

func deterministic(t *testing.T, newPolicy NewPolicy) {
	require.Equal(t, script(t, newPolicy, 5), script(t, newPolicy, 5), "same inputs, same choices")
}

func zonesNeverMix(t *testing.T, newPolicy NewPolicy) {
	cat := FixtureCatalog()
	inv := FixtureInventory(cat)
	a := allocator.NewAllocator(inv, newPolicy(cat))
	for _, class := range []allocator.ClassID{MCold, LCold} {
		for {
			id, err := a.Assign(allocator.Request{Class: class})
			if err != nil {
				require.Contains(t, []allocator.Reason{allocator.ReasonAllBusy, allocator.ReasonReserveHeld}, allocator.ReasonOf(err))
				break
			}
			c, _ := inv.Compartment(id)
			require.Equal(t, allocator.Chilled, cat.Class(c.Class).Zone, "a chilled parcel got an ambient compartment")
		}
	}
	_, err := a.Assign(allocator.Request{Class: MCold})
	require.ErrorIs(t, err, allocator.ErrAllBusy, "chilled is full; ambient must not be offered")
	require.Positive(t, inv.FreeCount(S)+inv.FreeCount(M)+inv.FreeCount(L), "ambient is still free, and was not used")
	for i := 0; i < 10; i++ {
		id, err := a.Assign(allocator.Request{Class: S})
		require.NoError(t, err)
		c, _ := inv.Compartment(id)
		require.Equal(t, allocator.Ambient, cat.Class(c.Class).Zone)
	}
}

func impossible(t *testing.T, newPolicy NewPolicy) {
	cat := FixtureCatalog()
	inv := FixtureInventory(cat)
	p := newPolicy(cat)
	tests := []struct {
		name string
		req  allocator.Request
	}{
		{"too long for any class", allocator.Request{Dims: allocator.Dims{LengthMm: 900, WidthMm: 300, HeightMm: 100}}},
		{"too tall for any class", allocator.Request{Dims: allocator.Dims{LengthMm: 500, WidthMm: 370, HeightMm: 450}}},
		{"frozen, no frozen classes", allocator.Request{Dims: allocator.Dims{LengthMm: 100, WidthMm: 100, HeightMm: 50}, Zone: allocator.Frozen}},
		{"unknown class id", allocator.Request{Class: 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := p.Choose(inv, tt.req)
			require.ErrorIs(t, err, allocator.ErrNoFittingClass)
			require.Equal(t, allocator.NoCompartment, id)
			requireValid(t, inv, tt.req, id, err)
		})
	}
}

func dimensions(t *testing.T, newPolicy NewPolicy) {
	cat := FixtureCatalog()
	inv := FixtureInventory(cat)
	p := newPolicy(cat)
	tests := []struct {
		name string
		dims allocator.Dims
		zone allocator.Zone
		want allocator.ClassID
	}{
		{"flat envelope fits S", allocator.Dims{LengthMm: 600, WidthMm: 350, HeightMm: 60}, allocator.Ambient, S},
		{"standing on its side still fits S", allocator.Dims{LengthMm: 70, WidthMm: 600, HeightMm: 350}, allocator.Ambient, S},
		{"shoebox needs M", allocator.Dims{LengthMm: 330, WidthMm: 210, HeightMm: 120}, allocator.Ambient, M},
		{"crate needs L", allocator.Dims{LengthMm: 400, WidthMm: 350, HeightMm: 300}, allocator.Ambient, L},
		{"chilled bag needs M-cold", allocator.Dims{LengthMm: 400, WidthMm: 300, HeightMm: 150}, allocator.Chilled, MCold},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := allocator.Request{Dims: tt.dims, Zone: tt.zone}
			id, err := p.Choose(inv, req)
			require.NoError(t, err)
			requireValid(t, inv, req, id, err)
			c, _ := inv.Compartment(id)
			require.Equal(t, cat.Class(tt.want).Name, cat.Class(c.Class).Name, "an empty bank gives the smallest fitting class")
		})
	}
}

func hints(t *testing.T, newPolicy NewPolicy) {
	cat := FixtureCatalog()
	t.Run("accessible reach is a hard limit", func(t *testing.T) {
		inv := FixtureInventory(cat)
		a := allocator.NewAllocator(inv, newPolicy(cat))
		const reach = 1220
		req := allocator.Request{Class: S, Hints: allocator.Hints{MaxTopMm: reach}}
		n := 0
		for {
			id, err := a.Policy().Choose(inv, req)
			if requireValid(t, inv, req, id, err) != allocator.ReasonNone {
				break
			}
			require.NoError(t, inv.Reserve(id))
			n++
		}
		require.Positive(t, n)
		// Compartments above the reach are still free: they were never offered.
		high := 0
		for i := 0; i < inv.Len(); i++ {
			c, _ := inv.Compartment(allocator.CompartmentID(i))
			if c.TopMm > reach && cat.Class(c.Class).Zone == allocator.Ambient {
				require.Equal(t, allocator.Free, inv.Status(c.ID))
				high++
			}
		}
		require.Positive(t, high, "the fixture must have compartments above the reach")
	})
	// A refusal says whether capacity would help: a reach below every
	// compartment that fits, or a class the site has none of, is refused
	// so on an empty site, not as all busy.
	t.Run("what no occupancy would meet is not all-busy", func(t *testing.T) {
		inv := FixtureInventory(cat)
		lowest := 0
		for i := 0; i < inv.Len(); i++ {
			c, _ := inv.Compartment(allocator.CompartmentID(i))
			if fits(cat, allocator.Request{Class: M}, c.Class) && (lowest == 0 || c.TopMm < lowest) {
				lowest = c.TopMm
			}
		}
		require.Positive(t, lowest)
		onlyS, err := allocator.StackLayout(cat, []allocator.ClassCount{{Class: S, Count: 8}})
		require.NoError(t, err)
		smallSite, err := allocator.NewInventory(cat, []allocator.CabinetSpec{{Name: "small", Compartments: onlyS}})
		require.NoError(t, err)
		for _, tt := range []struct {
			name string
			inv  *allocator.Inventory
			req  allocator.Request
			want allocator.Reason
		}{
			{"reach below every fitting compartment", inv, allocator.Request{Class: M, Hints: allocator.Hints{MaxTopMm: lowest - 1}}, allocator.ReasonOutOfReach},
			{"reach at the lowest fitting compartment", inv, allocator.Request{Class: M, Hints: allocator.Hints{MaxTopMm: lowest}}, allocator.ReasonNone},
			{"a class the site has none of", smallSite, allocator.Request{Class: M}, allocator.ReasonNoFittingClass},
			{"dimensions only the site's missing classes hold", smallSite, allocator.Request{Dims: allocator.Dims{LengthMm: 300, WidthMm: 300, HeightMm: 150}}, allocator.ReasonNoFittingClass},
		} {
			t.Run(tt.name, func(t *testing.T) {
				id, err := newPolicy(cat).Choose(tt.inv, tt.req)
				require.Equal(t, tt.want, requireValid(t, tt.inv, tt.req, id, err))
			})
		}
	})
	t.Run("preferred cabinet when it has the class", func(t *testing.T) {
		inv := FixtureInventory(cat)
		p := newPolicy(cat)
		for cab := allocator.CabinetID(0); cab < 3; cab++ {
			req := allocator.Request{Class: M, Hints: allocator.Hints{PreferCabinet: true, Cabinet: cab}}
			id, err := p.Choose(inv, req)
			requireValid(t, inv, req, id, err)
			c, _ := inv.Compartment(id)
			require.Equal(t, cab, c.Cabinet)
			require.Equal(t, M, c.Class)
		}
		// Cabinet 1 has one L: once it is taken, an L request goes elsewhere
		// rather than failing.
		req := allocator.Request{Class: L, Hints: allocator.Hints{PreferCabinet: true, Cabinet: 1}}
		id, err := p.Choose(inv, req)
		require.NoError(t, err)
		require.NoError(t, inv.Reserve(id))
		id, err = p.Choose(inv, req)
		requireValid(t, inv, req, id, err)
		c, _ := inv.Compartment(id)
		require.NotEqual(t, allocator.CabinetID(1), c.Cabinet)
		// An unknown preferred cabinet is ignored, not an error.
		req.Hints.Cabinet = 99
		id, err = p.Choose(inv, req)
		requireValid(t, inv, req, id, err)
		require.NoError(t, err)
	})
}

// stateful drives random operations on an inventory and a trivially correct
// reference (a slice of statuses), checking after every step that the
// inventory's indexes agree with the reference and that the policy's answers
// meet the contract.
func stateful(t *testing.T, newPolicy NewPolicy) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			cat := FixtureCatalog()
			inv := FixtureInventory(cat)
			p := newPolicy(cat)
			rng := rand.New(rand.NewPCG(seed, 7))
			ref := make([]allocator.Status, inv.Len())
			under := make([]allocator.Status, inv.Len()) // what an out-of-service one holds
			pickWith := func(s allocator.Status) allocator.CompartmentID {
				var ids []allocator.CompartmentID
				for i, st := range ref {
					if st == s {
						ids = append(ids, allocator.CompartmentID(i))
					}
				}
				if len(ids) == 0 {
					return allocator.NoCompartment
				}
				return ids[rng.IntN(len(ids))]
			}
			for step := 0; step < 600; step++ {
				switch op := rng.IntN(10); {
				case op < 4: // allocate
					req := randomRequest(rng)
					id, err := p.Choose(inv, req)
					if requireValid(t, inv, req, id, err) == allocator.ReasonNone {
						require.NoError(t, inv.Reserve(id))
						ref[id] = allocator.Reserved
					}
				case op == 4:
					if id := pickWith(allocator.Reserved); id >= 0 {
						require.NoError(t, inv.Release(id))
						ref[id] = allocator.Free
					} else if id := pickWith(allocator.OutOfService); id >= 0 && under[id] != allocator.Free {
						// What an out-of-service door holds can change beneath it.
						if under[id] == allocator.Reserved {
							require.NoError(t, inv.Occupy(id))
							under[id] = allocator.Occupied
						} else {
							require.NoError(t, inv.Vacate(id))
							under[id] = allocator.Free
						}
						require.Equal(t, allocator.OutOfService, inv.Status(id))
						require.Equal(t, under[id], inv.Holding(id))
					}
				case op == 5 || op == 6:
					if id := pickWith(allocator.Reserved); id >= 0 {
						require.NoError(t, inv.Occupy(id))
						ref[id] = allocator.Occupied
					}
				case op == 7:
					if id := pickWith(allocator.Occupied); id >= 0 {
						require.NoError(t, inv.Vacate(id))
						ref[id] = allocator.Free
					}
				case op == 8:
					id := allocator.CompartmentID(rng.IntN(inv.Len()))
					err := inv.TakeOutOfService(id)
					if ref[id] == allocator.OutOfService {
						require.ErrorIs(t, err, allocator.ErrWrongState)
					} else {
						require.NoError(t, err)
						under[id], ref[id] = ref[id], allocator.OutOfService
					}
				case op == 9:
					if id := pickWith(allocator.OutOfService); id >= 0 {
						require.NoError(t, inv.ReturnToService(id))
						ref[id] = under[id]
					}
				}
				// Illegal moves are refused and change nothing.
				id := allocator.CompartmentID(rng.IntN(inv.Len()))
				if ref[id] != allocator.Occupied && !(ref[id] == allocator.OutOfService && under[id] == allocator.Occupied) {
					require.ErrorIs(t, inv.Vacate(id), allocator.ErrWrongState)
				}
				if ref[id] != allocator.Free {
					require.ErrorIs(t, inv.Reserve(id), allocator.ErrWrongState)
				}
				requireMatches(t, inv, ref)
			}
		})
	}
}

func randomRequest(rng *rand.Rand) allocator.Request {
	req := allocator.Request{Class: allocator.ClassID(rng.IntN(5))}
	switch rng.IntN(6) {
	case 0:
		req.Hints.MaxTopMm = 900 + rng.IntN(800)
	case 1:
		req.Hints.PreferCabinet = true
		req.Hints.Cabinet = allocator.CabinetID(rng.IntN(4) - 1)
	case 2:
		req = allocator.Request{
			Dims: allocator.Dims{LengthMm: 50 + rng.IntN(700), WidthMm: 50 + rng.IntN(400), HeightMm: 20 + rng.IntN(450)},
			Zone: allocator.Zone(rng.IntN(3)),
		}
	}
	return req
}

func requireMatches(t *testing.T, inv *allocator.Inventory, ref []allocator.Status) {
	t.Helper()
	cat := inv.Catalog()
	counts := map[allocator.Status]int{}
	free := make([]int, cat.Len())
	cabFree := map[[2]int]int{}
	for i, st := range ref {
		id := allocator.CompartmentID(i)
		require.Equal(t, st, inv.Status(id), "compartment %d", i)
		counts[st]++
		if st == allocator.Free {
			c, _ := inv.Compartment(id)
			free[c.Class]++
			cabFree[[2]int{int(c.Cabinet), int(c.Class)}]++
		}
	}
	for _, s := range []allocator.Status{allocator.Free, allocator.Reserved, allocator.Occupied, allocator.OutOfService} {
		require.Equal(t, counts[s], inv.Count(s), "count of %v", s)
	}
	for c := range free {
		require.Equal(t, free[c], inv.FreeCount(allocator.ClassID(c)), "free count of class %d", c)
		for _, cab := range inv.Cabinets() {
			require.Equal(t, cabFree[[2]int{int(cab.ID), c}], inv.FreeInCabinet(cab.ID, allocator.ClassID(c)))
		}
	}
}
