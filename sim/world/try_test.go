package world

import (
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/scenarios"
)

func TestTry(t *testing.T) {
	for _, name := range scenarios.Shipped() {
		if name == "city-network.yaml" {
			continue
		}
		sc, _, err := scenarios.LoadShipped(name)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		w, err := New(sc, Options{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		r, err := w.Run()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v events in %v", name, r.Events, time.Since(start))
		for _, k := range r.KPIs {
			t.Logf("  %-28s %10.3f", k.Name, k.Value)
		}
	}
}
