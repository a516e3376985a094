//go:build linux && !android

package display

import (
	"net"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		in, host, num string
		ok            bool
	}{
		{":0", "", "0", true},
		{":99.0", "", "99", true},
		{"unix:1", "unix", "1", true},
		{"localhost:10.0", "localhost", "10", true},
		{"[::1]:2", "[::1]", "2", true},
		{"0", "", "", false},
		{":", "", "", false},
		{":x", "", "", false},
		{":.0", "", "", false},
	}
	for _, tt := range tests {
		host, num, ok := split(tt.in)
		require.Equal(t, tt.ok, ok, tt.in)
		if ok {
			require.Equal(t, tt.host, host, tt.in)
			require.Equal(t, tt.num, num, tt.in)
		}
	}
}

func TestProblem(t *testing.T) {
	require.Contains(t, Problem(""), "DISPLAY is not set")
	require.Contains(t, Problem("nonsense"), "not of the form")
	require.Equal(t, "", Problem("far-away:0"), "a remote display is Ebiten's to reach")

	// A display number no server holds: 4243 is far above what xvfb-run -a picks
	// (and lockerview's test, which may run beside this one, uses 4242).
	_, err := os.Stat("/tmp/.X11-unix/X4243")
	require.True(t, os.IsNotExist(err), "something holds display :4243 here")
	require.Contains(t, Problem(":4243"), `no X server answers on display ":4243"`)

	// An abstract socket where an X server would listen makes the display usable.
	l, err := net.Listen("unix", "@/tmp/.X11-unix/X4243")
	require.NoError(t, err)
	defer l.Close()
	require.Equal(t, "", Problem(":4243.0"))
	require.Equal(t, "", Problem("unix:4243"))
}
