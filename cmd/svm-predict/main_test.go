package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const td = "../../testdata/svm/"

func TestPredictLIBSVMModel(t *testing.T) {
	dir := t.TempDir()
	outFile := filepath.Join(dir, "pred")
	var out bytes.Buffer
	require.NoError(t, run([]string{"-threads", "2", td + "heart_scale", td + "heart_scale.libsvm.model", outFile}, &out, io.Discard))
	// LIBSVM's svm-predict prints this line for its own model on heart_scale.
	require.Equal(t, "Accuracy = 86.6667% (234/270) (classification)\n", out.String())
	got, err := os.ReadFile(outFile)
	require.NoError(t, err)
	want, err := os.ReadFile(td + "heart_scale.libsvm.pred")
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))

	out.Reset()
	require.NoError(t, run([]string{td + "synth3", td + "synth3.libsvm.model", outFile}, &out, io.Discard))
	require.Equal(t, "Accuracy = 86.6667% (156/180) (classification)\n", out.String())
}

// With -b 1, LIBSVM's probability model gives LIBSVM's probability file.
func TestPredictProbabilitiesLikeLIBSVM(t *testing.T) {
	dir := t.TempDir()
	outFile := filepath.Join(dir, "pred")
	var out bytes.Buffer
	require.NoError(t, run([]string{"-b", "1", td + "heart_scale", td + "heart_scale.libsvm.prob.model", outFile}, &out, io.Discard))
	require.Equal(t, "Accuracy = 86.2963% (233/270) (classification)\n", out.String())
	got, err := os.ReadFile(outFile)
	require.NoError(t, err)
	want, err := os.ReadFile(td + "heart_scale.libsvm.prob.pred")
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
	out.Reset()
	require.NoError(t, run([]string{td + "heart_scale", td + "heart_scale.libsvm.prob.model", outFile}, &out, io.Discard))
	require.Contains(t, out.String(), "Model supports probability estimates, but disabled in prediction.")
}

func TestPredictErrors(t *testing.T) {
	dir := t.TempDir()
	o := filepath.Join(dir, "p")
	err := run([]string{"-b", "1", td + "heart_scale", td + "heart_scale.libsvm.model", o}, &bytes.Buffer{}, io.Discard)
	require.ErrorContains(t, err, "probabiliy")
	require.Error(t, run([]string{td + "heart_scale", td + "heart_scale.libsvm.model"}, &bytes.Buffer{}, io.Discard))
	require.Error(t, run([]string{"-x", td + "heart_scale", td + "heart_scale.libsvm.model", o}, &bytes.Buffer{}, io.Discard))
	require.Error(t, run([]string{td + "heart_scale", td + "nonexistent.model", o}, &bytes.Buffer{}, io.Discard))
	bad := filepath.Join(dir, "bad.model")
	require.NoError(t, os.WriteFile(bad, []byte("svm_type c_svc\nkernel_type rbf\nnr_class 2\ntotal_sv 1\nrho 0\nlabel 1 -1\nnr_sv 1 0\nSV\nx 1:1\n"), 0o644))
	err = run([]string{td + "heart_scale", bad, o}, &bytes.Buffer{}, io.Discard)
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), bad+":9"), err.Error())
}
