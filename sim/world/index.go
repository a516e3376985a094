package world

import (
	"strconv"
	"strings"

	"github.com/lockertwin/lockertwin/internal/strarena"
	"github.com/lockertwin/lockertwin/twin"
)

// parcelIndex holds a shard's live parcels by controller id. A parcel's id
// ends in its place here (".{slot in base 36}"), so finding the parcel a
// notification or a logged event names parses a few characters and reads
// one slice element, where a map keyed by the id string hashed it, probed
// a table long out of cache and compared the stored key. Freed places are
// reused, so the index follows the most parcels live at once, not the
// number that went through.
type parcelIndex struct {
	slots []*parcel
	free  []uint32
}

// add gives p a fresh id for its number and home site, and a place.
func (x *parcelIndex) add(p *parcel, home string, strs *strarena.Arena) {
	var slot uint32
	if n := len(x.free); n > 0 {
		slot, x.free = x.free[n-1], x.free[:n-1]
	} else {
		slot = uint32(len(x.slots))
		x.slots = append(x.slots, nil)
	}
	x.slots[slot] = p
	p.ix = slot
	var b [twin.MaxIDLen]byte
	p.id = strs.String(appendParcelID(b[:0], home, p.num, slot))
}

// remove lets go of p's place, if p still holds it.
func (x *parcelIndex) remove(p *parcel) {
	if int(p.ix) < len(x.slots) && x.slots[p.ix] == p {
		x.slots[p.ix] = nil
		x.free = append(x.free, p.ix)
	}
}

// get finds the live parcel with id, or nil.
func (x *parcelIndex) get(id string) *parcel {
	dot := strings.LastIndexByte(id, '.')
	if dot < 0 {
		return nil
	}
	slot, err := strconv.ParseUint(id[dot+1:], 36, 32)
	if err != nil || slot >= uint64(len(x.slots)) {
		return nil
	}
	if p := x.slots[slot]; p != nil && p.id == id {
		return p
	}
	return nil
}

// appendParcelID appends "{home}-{num}.{slot}" (numbers in base 36),
// shortening home so that the id stays within twin.MaxIDLen.
func appendParcelID(b []byte, home string, num uint64, slot uint32) []byte {
	var tail [32]byte
	t := append(tail[:0], '-')
	t = strconv.AppendUint(t, num, 36)
	t = append(t, '.')
	t = strconv.AppendUint(t, uint64(slot), 36)
	return twin.AppendNamedID(b, home, t)
}
