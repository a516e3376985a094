package runner_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/lockertwin/lockertwin/sim/report"
	. "github.com/lockertwin/lockertwin/sim/runner"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden KPI files")

// TestGoldenKPIs runs every shipped scenario (but the 2,000-cabinet city,
// which has its own benchmark) with every registered allocator policy, on a
// fixed seed and a one-week horizon, and compares all KPIs with
// testdata/golden. An allocator or controller change that moves any figure
// shows here; refresh deliberately with -update and review the diff.
func TestGoldenKPIs(t *testing.T) {
	for _, name := range scenarios.Shipped() {
		if name == "city-network.yaml" {
			continue
		}
		for _, policy := range allocator.Names() {
			t.Run(strings.TrimSuffix(name, ".yaml")+"/"+policy, func(t *testing.T) {
				sc, _, err := scenarios.LoadShipped(name)
				require.NoError(t, err)
				sc.Duration = scenarios.Duration(7 * 24 * time.Hour)
				sc.Replications = 1
				out, err := Run(sc, Options{Policy: policy})
				require.NoError(t, err)
				s := report.NewSummary(out)
				s.Engine = report.Engine{}
				got, err := json.MarshalIndent(s, "", "  ")
				require.NoError(t, err)
				file := filepath.Join("testdata", "golden", strings.TrimSuffix(name, ".yaml")+"."+policy+".json")
				if *update {
					require.NoError(t, os.WriteFile(file, append(got, '\n'), 0o644))
				}
				want, err := os.ReadFile(file)
				require.NoError(t, err, "run go test ./sim/runner -run Golden -update to create it")
				require.JSONEq(t, string(want), string(got))
			})
		}
	}
}
