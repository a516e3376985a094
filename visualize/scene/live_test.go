package scene

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/controller/service"
	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/lockertwin/lockertwin/sim/world"
	"github.com/stretchr/testify/require"
)

// startLockerd runs lockerd's service on a shipped scenario's sites until
// the test ends.
func startLockerd(t *testing.T, scenario string) *service.Service {
	sc, _, err := scenarios.LoadShipped(scenario)
	require.NoError(t, err)
	layouts, err := service.LayoutsFromScenario(sc)
	require.NoError(t, err)
	svc, err := service.New(service.Config{DataDir: t.TempDir(), Sites: layouts})
	require.NoError(t, err)
	require.NoError(t, svc.Start())
	t.Cleanup(func() { svc.Shutdown(context.Background()) })
	return svc
}

func TestLiveSourceFollowsLockerd(t *testing.T) {
	svc := startLockerd(t, "grocery-chilled.yaml")
	_, courier := svc.Tokens()
	base := "http://" + svc.HTTPAddr()
	announce := func(id string) {
		body, _ := json.Marshal(map[string]any{"id": id, "class": "M-cold", "recipient": "r"})
		req, _ := http.NewRequest("POST", base+"/v1/sites/market-square/parcels", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+courier)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 201, resp.StatusCode)
	}
	announce("before")

	src, err := NewLiveSource(context.Background(), base, courier)
	require.NoError(t, err)
	defer src.Close()
	l := src.Layout()
	require.Len(t, l.Sites, 1)
	// The panel lists classes as the scenario does, not in the order the
	// first cabinet's compartments happen to name them.
	require.Equal(t, []string{"S", "M", "L", "M-cold", "L-cold"}, l.Classes)
	require.Len(t, l.Sites[0].Cabinets, 2)
	require.True(t, l.Sites[0].Cabinets[0].Compartments[len(l.Sites[0].Cabinets[0].Compartments)-1].Chilled || anyChilled(l))
	scene := NewScene(l)
	src.Apply(scene)
	require.Equal(t, 1, countState(scene, Reserved), "the state lockerd had when the view connected")

	announce("after")
	require.Eventually(t, func() bool {
		_, err := src.Advance(0, scene.Apply)
		require.NoError(t, err)
		return countState(scene, Reserved) == 2
	}, 5*time.Second, 20*time.Millisecond, "the stream's observation reached the scene")
}

func anyChilled(l world.Layout) bool {
	for _, s := range l.Sites {
		for _, c := range s.Cabinets {
			for _, k := range c.Compartments {
				if k.Chilled {
					return true
				}
			}
		}
	}
	return false
}

func countState(sc *Scene, st CompState) int {
	n := 0
	for _, s := range sc.Sites {
		for _, c := range s.Cabinets {
			for _, k := range c.Comps {
				if k.State == st {
					n++
				}
			}
		}
	}
	return n
}

// TestLiveSourceResyncsAfterAGap: when lockerd's stream says it dropped
// observations for this view, the view reads the states again and shows
// them, instead of a picture that stays wrong.
func TestLiveSourceResyncsAfterAGap(t *testing.T) {
	var mu sync.Mutex
	status, second := "free", "reserved"
	extra := `,"door_open":true,"alarms":["door_left_open","temp_out_of_range"]` // compartment 2's, until the gap
	gap := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/sites", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"sites":["s1"]}`)
	})
	mux.HandleFunc("GET /v1/sites/s1", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, `{"site":"s1","compartments":[{"cabinet":"c1","compartment":1,"class":"S","status":%q,"parcel":"p1"},{"cabinet":"c1","compartment":2,"class":"S","status":%q,"parcel":"p2"%s}]}`, status, second, extra)
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": lockerd observations\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-gap:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "event: gap\ndata: {\"missed\":7}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	src, err := NewLiveSource(context.Background(), srv.URL, "token")
	require.NoError(t, err)
	defer src.Close()
	scene := NewScene(src.Layout())
	src.Apply(scene)
	require.Equal(t, 1, countState(scene, Reserved))
	require.Zero(t, countState(scene, Occupied))
	second2 := &scene.Sites[0].Cabinets[0].Comps[1]
	require.True(t, second2.DoorOpen, "the door lockerd reported open")
	require.True(t, second2.Warm, "and its temperature out of range")

	// Meanwhile a parcel was deposited, another expired, and their
	// observations were dropped.
	mu.Lock()
	status, second, extra = "occupied", "awaiting-return", ""
	mu.Unlock()
	close(gap)
	require.Eventually(t, func() bool {
		_, err := src.Advance(0, scene.Apply)
		require.NoError(t, err)
		return countState(scene, Occupied) == 1
	}, 5*time.Second, 10*time.Millisecond, "the view read the states again")
	require.Equal(t, 1, src.Gaps())
	require.Equal(t, 1, countState(scene, AwaitingReturn), "an expired parcel is shown as one, not as occupied")
	require.False(t, second2.DoorOpen, "the door closed in the gap")
	require.False(t, second2.Warm, "and the temperature came back")
	require.Zero(t, countState(scene, Reserved))
	for _, st := range scene.Sites {
		for _, cb := range st.Cabinets {
			for _, c := range cb.Comps {
				require.NotEmpty(t, c.Parcel, "the resync names the parcels")
			}
		}
	}
}

func TestLiveSourceSaysWhyLockerdRefused(t *testing.T) {
	svc := startLockerd(t, "residential-tower.yaml")
	_, err := NewLiveSource(context.Background(), "http://"+svc.HTTPAddr(), "not-a-token")
	require.EqualError(t, err, "GET /v1/sites: 401 Unauthorized: the bearer token is not valid here")
}
