package visualize

import (
	"context"
	"image/color"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/controller/service"
	"github.com/lockertwin/lockertwin/visualize/scene"
	"github.com/stretchr/testify/require"
)

// BuildWeb compiles the browser view into dir: lockerview.wasm, Go's
// wasm_exec.js and the page (what `make view-web` does).
func buildWeb(t *testing.T, dir string) {
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "lockerview.wasm"), "github.com/lockertwin/lockertwin/visualize/cmd/lockerview")
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	for src, dst := range map[string]string{
		filepath.Join(runtime.GOROOT(), "lib", "wasm", "wasm_exec.js"): "wasm_exec.js",
		filepath.Join("web", "index.html"):                             "index.html",
	} {
		data, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, dst), data, 0o644))
	}
}

// TestBrowserViewRenders serves the WebAssembly view from lockerd at /view/
// and screenshots it in headless Chromium (Debian's; no downloaded browser).
func TestBrowserViewRenders(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	require.NoError(t, err, "chromium is installed by `make setup`")
	web := t.TempDir()
	buildWeb(t, web)
	svc, err := service.New(service.Config{DataDir: t.TempDir(), ViewDir: web})
	require.NoError(t, err)
	require.NoError(t, svc.Start())
	defer svc.Shutdown(context.Background())
	resp, err := http.Get("http://" + svc.HTTPAddr() + "/view/lockerview.wasm")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	shot := filepath.Join(t.TempDir(), "web.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	host, port, _ := net.SplitHostPort(svc.HTTPAddr())
	url := "http://" + net.JoinHostPort(host, port) + "/view/?scenario=grocery-chilled.yaml"
	out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
		"--window-size=1280,800", "--virtual-time-budget=20000", "--screenshot="+shot, url).CombinedOutput()
	require.NoError(t, err, string(out))
	img := readPNG(t, shot)
	// The page drew the view: the side panel's colour, and the chilled marks
	// of the grocery's cabinets.
	count := func(want color.RGBA) int {
		n := 0
		for i := 0; i < len(img.Pix); i += 4 {
			if img.Pix[i] == want.R && img.Pix[i+1] == want.G && img.Pix[i+2] == want.B {
				n++
			}
		}
		return n
	}
	require.Greater(t, count(color.RGBA{236, 236, 230, 255}), 100_000, "the side panel is drawn")
	require.Greater(t, count(scene.ColorChilled), 200, "chilled compartments are drawn")

	// A scenario the page does not have: the visitor reads why in the page,
	// not a black canvas (the console is not where they look).
	bad := "http://" + net.JoinHostPort(host, port) + "/view/?scenario=nope.yaml"
	dom, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=10000", "--dump-dom", bad).Output()
	require.NoError(t, err)
	require.Contains(t, string(dom), `no shipped scenario "nope.yaml" (shipped: bopis-store.yaml, city-network.yaml`)
}
