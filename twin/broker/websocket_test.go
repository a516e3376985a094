package broker

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// dialWS opens an MQTT-over-WebSocket connection as a byte stream.
func dialWS(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: waitFor}
	c, resp, err := d.Dial("ws://"+addr+"/mqtt", nil)
	require.NoError(t, err)
	require.Equal(t, "mqtt", resp.Header.Get("Sec-WebSocket-Protocol"))
	return &wsConn{Conn: c.NetConn(), c: c}
}

func connectWS(t *testing.T, addr, user, pass string) (*paho.Client, *paho.Connack, error) {
	t.Helper()
	conn := dialWS(t, addr)
	t.Cleanup(func() { conn.Close() })
	c := paho.NewClient(paho.ClientConfig{ClientID: user, Conn: conn})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ack, err := c.Connect(ctx, &paho.Connect{ClientID: user, KeepAlive: 30, CleanStart: true,
		Username: user, UsernameFlag: true, Password: []byte(pass), PasswordFlag: true})
	return c, ack, err
}

func newWSFixture(t *testing.T) (*Broker, *observer, string) {
	creds := NewCredentials()
	_, secret, err := creds.AddCabinet("lobby", "a1")
	require.NoError(t, err)
	_, _, err = creds.AddCabinet("lobby", "a2")
	require.NoError(t, err)
	b, err := New(Config{TCPAddr: "127.0.0.1:0", WSAddr: "127.0.0.1:0", Credentials: creds})
	require.NoError(t, err)
	require.NoError(t, b.Start())
	t.Cleanup(func() { b.Close() })
	return b, watch(t, b), secret
}

func TestWebSocketListenerAppliesTheSameACL(t *testing.T) {
	b, obs, secret := newWSFixture(t)
	_, port, err := net.SplitHostPort(b.WSAddr())
	require.NoError(t, err)
	require.NotEqual(t, "0", port, "WSAddr reports the bound port")

	_, ack, err := connectWS(t, b.WSAddr(), "lobby.a1", "wrong")
	require.Error(t, err)
	if ack != nil {
		require.NotZero(t, ack.ReasonCode, "a wrong password is refused over WebSocket too")
	}

	c, ack, err := connectWS(t, b.WSAddr(), "lobby.a1", secret)
	require.NoError(t, err)
	require.Zero(t, ack.ReasonCode)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err = c.Publish(ctx, &paho.Publish{Topic: aEvt, Payload: []byte("own"), QoS: 1})
	require.NoError(t, err)
	obs.until(t, aEvt, "own")

	resp, _ := c.Publish(ctx, &paho.Publish{Topic: bEvt, Payload: []byte("forged"), QoS: 1})
	require.NotNil(t, resp)
	require.GreaterOrEqual(t, resp.ReasonCode, byte(0x80), "another cabinet's topic is refused")
	sub, _ := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "lockers/#", QoS: 1}}})
	require.NotNil(t, sub)
	require.GreaterOrEqual(t, sub.Reasons[0], byte(0x80), "wildcards are refused")
	require.False(t, obs.saw(bEvt, "forged"))
}

func TestWebSocketListenerRefusesWhatIsNotMQTT(t *testing.T) {
	b, _, _ := newWSFixture(t)

	resp, err := http.Get("http://" + b.WSAddr() + "/mqtt")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "a plain HTTP request is not upgraded")

	d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: waitFor}
	c, _, err := d.Dial("ws://"+b.WSAddr()+"/mqtt", nil)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("CONNECT please")))
	_, _, err = c.ReadMessage()
	require.Error(t, err, "a text frame ends the connection")
}

func TestWebSocketAddressInUseFailsNew(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	_, err = New(Config{TCPAddr: "127.0.0.1:0", WSAddr: busy.Addr().String(), Credentials: NewCredentials()})
	require.ErrorContains(t, err, "websocket on "+busy.Addr().String())
}

// TestWebSocketConnKeepsPacketsWhole: paho.golang writes a packet as
// several Writes, from more than one goroutine at once (its pinger beside a
// publish). wsConn is a sync.Locker, which paho holds across one packet's
// Writes, so the packets arrive whole and in one piece each. (Without it a
// PINGREQ landed inside a PUBLISH in about 1 run in 150 of the ACL test
// above, which then missed its "own" message.)
func TestWebSocketConnKeepsPacketsWhole(t *testing.T) {
	const n = 2000
	got := make(chan *packets.ControlPacket, 2*n)
	ended := make(chan error, 1)
	up := websocket.Upgrader{Subprotocols: []string{"mqtt"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			ended <- err
			return
		}
		defer c.Close()
		conn := &wsConn{Conn: c.NetConn(), c: c}
		for {
			cp, err := packets.ReadPacket(conn)
			if err != nil {
				ended <- err
				return
			}
			got <- cp
		}
	}))
	defer srv.Close()
	conn := dialWS(t, strings.TrimPrefix(srv.URL, "http://"))
	defer conn.Close()

	var wg sync.WaitGroup
	wg.Add(2)
	start := make(chan struct{}) // both at once
	go func() {                  // a publisher
		defer wg.Done()
		<-start
		for i := range n {
			cp := packets.NewControlPacket(packets.PUBLISH)
			pub := cp.Content.(*packets.Publish)
			pub.Topic, pub.QoS, pub.PacketID = aEvt, 1, uint16(i+1)
			pub.Payload = []byte(fmt.Sprintf("payload %d", i))
			pub.Properties = &packets.Properties{}
			if _, err := cp.WriteTo(conn); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() { // a pinger
		defer wg.Done()
		<-start
		for range n {
			if _, err := packets.NewControlPacket(packets.PINGREQ).WriteTo(conn); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	close(start)
	wg.Wait()
	pubs, pings := 0, 0
	for pubs+pings < 2*n {
		select {
		case cp := <-got:
			switch cp.Type {
			case packets.PUBLISH:
				pub := cp.Content.(*packets.Publish)
				require.Equal(t, aEvt, pub.Topic)
				require.True(t, bytes.Equal([]byte(fmt.Sprintf("payload %d", pubs)), pub.Payload), "publish %d arrived as %q", pubs, pub.Payload)
				pubs++
			case packets.PINGREQ:
				pings++
			default:
				t.Fatalf("a %v packet arrived: none was sent", cp.Type)
			}
		case err := <-ended:
			t.Fatalf("the reader stopped after %d publishes and %d pings: %v", pubs, pings, err)
		}
	}
	require.Equal(t, n, pubs)
	require.Equal(t, n, pings)
}
