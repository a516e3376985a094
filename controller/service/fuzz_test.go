package service

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/lockertwin/lockertwin/controller"
	"github.com/stretchr/testify/require"
)

type discardNotes struct{}

func (discardNotes) Notify(string, controller.Notification) {}

// FuzzAPIRequests: what clients send the HTTP API is outside input. No
// body, on any endpoint that takes one, with either token, makes the
// service answer 5xx or an error without a code and a message.
func FuzzAPIRequests(f *testing.F) {
	svc, err := New(Config{DataDir: f.TempDir(), Sites: tinyLayout(f), Notifier: discardNotes{}})
	require.NoError(f, err)
	require.NoError(f, svc.Start())
	f.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	admin, courier := svc.Tokens()
	base := "http://" + svc.HTTPAddr()
	routes := []string{
		"/v1/sites/lobby/parcels", "/v1/sites/lobby/parcels/p1/deposit", "/v1/sites/lobby/parcels/p1/return",
		"/v1/sites/lobby/parcels/p1/qr", "/v1/sites/lobby/parcels/p1/code", "/v1/sites/lobby/pickup", "/v1/sites",
		"/v1/sites/lobby/parcels/p1/cancel", "/v1/sites/lobby/parcels/p1/resolve",
		"/v1/sites/lobby/cabinets/c1/compartments/1/in-service",
	}
	for i, body := range []string{
		`{"id":"p1","class":"S","recipient":"r"}`, `{"id":"p2","length_mm":100,"width_mm":100,"height_mm":50,"recipient":"r"}`,
		`{"cabinet":"c1","code":"123456789012"}`, `{"cabinet":"c1","qr":"LT1.p1.c1.1.0.1.AAAAAAAAAAAAAAAAAAAAAA"}`,
		`{}`, `null`, `[]`, `{"id":"p1","class":"S","recipient":"r"} {}`, `{"id":`, `{"id":"` + strings.Repeat("x", 70) + `"}`,
		`{"id":"s2","layout":{}}`, "", `{"resolution":"resume"}`, `{"resolution":"removed","why":1}`,
		`{"id":"s3","classes":[{"name":"S","width_mm":1,"height_mm":1,"depth_mm":1}],"cabinets":[{"name":"c1","compartments":[{"class":"S"}]},{"name":"c1","compartments":[{"class":"S"}]}]}`,
		`{"id":"s4","classes":[{"name":"S","width_mm":1,"height_mm":1,"depth_mm":1}],"cabinets":[{"name":"c1","compartments":[{"class":"S","bottom_mm":9,"top_mm":1}]}]}`,
	} {
		f.Add(uint8(i), body, i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, route uint8, body string, asAdmin bool) {
		req, err := http.NewRequest("POST", base+routes[int(route)%len(routes)], strings.NewReader(body))
		require.NoError(t, err)
		token := courier
		if asAdmin {
			token = admin
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Less(t, resp.StatusCode, 500, "%s %q: %s", req.URL.Path, body, raw)
		if resp.StatusCode >= 400 {
			var e struct{ Code, Message string }
			require.NoError(t, json.Unmarshal(raw, &e), "%s", raw)
			require.NotEmpty(t, e.Code, "%s", raw)
			require.NotEmpty(t, e.Message, "%s", raw)
		}
		// Every stored layout is a running site: a refused one was not
		// stored, where it would stop lockerd's next start.
		stored, err := svc.store.SiteLayouts()
		require.NoError(t, err)
		for id := range stored {
			_, running := svc.site(id)
			require.True(t, running, "site %s stored but not running, after %s %q", id, req.URL.Path, body)
		}
	})
}
