package svm

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRunComparisonSmall(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := RunComparison(&out, CompareOptions{DataDir: testdata, Sets: []string{"heart_scale", "missing_set"}, N: 60,
		MaxIter: 3000, TimeLimit: 5 * time.Second, OutDir: dir, Gaps: []float64{1e-1, 1e-3}})
	require.NoError(t, err)
	s := out.String()
	require.Contains(t, s, "skipping missing_set")
	for _, want := range []string{"gs1", "mvp", "gsq", "wss2", "random", "sum-only n=60", "bounded n=60", "svm heart_scale l=270", "fixed", "exact"} {
		require.Contains(t, s, want)
	}
	pngs, err := filepath.Glob(filepath.Join(dir, "*.png"))
	require.NoError(t, err)
	require.Len(t, pngs, 6)
	b, err := os.ReadFile(pngs[0])
	require.NoError(t, err)
	require.Equal(t, "\x89PNG", string(b[:4]))
	t.Log("\n" + s)
}

// TestRunComparisonFull runs the full comparison (synthetic problems and the
// SVM duals of heart_scale and the first 5000 rows of a8a) when
// BLOCKLLM_SVM_COMPARE_OUT names a directory for the plots; the table goes to
// the test log. The integrator's `cmd/bench svm` calls RunComparison directly.
func TestRunComparisonFull(t *testing.T) {
	out := os.Getenv("BLOCKLLM_SVM_COMPARE_OUT")
	if out == "" {
		t.Skip("set BLOCKLLM_SVM_COMPARE_OUT=<dir> to run the full rule comparison")
	}
	require.NoError(t, os.MkdirAll(out, 0o755))
	var buf bytes.Buffer
	err := RunComparison(&buf, CompareOptions{DataDir: largeDataDir(), OutDir: out})
	t.Log("\n" + buf.String())
	require.NoError(t, err)
}
