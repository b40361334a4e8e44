package svm

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLargeSetsMatchLIBSVM trains a8a and w8a with LIBSVM's defaults and
// compares with Debian's LIBSVM 3.24 svm-train / svm-predict figures
// (obj and rho as printed, to 6 decimals). It reads the sets from
// $BLOCKLLM_SVM_DATA and skips when that is unset (about 20 s of CPU).
func TestLargeSetsMatchLIBSVM(t *testing.T) {
	dir := largeDataDir(t)
	refs := []struct {
		set      string
		iter     int
		obj, rho float64
		nSV      int
		test     string
		correct  int // LIBSVM svm-predict's correct count on test
	}{
		{"a8a", 5983, -8249.504120, 0.483242, 8544, "a9a.t", 13810},
		{"w8a", 3124, -2594.668855, -3.453196, 2954, "", 0},
		{"a9a.t", 4242, -5834.969118, 0.576151, 6081, "", 0},
	}
	for _, ref := range refs {
		t.Run(ref.set, func(t *testing.T) {
			path := filepath.Join(dir, ref.set)
			if _, err := os.Stat(path); err != nil {
				t.Skipf("skipping: %s not found", path)
			}
			d, err := ReadDatasetFile(path)
			require.NoError(t, err)
			p := DefaultParams(d.MaxIndex)
			p.Threads = 2
			m, err := Train(d, p)
			require.NoError(t, err)
			st := m.Stats[0]
			require.Equal(t, ref.iter, st.Iterations)
			require.InDelta(t, ref.obj, st.Obj, 1e-6, "obj %v", st.Obj)
			require.InDelta(t, ref.rho, st.Rho, 1e-6, "rho %v", st.Rho)
			require.Equal(t, ref.nSV, m.TotalSV())
			if ref.test == "" {
				return
			}
			tp := filepath.Join(dir, ref.test)
			if _, err := os.Stat(tp); err != nil {
				t.Skipf("skipping prediction: %s not found", tp)
			}
			td, err := ReadDatasetFile(tp)
			require.NoError(t, err)
			pred, _ := m.PredictAll(td.X, 2, false)
			correct := 0
			for i := range pred {
				if pred[i] == td.Y[i] {
					correct++
				}
			}
			require.Equal(t, ref.correct, correct)
		})
	}
}
