package allocator_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/allocator/allocatortest"
	"github.com/stretchr/testify/require"
)

// Every registered policy meets the contract: the four built in, and any
// an allocator engineer adds, with no test of its own needed.
func TestConformance(t *testing.T) {
	names := allocator.Names()
	require.Subset(t, names, []string{"best-fit", "first-fit", "random-fit", "reserve-large"})
	require.IsIncreasing(t, names, "sorted, for messages and reports")
	for _, name := range names {
		t.Run(name, func(t *testing.T) { allocatortest.Run(t, allocatortest.Registered(name)) })
	}
	t.Run("reserve-large with a custom reserve", func(t *testing.T) {
		allocatortest.Run(t, func(cat *allocator.Catalog) allocator.Policy {
			p, err := allocator.New("reserve-large", cat, allocator.Config{Reserve: map[string]int{"L": 3, "M": 1}})
			require.NoError(t, err)
			return p
		})
	})
}

func newPolicy(t *testing.T, name string, cat *allocator.Catalog) allocator.Policy {
	p, err := allocator.New(name, cat, allocator.Config{Rand: rand.New(rand.NewPCG(3, 4))})
	require.NoError(t, err)
	return p
}

func TestFirstFitTakesLowestID(t *testing.T) {
	cat := allocatortest.FixtureCatalog()
	inv := allocatortest.FixtureInventory(cat)
	a := allocator.NewAllocator(inv, newPolicy(t, "first-fit", cat))
	var got []allocator.CompartmentID
	for i := 0; i < 4; i++ {
		id, err := a.Assign(allocator.Request{Class: allocatortest.M})
		require.NoError(t, err)
		got = append(got, id)
	}
	for i := 1; i < len(got); i++ {
		require.Less(t, got[i-1], got[i])
		c, _ := inv.Compartment(got[i])
		require.Equal(t, allocator.CabinetID(0), c.Cabinet, "cabinet 0 has four M and is filled first")
	}
}

func TestBestFitSpreadsAcrossCabinets(t *testing.T) {
	cat := allocatortest.FixtureCatalog()
	inv := allocatortest.FixtureInventory(cat)
	a := allocator.NewAllocator(inv, newPolicy(t, "best-fit", cat))
	// M per cabinet: 4, 5, 2. Best-fit takes from the cabinet with the most
	// free M each time: 1, then 0/1 alternating as they level.
	var cabs []allocator.CabinetID
	for i := 0; i < 6; i++ {
		id, err := a.Assign(allocator.Request{Class: allocatortest.M})
		require.NoError(t, err)
		c, _ := inv.Compartment(id)
		cabs = append(cabs, c.Cabinet)
	}
	require.Equal(t, []allocator.CabinetID{1, 0, 1, 0, 1, 0}, cabs)
	require.Equal(t, 1, inv.FreeInCabinet(0, allocatortest.M))
	require.Equal(t, 2, inv.FreeInCabinet(1, allocatortest.M))
	require.Equal(t, 2, inv.FreeInCabinet(2, allocatortest.M))
}

func TestBestFitUpsizesOnlyWhenTheClassIsFull(t *testing.T) {
	cat := allocatortest.FixtureCatalog()
	inv := allocatortest.FixtureInventory(cat)
	a := allocator.NewAllocator(inv, newPolicy(t, "best-fit", cat))
	for i := 0; i < 13; i++ { // 6+3+4 S compartments
		id, err := a.Assign(allocator.Request{Class: allocatortest.S})
		require.NoError(t, err)
		c, _ := inv.Compartment(id)
		require.Equal(t, allocatortest.S, c.Class)
	}
	id, err := a.Assign(allocator.Request{Class: allocatortest.S})
	require.NoError(t, err)
	c, _ := inv.Compartment(id)
	require.Equal(t, allocatortest.M, c.Class, "S full: upsize to the next class, M")
}

func TestReserveLargeHoldsTheReserve(t *testing.T) {
	cat := allocatortest.FixtureCatalog()
	inv := allocatortest.FixtureInventory(cat)
	p, err := allocator.New("reserve-large", cat, allocator.Config{Reserve: map[string]int{"L": 2}})
	require.NoError(t, err)
	a := allocator.NewAllocator(inv, p)
	// 13 S + 11 M + 6 L ambient. Small parcels may take S, M and L down to 2 free L.
	for i := 0; i < 13+11+4; i++ {
		_, err := a.Assign(allocator.Request{Class: allocatortest.S})
		require.NoError(t, err, "parcel %d", i)
	}
	_, err = a.Assign(allocator.Request{Class: allocatortest.S})
	require.ErrorIs(t, err, allocator.ErrReserveHeld)
	require.Equal(t, allocator.ReasonReserveHeld, allocator.ReasonOf(err))
	_, err = a.Assign(allocator.Request{Class: allocatortest.M})
	require.ErrorIs(t, err, allocator.ErrReserveHeld)
	// Parcels that need L take the reserve.
	for i := 0; i < 2; i++ {
		_, err := a.Assign(allocator.Request{Class: allocatortest.L})
		require.NoError(t, err)
	}
	_, err = a.Assign(allocator.Request{Class: allocatortest.L})
	require.ErrorIs(t, err, allocator.ErrAllBusy)
}

