package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// `bench svm` on small problems: a table row per rule, step and shrinking
// setting, and one PNG per problem, step and shrinking setting.
func TestBenchSVMSmall(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := svmBench([]string{"--heart=false", "--data", "../../testdata/svm", "--sets", "heart_scale,synth3", "--n", "60",
		"--time-limit", "10s", "--out", dir}, &out)
	require.NoError(t, err)
	s := out.String()
	for _, want := range []string{"gs1", "mvp", "gsq", "wss2", "random", "bounded n=60", "heart_scale l=270", "synth3 l=120", "fixed", "exact", "kernel evals"} {
		require.Contains(t, s, want)
	}
	pngs, err := filepath.Glob(filepath.Join(dir, "*.png"))
	require.NoError(t, err)
	require.Len(t, pngs, 3*2*2)
	b, err := os.ReadFile(pngs[0])
	require.NoError(t, err)
	require.Equal(t, "\x89PNG", string(b[:4]))

	require.Error(t, svmBench([]string{"--rules", "nope"}, &out))
	require.Error(t, svmBench([]string{"--steps", "big"}, &out))
	require.Error(t, svmBench([]string{"--heart=false", "--n", "-1", "--data", dir, "--sets", "missing"}, &out))
}
