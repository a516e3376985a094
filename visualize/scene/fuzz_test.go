package scene

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/lockertwin/lockertwin/sim/world"
	"github.com/stretchr/testify/require"
)

// streamRig is a live source over the residential tower's layout whose
// lockerd is nowhere (a gap's re-read of the states fails), and a maker of
// the stream's observation lines for its first cabinet.
func streamRig(t testing.TB) (world.Layout, func() *LiveSource, func(kind string, comp int, detail string) string) {
	sc, _, err := scenarios.LoadShipped("residential-tower.yaml")
	require.NoError(t, err)
	sim, err := NewSimSource(sc)
	require.NoError(t, err)
	layout := sim.Layout()
	site, cab := layout.Sites[0].ID, layout.Sites[0].Cabinets[0].Name
	source := func() *LiveSource {
		return &LiveSource{base: "http://127.0.0.1:1", client: http.DefaultClient, layout: layout}
	}
	obs := func(kind string, comp int, detail string) string {
		return `data: {"site":"` + site + `","cabinet":"` + cab + `","compartment":` + strconv.Itoa(comp) + `,"kind":"` + kind +
			`","parcel":"p1","detail":"` + detail + `","at":"2026-03-02T09:30:14Z"}` + "\n"
	}
	return layout, source, obs
}

func feed(src *LiveSource, stream string) {
	src.read(&http.Response{Body: io.NopCloser(strings.NewReader(stream))})
}

// TestLiveStreamEventNamesEndWithTheMessage: in Server-Sent Events a
// message's event name lasts until the blank line that ends it, so an
// observation sent without a name after a gap is an observation.
func TestLiveStreamEventNamesEndWithTheMessage(t *testing.T) {
	_, source, obs := streamRig(t)
	src := source()
	feed(src, "event: gap\ndata: {\"missed\":3}\n\n"+obs("reserved", 1, "")+"\n")
	require.Len(t, src.queue, 1)
	require.Equal(t, "reserved", src.queue[0].Kind)
	require.Error(t, src.err, "the gap made it read the states again, from nowhere here")
}

// FuzzLiveStream: lockerd's event stream is outside input to a live view.
// Whatever text arrives, reading it queues only what parses, and applying
// that keeps the scene's counts true to its compartments; nothing panics.
func FuzzLiveStream(f *testing.F) {
	layout, source, obs := streamRig(f)
	f.Add(obs("reserved", 1, "") + obs("deposited", 1, "") + obs("picked_up", 1, ""))
	f.Add(obs("out_of_service", 2, "") + obs("back_in_service", 2, "") + obs("back_in_service", 3, ""))
	f.Add(obs("state", 1, "occupied") + obs("state", 1, "bogus") + obs("expired", 1, "") + obs("returned", 1, ""))
	f.Add(obs("deposited", 0, "") + obs("deposited", 9999, "") + obs("deposited", -1, ""))
	f.Add("event: gap\ndata: {}\n" + obs("reserved", 1, ""))
	f.Add("data: {not json\ndata: null\ndata: []\nevent: observation\n\n")
	f.Fuzz(func(t *testing.T, stream string) {
		src := source()
		feed(src, stream)
		scene := NewScene(layout)
		_, _ = src.Advance(0, scene.Apply)
		byClass := map[string]int{}
		for _, s := range scene.Sites {
			notFree := 0
			for _, c := range s.Cabinets {
				for _, k := range c.Comps {
					if k.State != Free {
						notFree++
					}
					if k.State == Occupied || k.State == AwaitingReturn {
						byClass[k.Class]++
					}
				}
			}
			require.Equal(t, notFree, s.occupied, "site %s", s.ID)
		}
		for class, n := range scene.OccupiedByClass {
			require.Equal(t, byClass[class], n, "class %s", class)
		}
	})
}