func TestReserveLargeConfigErrors(t *testing.T) {
	cat := allocatortest.FixtureCatalog()
	_, err := allocator.New("reserve-large", cat, allocator.Config{Reserve: map[string]int{"XL": 1}})
	require.ErrorContains(t, err, `unknown class "XL"`)
	_, err = allocator.New("reserve-large", cat, allocator.Config{Reserve: map[string]int{"L": -1}})
	require.ErrorContains(t, err, "negative reserve")
}

func TestRandomFitDrawsFromItsStream(t *testing.T) {
	cat := allocatortest.FixtureCatalog()
	draw := func(seed uint64) []allocator.CompartmentID {
		inv := allocatortest.FixtureInventory(cat)
		p, err := allocator.New("random-fit", cat, allocator.Config{Rand: rand.New(rand.NewPCG(seed, 0))})
		require.NoError(t, err)
		a := allocator.NewAllocator(inv, p)
		var ids []allocator.CompartmentID
		for i := 0; i < 10; i++ {
			id, err := a.Assign(allocator.Request{Class: allocatortest.S})
			require.NoError(t, err)
			ids = append(ids, id)
		}
		return ids
	}
	require.Equal(t, draw(1), draw(1))
	require.NotEqual(t, draw(1), draw(2))
	_, err := allocator.New("random-fit", cat, allocator.Config{})
	require.ErrorContains(t, err, "needs a random stream")
}

func TestUnknownPolicyListsRegistered(t *testing.T) {
	_, err := allocator.New("worst-fit", allocatortest.FixtureCatalog(), allocator.Config{})
	require.EqualError(t, err, `unknown allocator policy "worst-fit" (registered: `+strings.Join(allocator.Names(), ", ")+")")
	require.Equal(t, err, allocator.Known("worst-fit"), "every tool says the same of it")
	require.NoError(t, allocator.Known("best-fit"))
	require.Panics(t, func() {
		allocator.Register("best-fit", func(*allocator.Catalog, allocator.Config) (allocator.Policy, error) { return nil, nil })
	})
}

type watcher struct {
	allocator.HookBase
	veto     allocator.CompartmentID
	assigned []allocator.CompartmentID
	refused  []allocator.Reason
}

func (w *watcher) Provides(allocator.HookEvent) bool { return true }
func (w *watcher) OnAssign(_ allocator.Request, id allocator.CompartmentID) error {
	if id == w.veto {
		return errors.New("door under maintenance")
	}
	return nil
}
func (w *watcher) OnAssigned(_ allocator.Request, id allocator.CompartmentID) {
	w.assigned = append(w.assigned, id)
}
func (w *watcher) OnRefused(_ allocator.Request, err error) {
	w.refused = append(w.refused, allocator.ReasonOf(err))
}

func TestHooksWatchAndVeto(t *testing.T) {
	cat := allocatortest.FixtureCatalog()
	inv := allocatortest.FixtureInventory(cat)
	a := allocator.NewAllocator(inv, newPolicy(t, "first-fit", cat))
	w := &watcher{veto: allocator.NoCompartment}
	a.AddHook(w)
	a.AddHook(allocator.HookBase{})
	req := allocator.Request{Class: allocatortest.S}
	first, err := a.Assign(req)
	require.NoError(t, err)
	// Veto what first-fit takes next: refused, nothing reserved.
	next, err := a.Policy().Choose(inv, req)
	require.NoError(t, err)
	w.veto = next
	_, err = a.Assign(req)
	var veto *allocator.VetoError
	require.ErrorAs(t, err, &veto)
	require.Equal(t, next, veto.Compartment)
	require.ErrorContains(t, err, "door under maintenance")
	require.Equal(t, allocator.ReasonVetoed, allocator.ReasonOf(err))
	require.Equal(t, allocator.Free, inv.Status(next))
	_, err = a.Assign(allocator.Request{Class: 99})
	require.ErrorIs(t, err, allocator.ErrNoFittingClass)
	require.Equal(t, []allocator.CompartmentID{first}, w.assigned)
	require.Equal(t, []allocator.Reason{allocator.ReasonVetoed, allocator.ReasonNoFittingClass}, w.refused)
}
