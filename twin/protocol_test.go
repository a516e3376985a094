package twin

import (
	"encoding/json"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

func validCommand() Command {
	return Command{V: 1, ID: "lobby-c1", Type: CmdOpen, Compartment: 7, IssuedAt: t0, ExpiresAt: t0.Add(time.Minute)}
}

func validEvent() Event {
	occ := true
	return Event{V: 1, ID: "a1-1", Seq: 1, Type: EvtDoorClosed, At: t0, Compartment: 3, Occupied: &occ}
}

func TestCommandRoundTripAndValidation(t *testing.T) {
	c := validCommand()
	data, err := EncodeCommand(&c)
	require.NoError(t, err)
	require.JSONEq(t, `{"v":1,"id":"lobby-c1","type":"open","compartment":7,"issued_at":"2026-03-02T09:30:00Z","expires_at":"2026-03-02T09:31:00Z"}`, string(data))
	got, err := DecodeCommand(data)
	require.NoError(t, err)
	require.Equal(t, c, got)

	tests := []struct {
		name string
		json string
		want string
	}{
		{"unknown field", `{"v":1,"id":"x","type":"open","compartment":1,"issued_at":"2026-03-02T09:30:00Z","expires_at":"2026-03-02T09:31:00Z","force":true}`, "unknown field"},
		{"wrong version", `{"v":2,"id":"x","type":"open","compartment":1,"issued_at":"2026-03-02T09:30:00Z","expires_at":"2026-03-02T09:31:00Z"}`, "version 2"},
		{"no id", `{"v":1,"type":"open","compartment":1,"issued_at":"2026-03-02T09:30:00Z","expires_at":"2026-03-02T09:31:00Z"}`, "id"},
		{"id with a slash", `{"v":1,"id":"a/b","type":"open","compartment":1,"issued_at":"2026-03-02T09:30:00Z","expires_at":"2026-03-02T09:31:00Z"}`, "id"},
		{"open without compartment", `{"v":1,"id":"x","type":"open","issued_at":"2026-03-02T09:30:00Z","expires_at":"2026-03-02T09:31:00Z"}`, "compartment"},
		{"compartment too large", `{"v":1,"id":"x","type":"open","compartment":9999,"issued_at":"2026-03-02T09:30:00Z","expires_at":"2026-03-02T09:31:00Z"}`, "compartment"},
		{"sync with compartment", `{"v":1,"id":"x","type":"sync","compartment":2,"issued_at":"2026-03-02T09:30:00Z","expires_at":"2026-03-02T09:31:00Z"}`, "sync takes no compartment"},
		{"unknown type", `{"v":1,"id":"x","type":"unlock_all","issued_at":"2026-03-02T09:30:00Z","expires_at":"2026-03-02T09:31:00Z"}`, "unknown type"},
		{"expiry before issue", `{"v":1,"id":"x","type":"sync","issued_at":"2026-03-02T09:30:00Z","expires_at":"2026-03-02T09:29:00Z"}`, "expires_at"},
		{"no times", `{"v":1,"id":"x","type":"sync"}`, "required"},
		{"trailing data", `{"v":1,"id":"x","type":"sync","issued_at":"2026-03-02T09:30:00Z","expires_at":"2026-03-02T09:31:00Z"} {}`, "trailing"},
		{"not json", `open door 7`, "invalid command"},
		{"array", `[1,2]`, "invalid command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeCommand([]byte(tt.json))
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorContains(t, err, tt.want)
		})
	}
	big := make([]byte, MaxPayloadBytes+1)
	_, err = DecodeCommand(big)
	require.ErrorContains(t, err, "exceeds")
}

