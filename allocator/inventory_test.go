package allocator

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func testCatalog(t testing.TB) *Catalog {
	cat, err := NewCatalog([]Class{
		{Name: "S", WidthMm: 380, HeightMm: 80, DepthMm: 640},
		{Name: "M", WidthMm: 380, HeightMm: 190, DepthMm: 640},
		{Name: "L", WidthMm: 380, HeightMm: 410, DepthMm: 640},
		{Name: "M-cold", WidthMm: 380, HeightMm: 190, DepthMm: 640, Zone: Chilled},
	})
	require.NoError(t, err)
	return cat
}

func TestCatalog(t *testing.T) {
	cat := testCatalog(t)
	require.Equal(t, 4, cat.Len())
	require.Equal(t, []ClassID{0, 1, 2}, cat.Zone(Ambient))
	require.Equal(t, []ClassID{3}, cat.Zone(Chilled))
	require.Empty(t, cat.Zone(Frozen))
	require.Equal(t, []ClassID{1, 2}, cat.Upward(1))
	require.Equal(t, []ClassID{3}, cat.Upward(3))
	l, ok := cat.Largest(Ambient)
	require.True(t, ok)
	require.Equal(t, ClassID(2), l)
	_, ok = cat.Largest(Frozen)
	require.False(t, ok)
	id, ok := cat.Lookup("M-cold")
	require.True(t, ok)
	require.Equal(t, ClassID(3), id)
	_, ok = cat.Lookup("XL")
	require.False(t, ok)

	bad := []struct {
		name    string
		classes []Class
		err     string
	}{
		{"empty", nil, "no compartment classes"},
		{"no name", []Class{{WidthMm: 1, HeightMm: 1, DepthMm: 1}}, "has no name"},
		{"duplicate", []Class{{Name: "A", WidthMm: 1, HeightMm: 1, DepthMm: 1}, {Name: "A", WidthMm: 1, HeightMm: 1, DepthMm: 1}}, "defined twice"},
		{"zero dims", []Class{{Name: "A", WidthMm: 1, HeightMm: 0, DepthMm: 1}}, "positive dimensions"},
		{"shrinking", []Class{{Name: "A", WidthMm: 2, HeightMm: 2, DepthMm: 2}, {Name: "B", WidthMm: 1, HeightMm: 1, DepthMm: 1}}, "smallest first"},
		{"bad zone", []Class{{Name: "A", WidthMm: 1, HeightMm: 1, DepthMm: 1, Zone: 9}}, "unknown zone"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCatalog(tt.classes)
			require.ErrorContains(t, err, tt.err)
		})
	}
	z, err := ParseZone("chilled")
	require.NoError(t, err)
	require.Equal(t, Chilled, z)
	require.Equal(t, "chilled", z.String())
	_, err = ParseZone("tepid")
	require.Error(t, err)
}

func TestDimsFitInSomeRotation(t *testing.T) {
	inner := Dims{LengthMm: 640, WidthMm: 380, HeightMm: 80}
	tests := []struct {
		d    Dims
		want bool
	}{
		{Dims{600, 350, 70}, true},
		{Dims{70, 600, 350}, true},
		{Dims{380, 80, 640}, true},
		{Dims{641, 10, 10}, false},
		{Dims{100, 100, 100}, false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.d.FitsIn(inner), "%+v", tt.d)
	}
}

func testInventory(t testing.TB, cat *Catalog, cabinets int, counts []ClassCount) *Inventory {
	specs := make([]CabinetSpec, cabinets)
	for i := range specs {
		comps, err := StackLayout(cat, counts)
		require.NoError(t, err)
		specs[i] = CabinetSpec{Name: "c", Compartments: comps}
	}
	inv, err := NewInventory(cat, specs)
	require.NoError(t, err)
	return inv
}

