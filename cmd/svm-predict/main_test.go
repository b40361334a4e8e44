package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/blockllm/blockllm-go/blockllm/svm"
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
	// a blank line in the test file is an error naming it (LIBSVM: "Wrong input format at
	// line 3"), not a line skipped so that the predictions no longer match their rows
	blank := filepath.Join(dir, "blank")
	require.NoError(t, os.WriteFile(blank, []byte("1 1:0.5\n-1 2:0.5\n\n1 3:0.5\n"), 0o644))
	err = run([]string{blank, td + "heart_scale.libsvm.model", o}, &bytes.Buffer{}, io.Discard)
	require.ErrorContains(t, err, blank+":3: empty line")
}

// writeRegression writes a small regression set (y = x1 - 2 x2 + noise).
func writeRegression(t *testing.T, path string, n int, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	for i := 0; i < n; i++ {
		x1, x2 := r.Float64()*2-1, r.Float64()*2-1
		fmt.Fprintf(&b, "%.6g 1:%.6g 2:%.6g\n", x1-2*x2+0.1*r.NormFloat64(), x1, x2)
	}
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
}

// Regression and one-class models: LIBSVM's output lines and files.
func TestPredictRegressionAndOneClass(t *testing.T) {
	dir := t.TempDir()
	train, test := filepath.Join(dir, "train"), filepath.Join(dir, "test")
	writeRegression(t, train, 80, 1)
	writeRegression(t, test, 30, 2)
	d, err := svm.ReadDatasetFile(train)
	require.NoError(t, err)
	td2, err := svm.ReadDatasetFile(test)
	require.NoError(t, err)
	p := svm.DefaultParams(d.MaxIndex)
	p.Type, p.Probability = svm.EpsilonSVR, true
	m, err := svm.Train(d, p)
	require.NoError(t, err)
	model := filepath.Join(dir, "m")
	require.NoError(t, m.Save(model))
	out := filepath.Join(dir, "out")
	var stdout bytes.Buffer
	require.NoError(t, run([]string{test, model, out}, &stdout, io.Discard))
	pred := make([]float64, td2.Len())
	var want strings.Builder
	for i, x := range td2.X {
		pred[i] = m.Predict(x)
		want.WriteString(strconv.FormatFloat(pred[i], 'g', 17, 64) + "\n")
	}
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, want.String(), string(got))
	mse, scc := svm.RegressionMetrics(pred, td2.Y)
	require.Equal(t, "Model supports probability estimates, but disabled in prediction.\n"+
		"Mean squared error = "+gfmt(mse)+" (regression)\nSquared correlation coefficient = "+gfmt(scc)+" (regression)\n", stdout.String())
	require.Less(t, mse, 0.1)
	stdout.Reset()
	require.NoError(t, run([]string{"-b", "1", test, model, out}, &stdout, io.Discard))
	sigma, ok := m.SVRProbability()
	require.True(t, ok)
	require.Contains(t, stdout.String(), "Laplace distribution e^(-|z|/sigma)/(2sigma),sigma="+gfmt(sigma)+"\n")
	got2, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, string(got), string(got2), "-b 1 predicts the same values for regression")

	p = svm.DefaultParams(d.MaxIndex)
	p.Type = svm.OneClass
	m, err = svm.Train(d, p)
	require.NoError(t, err)
	require.NoError(t, m.Save(model))
	stdout.Reset()
	require.NoError(t, run([]string{test, model, out}, &stdout, io.Discard))
	require.Contains(t, stdout.String(), "(classification)")
	lines, err := os.ReadFile(out)
	require.NoError(t, err)
	for _, l := range strings.Fields(string(lines)) {
		require.True(t, l == "1" || l == "-1", l)
	}
	require.ErrorContains(t, run([]string{"-b", "1", test, model, out}, &stdout, io.Discard), "probabiliy")
}