func TestEventValidation(t *testing.T) {
	e := validEvent()
	data, err := EncodeEvent(&e)
	require.NoError(t, err)
	got, err := DecodeEvent(data)
	require.NoError(t, err)
	require.Equal(t, e, got)

	occ := false
	temp := 7.5
	hot := 120.0
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"ack without command", Event{Type: EvtAck}, "ack needs the command id"},
		{"nack without reason", Event{Type: EvtNack, Command: "c1"}, "nack needs"},
		{"door opened without compartment", Event{Type: EvtDoorOpened}, "needs a compartment"},
		{"door closed without reading", Event{Type: EvtDoorClosed, Compartment: 1}, "occupancy reading"},
		{"occupancy without reading", Event{Type: EvtOccupancy, Compartment: 1}, "occupancy reading"},
		{"temperature without value", Event{Type: EvtTemp, Compartment: 1}, "temp_c"},
		{"temperature absurd", Event{Type: EvtTemp, Compartment: 1, TempC: &hot}, "temp_c"},
		{"fault without kind", Event{Type: EvtFault}, "fault kind"},
		{"jam without compartment", Event{Type: EvtFault, Fault: FaultJam}, "fault needs a compartment"},
		{"pin too short", Event{Type: EvtPin, Code: "12"}, "code of 4"},
		{"unknown type", Event{Type: "explode"}, "unknown type"},
		{"negative compartment", Event{Type: EvtHeartbeat, Compartment: -1}, "out of range"},
		{"malformed command id", Event{Type: EvtAck, Command: "a b"}, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := tt.ev
			ev.V, ev.ID, ev.Seq, ev.At = 1, "a1-9", 9, t0
			require.ErrorContains(t, ev.Validate(), tt.want)
		})
	}
	for _, ok := range []Event{
		{Type: EvtOccupancy, Compartment: 2, Occupied: &occ},
		{Type: EvtTemp, Compartment: 2, TempC: &temp},
		{Type: EvtPin, Code: "123456789012"},
		{Type: EvtHeartbeat},
		{Type: EvtNack, Command: "c1", Reason: NackExpired},
		{Type: EvtFault, Fault: FaultJam, Compartment: 2},
		{Type: EvtFault, Fault: FaultPowerRestored}, // a cabinet's fault, not a compartment's
	} {
		ok.V, ok.ID, ok.Seq, ok.At = 1, "a1-9", 9, t0
		require.NoError(t, ok.Validate(), ok.Type)
	}
	bad := validEvent()
	bad.Seq = 0
	require.ErrorContains(t, bad.Validate(), "seq")
}

func TestStateValidation(t *testing.T) {
	temp := 4.1
	st := State{V: 1, Cabinet: "a1", Version: 3, Seq: 10, Firmware: "fw", At: t0, Compartments: []CompartmentState{
		{Compartment: 1, Door: DoorLocked, Occupied: true}, {Compartment: 2, Door: DoorJammed, TempC: &temp},
	}}
	data, err := EncodeState(&st)
	require.NoError(t, err)
	got, err := DecodeState(data)
	require.NoError(t, err)
	require.Equal(t, st, got)
	st.Compartments[1].Compartment = 3
	require.ErrorContains(t, st.Validate(), "listed 1, 2, 3")
	st.Compartments[1].Compartment = 2
	st.Compartments[1].Door = "ajar"
	require.ErrorContains(t, st.Validate(), "unknown door state")
	st.Compartments[1].Door = DoorOpen
	require.NoError(t, st.Validate())
	st.Compartments[1].TempAlarm = true
	require.NoError(t, st.Validate(), "out of range, with the reading")
	data, err = EncodeState(&st)
	require.NoError(t, err)
	require.Contains(t, string(data), `"temp_c":4.1,"temp_alarm":true`)
	st.Compartments[0].TempAlarm = true
	require.ErrorContains(t, st.Validate(), "temp_alarm needs the temp_c")
	st.Compartments[0].TempAlarm = false
	absurd := 1e300
	st.Compartments[1].TempC = &absurd
	require.ErrorContains(t, st.Validate(), "temp_c must be between -60 and 90")
	st.Compartments[1].TempC = &temp
	st.Cabinet = "A1"
	require.ErrorContains(t, st.Validate(), "cabinet")
}

func TestStatusAndTopics(t *testing.T) {
	for _, s := range []string{"online", "offline"} {
		got, err := DecodeStatus([]byte(s))
		require.NoError(t, err)
		require.Equal(t, s, got)
	}
	_, err := DecodeStatus([]byte("Online"))
	require.ErrorIs(t, err, ErrInvalid)

	require.Equal(t, "lockers/v1/lobby/a1/cmd", CabinetTopic("lobby", "a1", ChanCmd))
	tp, err := ParseTopic("lockers/v1/lobby/a1/evt")
	require.NoError(t, err)
	require.Equal(t, Topic{Site: "lobby", Cabinet: "a1", Channel: ChanEvt}, tp)
	for _, bad := range []string{
		"lockers/v1/lobby/a1", "lockers/v1/lobby/a1/evt/x", "lockers/v2/lobby/a1/evt", "lockers/v1/+/a1/evt",
		"lockers/v1/lobby/#", "lockers/v1/Lobby/a1/evt", "lockers/v1//a1/evt", "lockers/v1/lobby/a1/debug", "",
	} {
		_, err := ParseTopic(bad)
		require.ErrorIs(t, err, ErrInvalid, bad)
	}
}

