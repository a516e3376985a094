package scene

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/controller/service"
	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/lockertwin/lockertwin/sim/world"
	"github.com/stretchr/testify/require"
)

func TestLiveSourceFollowsLockerd(t *testing.T) {
	sc, _, err := scenarios.LoadShipped("grocery-chilled.yaml")
	require.NoError(t, err)
	layouts, err := service.LayoutsFromScenario(sc)
	require.NoError(t, err)
	svc, err := service.New(service.Config{DataDir: t.TempDir(), Sites: layouts})
	require.NoError(t, err)
	require.NoError(t, svc.Start())
	defer svc.Shutdown(context.Background())
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
