//go:build linux && !android

package guard

import (
	"syscall"

	"github.com/lockertwin/lockertwin/visualize/cmd/lockerview/internal/display"
)

const help = `. The desktop view needs one:
  - run it in a desktop session;
  - or under a virtual display: xvfb-run -a lockerview -screenshot view.png ...;
  - or use the browser view: make view-web, then lockerd -view bin/view.
`

func init() {
	d, _ := syscall.Getenv("DISPLAY")
	if p := display.Problem(d); p != "" {
		syscall.Write(2, []byte("lockerview: "+p+help))
		syscall.Exit(1)
	}
}