// Fuzz targets: one per decoder of outside input. Whatever the bytes, a
// decoder returns a valid value or a ProtocolError, never panics, and what
// it accepts re-encodes to something it accepts again.
func FuzzDecodeCommand(f *testing.F) {
	c := validCommand()
	seed, _ := json.Marshal(c)
	f.Add(seed)
	f.Add([]byte(`{"v":1,"id":"x","type":"sync","issued_at":"2026-03-02T09:30:00Z","expires_at":"2026-03-02T09:31:00Z"}`))
	f.Add([]byte(`{"v":1,"id":"x","type":"open","compartment":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCommand(data)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		out, err := EncodeCommand(&c)
		require.NoError(t, err)
		_, err = DecodeCommand(out)
		require.NoError(t, err)
	})
}

func FuzzDecodeEvent(f *testing.F) {
	e := validEvent()
	seed, _ := json.Marshal(e)
	f.Add(seed)
	f.Add([]byte(`{"v":1,"id":"a-1","seq":1,"type":"pin_entered","at":"2026-03-02T09:30:00Z","code":"123456789012"}`))
	f.Add([]byte(`{"v":1,"id":"a-1","seq":1,"type":"temperature","at":"2026-03-02T09:30:00Z","compartment":2,"temp_c":1e309}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEvent(data)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		out, err := EncodeEvent(&e)
		require.NoError(t, err)
		_, err = DecodeEvent(out)
		require.NoError(t, err)
	})
}

func FuzzDecodeState(f *testing.F) {
	f.Add([]byte(`{"v":1,"cabinet":"a1","version":1,"seq":1,"firmware":"x","at":"2026-03-02T09:30:00Z","compartments":[{"compartment":1,"door":"locked","occupied":false}]}`))
	f.Add([]byte(`{"v":1,"cabinet":"a1","compartments":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeState(data)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		out, err := EncodeState(&s)
		require.NoError(t, err)
		_, err = DecodeState(out)
		require.NoError(t, err)
	})
}

func FuzzDecodeStatus(f *testing.F) {
	f.Add([]byte("online"))
	f.Add([]byte("offline\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeStatus(data)
		if err == nil {
			require.Contains(t, []string{StatusOnline, StatusOffline}, s)
		}
	})
}

func FuzzParseTopic(f *testing.F) {
	f.Add("lockers/v1/lobby/a1/evt")
	f.Add("lockers/v1/+/#")
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := ParseTopic(s)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		require.Equal(t, s, tp.String(), "a parsed topic prints back exactly")
	})
}

// TestAppendIDStaysValid: ids made from the longest site and cabinet names
// and the largest numbers are still valid ids; a short name is kept whole.
func TestAppendIDStaysValid(t *testing.T) {
	long := strings.Repeat("s", 64)
	for _, tt := range []struct {
		name, tag string
		n         uint64
		base      int
		want      string
	}{
		{"city-7", "-c", 1234, 10, "city-7-c1234"},
		{"a1", "-", 1, 10, "a1-1"},
		{long, "-c", 7, 10, long[:61] + "-c7"},
		{long, "-", math.MaxUint64, 10, long[:43] + "-18446744073709551615"},
		{"city-00-04", "-", 35, 36, "city-00-04-z"}, // a simulated parcel's id
		{long, "-", math.MaxUint64, 36, long[:50] + "-3w5e11264sgsf"},
	} {
		id := string(AppendID(nil, tt.name, tt.tag, tt.n, tt.base))
		require.Equal(t, tt.want, id)
		require.True(t, validID(id), id)
		require.LessOrEqual(t, len(id), MaxIDLen)
	}
}

func TestIDCounterMakesAppendIDsIDs(t *testing.T) {
	long := strings.Repeat("s", MaxIDLen-4) // cut shorter as the number grows
	for _, tc := range []struct {
		name string
		site string
		ns   []uint64 // one more than the last: counted up
	}{
		{"first ids", "lobby", []uint64{1, 2, 3, 4}},
		{"new digits", "lobby", []uint64{9, 10, 11, 99, 100, 999, 1000}},
		{"long name", long, []uint64{9, 10, 11, 12, 100, 101, 102, 9999, 10000, 10001}},
		{"jumps and repeats", "lobby", []uint64{6, 6, 42, 41, 42, 1 << 40, 1<<40 + 1, 0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var k IDCounter
			for _, n := range tc.ns {
				want := string(AppendID(nil, tc.site, "-c", n, 10))
				require.Equal(t, want, string(k.ID(tc.site, "-c", n)), "n %d", n)
				require.LessOrEqual(t, len(want), MaxIDLen)
			}
		})
	}
}

// TestValidIDAgreesWithItsPattern puts every byte at every place of ids of
// 1 to 9 characters and checks the verdict against the documented
// pattern; and the length bounds.
func TestValidIDAgreesWithItsPattern(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
	for n := 1; n <= 9; n++ {
		for at := 0; at < n; at++ {
			b := []byte(strings.Repeat("a", n))
			for c := range 256 {
				b[at] = byte(c)
				id := string(b)
				require.Equal(t, pattern.MatchString(id), validID(id), "%q", id)
			}
		}
	}
	require.False(t, validID(""))
	require.True(t, validID(strings.Repeat("x", MaxIDLen)))
	require.False(t, validID(strings.Repeat("x", MaxIDLen+1)))
}
