package twin

import (
	"testing"
	"time"
)

// BenchmarkProtocolRoundTrip encodes and strictly decodes one event.
func BenchmarkProtocolRoundTrip(b *testing.B) {
	ev := validEvent()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		data, err := EncodeEvent(&ev)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := DecodeEvent(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProtocolCommandRoundTrip encodes and decodes one command.
func BenchmarkProtocolCommandRoundTrip(b *testing.B) {
	c := validCommand()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		data, err := EncodeCommand(&c)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := DecodeCommand(data); err != nil {
			b.Fatal(err)
		}
	}
}

type nullUplink struct{ n int }

func (u *nullUplink) PublishEvent(string, Event)   { u.n++ }
func (u *nullUplink) PublishState(string, State)   {}
func (u *nullUplink) PublishStatus(string, string) {}

// BenchmarkCabinetCommandAck is one open command handled by a virtual
// cabinet: dedup check, expiry check, ack, door opened; then the door is
// closed again (door_closed) so the next command finds it locked.
func BenchmarkCabinetCommandAck(b *testing.B) {
	clock := NewManualClock(t0)
	up := &nullUplink{}
	c, err := NewCabinet(CabinetConfig{Site: "lobby", Name: "a1", Compartments: make([]CompartmentSpec, 60)}, clock, up, nil, streams(1))
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = "c" + itoaTest(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now := clock.Now()
		slot := 1 + i%60
		c.HandleCommand(Command{V: 1, ID: ids[i&4095] + "-" + itoaTest(i>>12), Type: CmdOpen, Compartment: slot, IssuedAt: now, ExpiresAt: now.Add(time.Minute)})
		_ = c.Close(slot)
		if i%1024 == 0 {
			clock.Advance(time.Second)
		}
	}
}

func itoaTest(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}