func TestInventoryTransitions(t *testing.T) {
	cat := testCatalog(t)
	inv := testInventory(t, cat, 2, []ClassCount{{0, 2}, {1, 1}})
	require.Equal(t, 6, inv.Len())
	require.Equal(t, 6, inv.Count(Free))

	tests := []struct {
		name string
		op   func(CompartmentID) error
		id   CompartmentID
		err  error
		msg  string
	}{
		{"release a free one", inv.Release, 0, ErrWrongState, "release compartment 0: it is free"},
		{"occupy a free one", inv.Occupy, 0, ErrWrongState, "occupy compartment 0: it is free"},
		{"vacate a free one", inv.Vacate, 0, ErrWrongState, "vacate compartment 0: it is free"},
		{"return a working one", inv.ReturnToService, 0, ErrWrongState, "return to service compartment 0: it is free"},
		{"clear a working one", inv.ClearOutOfService, 0, ErrWrongState, "clear compartment 0: it is free"},
		{"reserve unknown", inv.Reserve, 6, ErrUnknownCompartment, "reserve compartment 6: unknown compartment"},
		{"reserve negative", inv.Reserve, -1, ErrUnknownCompartment, "unknown compartment"},
		{"take out unknown", inv.TakeOutOfService, 99, ErrUnknownCompartment, "unknown compartment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op(tt.id)
			require.ErrorIs(t, err, tt.err)
			require.ErrorContains(t, err, tt.msg)
			require.Equal(t, 6, inv.Count(Free), "a refused operation changes nothing")
		})
	}

	require.NoError(t, inv.Reserve(0))
	require.NoError(t, inv.Occupy(0))
	require.Equal(t, Occupied, inv.Status(0))
	require.NoError(t, inv.TakeOutOfService(0))
	require.Equal(t, OutOfService, inv.Status(0))
	require.Equal(t, Occupied, inv.Holding(0), "a jammed door still holds its parcel")
	require.ErrorIs(t, inv.TakeOutOfService(0), ErrWrongState)
	require.NoError(t, inv.ReturnToService(0))
	require.Equal(t, Occupied, inv.Status(0))
	require.NoError(t, inv.TakeOutOfService(0))
	require.NoError(t, inv.ClearOutOfService(0))
	require.NoError(t, inv.ReturnToService(0))
	require.Equal(t, Free, inv.Status(0), "recovered by hand, back in service empty")
	require.Equal(t, 6, inv.Count(Free))
	require.Equal(t, 4, inv.ClassCount(0, Free)+inv.ClassCount(0, Reserved), "two cabinets of two S")

	id, ok := inv.CompartmentAt(1, 3)
	require.True(t, ok)
	c, _ := inv.Compartment(id)
	require.Equal(t, CabinetID(1), c.Cabinet)
	require.Equal(t, 3, c.Slot)
	_, ok = inv.CompartmentAt(1, 4)
	require.False(t, ok)
	_, ok = inv.CompartmentAt(2, 1)
	require.False(t, ok)
	_, ok = inv.CompartmentAt(0, 0)
	require.False(t, ok)
}

func TestNewInventoryErrors(t *testing.T) {
	cat := testCatalog(t)
	_, err := NewInventory(cat, nil)
	require.ErrorContains(t, err, "no cabinets")
	_, err = NewInventory(cat, []CabinetSpec{{Name: "x"}})
	require.ErrorContains(t, err, `cabinet "x" has no compartments`)
	_, err = NewInventory(cat, []CabinetSpec{{Name: "x", Compartments: []CompartmentSpec{{Class: 9}}}})
	require.ErrorContains(t, err, "unknown class 9")
}

func TestStackLayout(t *testing.T) {
	cat := testCatalog(t)
	specs, err := StackLayout(cat, []ClassCount{{0, 10}, {1, 4}, {2, 3}})
	require.NoError(t, err)
	require.Len(t, specs, 17)
	require.Equal(t, ClassID(2), specs[0].Class, "largest at the bottom")
	require.Equal(t, PlinthMm, specs[0].BottomMm)
	for _, s := range specs {
		require.GreaterOrEqual(t, s.BottomMm, PlinthMm)
		require.LessOrEqual(t, s.TopMm, ColumnHeightMm)
		require.Equal(t, cat.Class(s.Class).HeightMm, s.TopMm-s.BottomMm)
	}
	_, err = StackLayout(cat, []ClassCount{{7, 1}})
	require.Error(t, err)
	_, err = StackLayout(cat, []ClassCount{{0, -1}})
	require.Error(t, err)
}

