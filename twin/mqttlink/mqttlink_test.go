package mqttlink

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/twin"
	"github.com/lockertwin/lockertwin/twin/broker"
	"github.com/stretchr/testify/require"
)

const wait = 5 * time.Second

func streams(name string) *rand.Rand { return rand.New(rand.NewPCG(1, uint64(len(name)))) }

type received struct {
	topic   string
	payload []byte
}

// TestVirtualCabinetOverMQTT: a virtual cabinet in wall-clock time, over
// loopback MQTT to the embedded broker (plain TCP, and MQTT over WebSocket
// as some gateways use), is driven by a controller-side subscriber exactly
// as a real cabinet would be.
func TestVirtualCabinetOverMQTT(t *testing.T) {
	for _, transport := range []string{"mqtt", "ws"} {
		t.Run(transport, func(t *testing.T) { virtualCabinetOver(t, transport) })
	}
}

func virtualCabinetOver(t *testing.T, transport string) {
	creds := broker.NewCredentials()
	_, secret, err := creds.AddCabinet("lobby", "a1")
	require.NoError(t, err)
	b, err := broker.New(broker.Config{Credentials: creds, WSAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	require.NoError(t, b.Start())
	defer b.Close()
	url := "mqtt://" + b.Addr()
	if transport == "ws" {
		url = "ws://" + b.WSAddr() + "/mqtt"
	}
	msgs := make(chan received, 256)
	for _, ch := range []twin.Channel{twin.ChanEvt, twin.ChanState, twin.ChanStatus} {
		_, err := b.Subscribe(twin.CabinetTopic("lobby", "a1", ch), func(topic string, payload []byte) {
			msgs <- received{topic, append([]byte(nil), payload...)}
		})
		require.NoError(t, err)
	}
	next := func(ch twin.Channel) received {
		t.Helper()
		deadline := time.After(wait)
		for {
			select {
			case m := <-msgs:
				if m.topic == twin.CabinetTopic("lobby", "a1", ch) {
					return m
				}
			case <-deadline:
				t.Fatalf("nothing on %s", ch)
			}
		}
	}
	nextEvent := func() twin.Event {
		t.Helper()
		m := next(twin.ChanEvt)
		ev, err := twin.DecodeEvent(m.payload)
		require.NoError(t, err)
		return ev
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r, err := Start(ctx, Config{Broker: url, Site: "lobby", Cabinet: "a1", Secret: secret},
		twin.CabinetConfig{Compartments: make([]twin.CompartmentSpec, 4)}, streams, nil)
	require.NoError(t, err)
	require.Equal(t, twin.StatusOnline, string(next(twin.ChanStatus).payload))
	st, err := twin.DecodeState(next(twin.ChanState).payload)
	require.NoError(t, err)
	require.Len(t, st.Compartments, 4)

	now := time.Now()
	cmd := twin.Command{V: 1, ID: "lobby-c1", Type: twin.CmdOpen, Compartment: 2, IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
	data, err := twin.EncodeCommand(&cmd)
	require.NoError(t, err)
	require.NoError(t, b.Publish(twin.CabinetTopic("lobby", "a1", twin.ChanCmd), data, false, time.Minute))
	ack := nextEvent()
	require.Equal(t, twin.EvtAck, ack.Type)
	require.Equal(t, "lobby-c1", ack.Command)
	opened := nextEvent()
	require.Equal(t, twin.EvtDoorOpened, opened.Type)
	require.Equal(t, 2, opened.Compartment)
	r.Do(func(c *twin.Cabinet) {
		require.NoError(t, c.Place(2))
		require.NoError(t, c.Close(2))
	})
	closed := nextEvent()
	require.Equal(t, twin.EvtDoorClosed, closed.Type)
	require.True(t, *closed.Occupied)
	require.Equal(t, ack.Seq+2, closed.Seq)

	// Garbage on the command topic is ignored, not executed.
	require.NoError(t, b.Publish(twin.CabinetTopic("lobby", "a1", twin.ChanCmd), []byte(`{"v":1,"type":"open"}`), false, time.Minute))
	require.Eventually(t, func() bool { return r.Stats().CommandsInvalid == 1 }, wait, 10*time.Millisecond)

	// A dropped connection: the broker publishes the will, autopaho comes
	// back. If the reconnect takes the old session over before the broker
	// noticed it die, the old will is stale and not delivered at all.
	r.Drop()
	first := string(next(twin.ChanStatus).payload)
	if first == twin.StatusOffline {
		first = string(next(twin.ChanStatus).payload)
	}
	require.Equal(t, twin.StatusOnline, first, "the last word after a reconnect is online")
	require.GreaterOrEqual(t, r.Stats().Connections, int64(2))

	require.NoError(t, r.Close(context.Background()))
	require.Equal(t, twin.StatusOffline, string(next(twin.ChanStatus).payload))
}

func TestStartFailsWithWrongCredentials(t *testing.T) {
	creds := broker.NewCredentials()
	_, _, err := creds.AddCabinet("lobby", "a1")
	require.NoError(t, err)
	b, err := broker.New(broker.Config{Credentials: creds})
	require.NoError(t, err)
	require.NoError(t, b.Start())
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err = Start(ctx, Config{Broker: "mqtt://" + b.Addr(), Site: "lobby", Cabinet: "a1", Secret: "not-the-secret-at-all"},
		twin.CabinetConfig{Compartments: make([]twin.CompartmentSpec, 1)}, streams, nil)
	require.ErrorContains(t, err, "did not connect")
	require.ErrorContains(t, err, "the last attempt:", "says why, not only that time ran out")
	_, err = Start(context.Background(), Config{Broker: "::bad url", Site: "lobby", Cabinet: "a1"},
		twin.CabinetConfig{Compartments: make([]twin.CompartmentSpec, 1)}, streams, nil)
	require.Error(t, err)
}

func TestParseBroker(t *testing.T) {
	tests := []struct{ url, want string }{
		{"mqtt://127.0.0.1:1883", ""},
		{"tcp://broker:1883", ""},
		{"ws://127.0.0.1:8083/mqtt", ""},
		{"WSS://broker.example.org/mqtt", ""},
		{"tls://broker:8883", ""},
		{"tcp//x", "want mqtt://"},
		{"127.0.0.1:1883", "want mqtt://"},
		{"http://broker:1883", "want mqtt://"},
		{"mqtt://", "names no host"},
		{"::bad url", "broker URL"},
	}
	for _, tt := range tests {
		_, err := ParseBroker(tt.url)
		if tt.want == "" {
			require.NoError(t, err, tt.url)
			continue
		}
		require.ErrorContains(t, err, tt.want, tt.url)
	}
}
