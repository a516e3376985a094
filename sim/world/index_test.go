package world

import (
	"strconv"
	"strings"
	"testing"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/internal/strarena"
	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/lockertwin/lockertwin/twin"
	"github.com/stretchr/testify/require"
)

func TestParcelIndex(t *testing.T) {
	var x parcelIndex
	var strs strarena.Arena
	mk := func(home string, num uint64) *parcel {
		p := &parcel{num: num}
		x.add(p, home, &strs)
		return p
	}
	a, b, c := mk("tower", 7), mk("tower", 36), mk("campus.north", 1000)
	require.Equal(t, "tower-7.0", a.id)
	require.Equal(t, "tower-10.1", b.id)
	require.Equal(t, "campus.north-rs.2", c.id)
	live := func() int { return len(x.slots) - len(x.free) }
	require.Equal(t, 3, live())
	for _, p := range []*parcel{a, b, c} {
		require.Same(t, p, x.get(p.id))
	}

	// A freed place is reused; the old id no longer finds anything, and the
	// new parcel is not found by it either.
	x.remove(b)
	require.Nil(t, x.get("tower-10.1"))
	d := mk("tower", 37)
	require.Equal(t, uint32(1), d.ix)
	require.Equal(t, "tower-11.1", d.id)
	require.Nil(t, x.get("tower-10.1"))
	require.Same(t, d, x.get("tower-11.1"))

	// Removing a parcel twice, or one placed in another index, changes nothing.
	x.remove(b)
	require.Equal(t, 3, live())
	stranger := &parcel{ix: 0}
	x.remove(stranger)
	require.Same(t, a, x.get(a.id))

	for _, id := range []string{
		"", "tower", "tower-7", "tower-7.", "tower-7.zzzzzzzzzzzz", "tower-7.9", "tower-7.-1",
		"tower-7.0.", "tower-8.0", "TOWER-7.0", "tower-7.0 ",
	} {
		require.Nil(t, x.get(id), "id %q", id)
	}

	// A long home name is shortened so that the id stays a valid id.
	long := mk(strings.Repeat("s", 100), 1<<40)
	require.Len(t, long.id, twin.MaxIDLen)
	require.True(t, strings.HasSuffix(long.id, "-"+strconv.FormatUint(1<<40, 36)+".3"), long.id)
	require.Same(t, long, x.get(long.id))
}

// TestScenarioCabinetLimitIsTheProtocols: the scenario validator's limit on
// a cabinet's compartments (scenarios imports nothing of lockertwin) is the
// cabinet protocol's, which pickup codes rely on.
func TestScenarioCabinetLimitIsTheProtocols(t *testing.T) {
	require.Equal(t, twin.MaxCompartments, scenarios.MaxCabinetCompartments)
	require.Equal(t, allocator.MaxClasses, scenarios.MaxClasses, "a scenario's classes fit the allocator's catalog")
	require.Equal(t, twin.MaxIDLen, scenarios.MaxSiteIDLen, "a scenario's site ids are valid cabinet protocol ids")
}
