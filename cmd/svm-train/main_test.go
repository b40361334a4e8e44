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

const (
	td    = "../../testdata/svm/"
	heart = td + "heart_scale"
)

func TestTrainHeartScaleLikeLIBSVM(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m")
	var out bytes.Buffer
	require.NoError(t, run([]string{heart, model}, &out, io.Discard))
	// LIBSVM 3.24 prints exactly these summary lines for heart_scale.
	for _, want := range []string{"optimization finished, #iter = 162\n", "nu = 0.431029\n",
		"obj = -100.877288, rho = 0.424462\n", "nSV = 132, nBSV = 107\n", "Total nSV = 132\n"} {
		require.Contains(t, out.String(), want)
	}
	got, err := os.ReadFile(model)
	require.NoError(t, err)
	want, err := os.ReadFile("../../testdata/svm/heart_scale.libsvm.model")
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}

func TestTrainFlags(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	model := filepath.Join(dir, "m")
	require.NoError(t, run([]string{"-t", "1", "-d", "2", "-g", "0.5", "-r", "1", "-c", "3", "-e", "0.001", "-m", "10", "-h", "0", "-threads", "2", heart, model}, &out, io.Discard))
	// LIBSVM 3.24 with the same flags: #iter = 4457, obj = -129.414651, rho = -2.809615.
	require.Contains(t, out.String(), "optimization finished, #iter = 4457\n")
	require.Contains(t, out.String(), "obj = -129.414651, rho = -2.809615")
	out.Reset()
	require.NoError(t, run([]string{"-q", "-c", "10", "-w1", "2", "-w-1", "0.5", heart, model}, &out, io.Discard))
	require.Empty(t, out.String())
	b, err := os.ReadFile(model)
	require.NoError(t, err)
	require.Contains(t, string(b), "rho 0.6316")
	out.Reset()
	require.NoError(t, run([]string{"-v", "5", heart}, &out, io.Discard))
	require.Contains(t, out.String(), "Cross Validation Accuracy = ")
	out.Reset()
	require.NoError(t, run([]string{"-rule", "gs1", "-q", heart, model}, &out, io.Discard))
	out.Reset()
	require.NoError(t, run([]string{"-rule", "mvp", heart, model}, &out, io.Discard))
	require.Contains(t, out.String(), "obj = -100.87")
}

func TestTrainDefaultModelName(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(heart)
	require.NoError(t, err)
	in := filepath.Join(dir, "hs")
	require.NoError(t, os.WriteFile(in, src, 0o644))
	wd, _ := os.Getwd()
	require.NoError(t, os.Chdir(dir))
	defer os.Chdir(wd)
	require.NoError(t, run([]string{"-q", in}, &bytes.Buffer{}, io.Discard))
	_, err = os.Stat(filepath.Join(dir, "hs.model"))
	require.NoError(t, err)
}

func TestTrainErrors(t *testing.T) {
	cases := map[string][]string{
		"no file":    {},
		"svm type":   {"-s", "5", heart},
		"kernel":     {"-t", "5", heart},
		"bad number": {"-c", "x", heart},
		"unknown":    {"-z", "1", heart},
		"rule":       {"-rule", "foo", heart},
		"missing":    {"/nonexistent/file"},
		"cost":       {"-c", "-1", heart},
		"value":      {"-c"},
	}
	// LIBSVM's svm_check_parameter: -b and -h take 0 or 1 only
	for _, c := range [][2]string{{"-b", "probability != 0 and probability != 1"}, {"-h", "shrinking != 0 and shrinking != 1"}} {
		require.EqualError(t, run([]string{c[0], "2", heart, filepath.Join(t.TempDir(), "m")}, &bytes.Buffer{}, io.Discard), c[1])
	}
	for name, args := range cases {
		err := run(args, &bytes.Buffer{}, io.Discard)
		require.Error(t, err, name)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.WriteFile(bad, []byte("1 1:1\n1 2:1 1:3\n"), 0o644))
	err := run([]string{bad, filepath.Join(dir, "m")}, &bytes.Buffer{}, io.Discard)
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), bad+":2"), err.Error())
}
