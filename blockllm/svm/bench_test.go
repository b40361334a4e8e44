package svm

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A small comparison: every rule, step and shrinking setting on a
// synthetic bounded problem and heart_scale, with traces that start at the
// initial objective and end at the run's, and f* below every run.
func TestRunComparisonSmall(t *testing.T) {
	var seen int
	res, err := RunComparison(CompareOptions{Files: []string{filepath.Join(testdata, "heart_scale")}, N: 80,
		TimeLimit: 10 * time.Second, Progress: func(string, RuleRun) { seen++ }})
	require.NoError(t, err)
	require.Len(t, res, 2)
	require.Equal(t, "bounded n=80", res[0].Name)
	require.Equal(t, "heart_scale l=270", res[1].Name)
	require.Equal(t, 40, seen)
	for _, p := range res {
		require.Len(t, p.Runs, 5*2*2)
		for _, r := range p.Runs {
			require.Equal(t, Converged, r.Status, "%s %v", p.Name, r.Rule)
			require.GreaterOrEqual(t, r.Obj, p.FStar)
			require.LessOrEqual(t, r.Obj-p.FStar, 1e-3*(1+abs(p.FStar)), "%s %v %v", p.Name, r.Rule, r.Step)
			require.Equal(t, r.Iterations, r.Trace[len(r.Trace)-1].Iter)
			require.InDelta(t, r.Obj, r.Trace[len(r.Trace)-1].F, 1e-9*(1+abs(r.Obj)))
			require.Greater(t, r.KernelEvals, int64(0))
		}
	}
	_, err = RunComparison(CompareOptions{Files: []string{filepath.Join(testdata, "missing_set")}, N: -1})
	require.Error(t, err)
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// TestRunComparisonFull runs the comparison on the full LIBSVM data sets in
// $BLOCKLLM_SVM_DATA (a8a, w8a, a9a.t) when BLOCKLLM_SVM_COMPARE=1; `go run
// ./cmd/bench svm --data DIR` prints the same as a table with plots.
func TestRunComparisonFull(t *testing.T) {
	dir := os.Getenv("BLOCKLLM_SVM_DATA")
	if dir == "" || os.Getenv("BLOCKLLM_SVM_COMPARE") == "" {
		t.Skip("set BLOCKLLM_SVM_DATA=<dir> and BLOCKLLM_SVM_COMPARE=1 to run the full rule comparison")
	}
	var files []string
	for _, s := range []string{"a8a", "w8a", "a9a.t"} {
		files = append(files, filepath.Join(dir, s))
	}
	res, err := RunComparison(CompareOptions{Files: files, Progress: func(p string, r RuleRun) {
		t.Logf("%s %v %v shrink=%v: %d iterations, %d kernel evaluations, %v, %v", p, r.Rule, r.Step, r.Shrinking, r.Iterations, r.KernelEvals, r.Time, r.Status)
	}})
	require.NoError(t, err)
	require.Len(t, res, 4)
}
