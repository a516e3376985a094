package visualize

import (
	"flag"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden screenshots")

func buildView(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "lockerview")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/lockertwin/lockertwin/visualize/cmd/lockerview").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

func readPNG(t *testing.T, path string) *image.RGBA {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	rgba := image.NewRGBA(img.Bounds())
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			rgba.Set(x, y, img.At(x, y))
		}
	}
	return rgba
}

// differing is the share of pixels differing by more than 24 in a channel.
func differing(a, b *image.RGBA) float64 {
	if a.Bounds() != b.Bounds() {
		return 1
	}
	n := 0
	for i := 0; i < len(a.Pix); i += 4 {
		for k := 0; k < 3; k++ {
			d := int(a.Pix[i+k]) - int(b.Pix[i+k])
			if d > 24 || d < -24 {
				n++
				break
			}
		}
	}
	return float64(n) / float64(len(a.Pix)/4)
}

// TestScreenshotsMatchGolden renders the view under the display the
// Makefile provides (xvfb-run) and compares with golden PNGs, with a
// tolerance: software renderers differ in the last bit of antialiasing.
// The same scenario and seed give the same frame twice.
func TestScreenshotsMatchGolden(t *testing.T) {
	if os.Getenv("DISPLAY") == "" {
		t.Fatal("no DISPLAY: run the view's tests under xvfb-run (make test does)")
	}
	bin := buildView(t)
	for _, tt := range []struct{ scenario, golden string }{
		{"residential-tower.yaml", "residential-tower.png"},
		{"grocery-chilled.yaml", "grocery-chilled.png"},
	} {
		t.Run(tt.scenario, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "shot.png")
			run := func() {
				cmd := exec.Command(bin, "-scenario", filepath.Join("..", "scenarios", tt.scenario), "-screenshot", out, "-after", "240")
				msg, err := cmd.CombinedOutput()
				require.NoError(t, err, string(msg))
			}
			run()
			first := readPNG(t, out)
			run()
			require.Zero(t, differing(first, readPNG(t, out)), "same scenario and seed, same frame")
			golden := filepath.Join("testdata", tt.golden)
			if *update {
				data, err := os.ReadFile(out)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(golden, data, 0o644))
			}
			want := readPNG(t, golden)
			require.Less(t, differing(first, want), 0.005, "more than 0.5%% of pixels differ from %s (refresh with -update after looking at it)", golden)
		})
	}
}
