package broker

import (
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkBrokerPublishDeliver publishes commands through the wrapper
// (inline, QoS 1) to a cabinet connected over loopback TCP, and reports
// delivered messages per second and how many mochi dropped.
func BenchmarkBrokerPublishDeliver(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t)
	c, err := connect(t, f.b.Addr(), "lobby.a1", "lobby.a1", f.secretA, nil)
	if err != nil {
		b.Fatal(err)
	}
	if code := c.subscribe(t, aCmd); code >= 0x80 {
		b.Fatalf("subscribe refused: %x", code)
	}
	var got atomic.Int64
	done := make(chan struct{})
	target := int64(b.N)
	go func() {
		for range c.inbox {
			if got.Add(1) == target {
				close(done)
				return
			}
		}
	}()
	payload := []byte(`{"v":1,"id":"lobby-c1","type":"open","compartment":7,"issued_at":"2026-03-02T09:30:00Z","expires_at":"2026-03-02T09:31:00Z"}`)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := f.b.Publish(aCmd, payload, false, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(got.Load())/elapsed.Seconds(), "delivered/s")
	b.ReportMetric(float64(f.b.Stats().MessagesDropped), "dropped")
	b.ReportMetric(float64(int64(b.N)-got.Load()), "missing")
	c.conn.Close()
	f.b.Close()
}