// Precomputed kernels: a test row must give the kernel values against the
// training rows up to the largest support-vector serial number.
func TestPredictPrecomputed(t *testing.T) {
	dir := t.TempDir()
	train := filepath.Join(dir, "pre")
	require.NoError(t, os.WriteFile(train, []byte("1 0:1 1:2 2:0.5 3:0\n-1 0:2 1:0.5 2:1 3:0.25\n1 0:3 1:0 2:0.25 3:3\n"), 0o644))
	d, err := svm.ReadDatasetFile(train)
	require.NoError(t, err)
	p := svm.DefaultParams(d.MaxIndex)
	p.Kernel.Type = svm.Precomputed
	m, err := svm.Train(d, p)
	require.NoError(t, err)
	model := filepath.Join(dir, "m")
	require.NoError(t, m.Save(model))
	b, err := os.ReadFile(model)
	require.NoError(t, err)
	require.Contains(t, string(b), "kernel_type precomputed\n")
	require.NotContains(t, string(b), "gamma")
	require.Regexp(t, `\n\S+ 0:\d \n`, string(b))
	var stdout bytes.Buffer
	require.NoError(t, run([]string{train, model, filepath.Join(dir, "o")}, &stdout, io.Discard))
	short := filepath.Join(dir, "short")
	require.NoError(t, os.WriteFile(short, []byte("1 0:1 1:2\n"), 0o644))
	err = run([]string{short, model, filepath.Join(dir, "o")}, &stdout, io.Discard)
	require.ErrorContains(t, err, short)
	require.ErrorContains(t, err, "row 1")
}

// svm-predict prints and writes what LIBSVM's svm-predict does, for models
// of every type trained by LIBSVM's svm-train.
func TestPredictMatchesLIBSVMTools(t *testing.T) {
	ltrain, err1 := exec.LookPath("svm-train")
	lpredict, err2 := exec.LookPath("svm-predict")
	if err1 != nil || err2 != nil {
		t.Skip("LIBSVM's svm-train/svm-predict not installed (apt-get install libsvm-tools): skipping the comparison")
	}
	dir := t.TempDir()
	reg := filepath.Join(dir, "reg")
	writeRegression(t, reg, 90, 3)
	cases := []struct {
		train, predict []string
		data           string
	}{
		{[]string{"-s", "1"}, nil, td + "synth3"},
		{[]string{"-s", "1", "-b", "1"}, []string{"-b", "1"}, td + "synth3"},
		{[]string{"-s", "2", "-t", "1"}, nil, td + "heart_scale"},
		{[]string{"-s", "3", "-t", "0", "-b", "1"}, []string{"-b", "1"}, reg},
		{[]string{"-s", "4", "-t", "1"}, nil, reg},
		{[]string{"-s", "3", "-t", "3", "-g", "0.25"}, nil, reg},
	}
	for _, c := range cases {
		name := strings.Join(c.train, " ")
		model := filepath.Join(dir, "m")
		cmd := exec.Command(ltrain, append(append([]string{"-q"}, c.train...), c.data, model)...)
		require.NoError(t, cmd.Run(), name)
		lo, go_ := filepath.Join(dir, "lo"), filepath.Join(dir, "go")
		var lout bytes.Buffer
		cmd = exec.Command(lpredict, append(append([]string{}, c.predict...), c.data, model, lo)...)
		cmd.Stdout = &lout
		require.NoError(t, cmd.Run(), name)
		var gout bytes.Buffer
		require.NoError(t, run(append(append([]string{}, c.predict...), c.data, model, go_), &gout, io.Discard), name)
		lb, _ := os.ReadFile(lo)
		gb, _ := os.ReadFile(go_)
		if strings.Contains(name, "-t 0") || strings.Contains(name, "-t 1") || !strings.Contains(name, "-s 3") && !strings.Contains(name, "-s 4") {
			// no exp or tanh in the values: identical to the last digit
			require.Equal(t, string(lb), string(gb), name)
			require.Equal(t, lout.String(), gout.String(), name)
		} else {
			// the C library's tanh/exp may differ from Go's in the last bit
			lf, gf := strings.Fields(string(lb)), strings.Fields(string(gb))
			require.Len(t, gf, len(lf), name)
			for i := range lf {
				a, _ := strconv.ParseFloat(lf[i], 64)
				b, _ := strconv.ParseFloat(gf[i], 64)
				require.InDelta(t, a, b, 1e-12*math.Max(1, math.Abs(a)), name)
			}
		}
	}
}