func TestBitsetAgainstAMap(t *testing.T) {
	for _, n := range []int{1, 63, 64, 65, 4096, 5000, 70000} {
		b := newBitset(n)
		ref := map[int]bool{}
		rng := rand.New(rand.NewPCG(uint64(n), 1))
		for step := 0; step < 3000; step++ {
			i := rng.IntN(n)
			if rng.IntN(2) == 0 {
				b.set(i)
				ref[i] = true
			} else {
				b.clear(i)
				delete(ref, i)
			}
			from := rng.IntN(n + 1)
			want := -1
			for j := from; j < n; j++ {
				if ref[j] {
					want = j
					break
				}
			}
			require.Equal(t, want, b.next(from), "n=%d from=%d", n, from)
			require.Equal(t, len(ref), b.count)
			require.Equal(t, ref[i], b.has(i))
		}
		// nth agrees with an ordered walk.
		k := 0
		for j := b.first(); j >= 0; j = b.next(j + 1) {
			require.Equal(t, j, b.nth(k))
			k++
		}
		require.Equal(t, -1, b.nth(k))
		require.Equal(t, -1, b.nth(-1))
		require.Equal(t, -1, b.next(n+100))
	}
}

func TestOfflineCabinetIsNotHandedOut(t *testing.T) {
	cat := testCatalog(t)
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			inv := testInventory(t, cat, 2, []ClassCount{{0, 2}, {1, 1}})
			pol, err := New(name, cat, Config{Rand: rand.New(rand.NewPCG(3, 4))})
			require.NoError(t, err)
			a := NewAllocator(inv, pol)

			held, err := a.Assign(Request{Class: 0}) // a reservation made while a1 was online
			require.NoError(t, err)
			heldCab := inv.comps[held].Cabinet
			require.NoError(t, inv.SetCabinetOnline(heldCab, false))
			require.NoError(t, inv.SetCabinetOnline(heldCab, false), "idempotent")
			require.False(t, inv.CabinetOnline(heldCab))
			require.Equal(t, 5, inv.Count(Free), "offline compartments are still free, just not offered")
			require.Equal(t, 0, inv.FreeInCabinet(heldCab, 0))
			require.Equal(t, 2, inv.FreeCount(0))

			require.NoError(t, inv.Release(held), "a lapsed reservation in an offline cabinet")
			require.Equal(t, Free, inv.Status(held))
			require.Equal(t, 2, inv.FreeCount(0), "and it stays out of the index")

			var got []CompartmentID
			for {
				id, err := a.Assign(Request{Class: 0})
				if err != nil {
					require.Contains(t, []Reason{ReasonAllBusy, ReasonReserveHeld}, ReasonOf(err))
					break
				}
				require.NotEqual(t, heldCab, inv.comps[id].Cabinet, "compartment %d is in the offline cabinet", id)
				got = append(got, id)
			}
			require.NotEmpty(t, got)

			require.NoError(t, inv.SetCabinetOnline(heldCab, true))
			require.Equal(t, 2, inv.FreeInCabinet(heldCab, 0))
			id, err := a.Assign(Request{Class: 0})
			require.NoError(t, err)
			require.Equal(t, heldCab, inv.comps[id].Cabinet)
			require.Error(t, inv.SetCabinetOnline(7, true))
		})
	}
}

// TestSpan: a place is one compartment, or a whole cabinet's.
func TestSpan(t *testing.T) {
	inv := testInventory(t, testCatalog(t), 2, []ClassCount{{0, 2}, {1, 1}})
	for _, tt := range []struct {
		cab        CabinetID
		comp       CompartmentID
		first, end CompartmentID
	}{{0, 1, 1, 2}, {1, 4, 4, 5}, {0, NoCompartment, 0, 3}, {1, NoCompartment, 3, 6}} {
		first, end := inv.Span(tt.cab, tt.comp)
		require.Equal(t, [2]CompartmentID{tt.first, tt.end}, [2]CompartmentID{first, end}, "%+v", tt)
	}
}
