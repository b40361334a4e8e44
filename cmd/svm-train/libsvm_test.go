package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/blockllm/blockllm-go/blockllm/svm"
	"github.com/stretchr/testify/require"
)

// These tests run Debian's LIBSVM 3.24 tools (libsvm-tools) next to this
// svm-train on the same files and flags, and compare what both print, the
// models they write and what LIBSVM's svm-predict does with either model.
// Flag values are exact in single precision: Debian's svm-train reads -g,
// -r, -n, -c, -p and -w in single precision, LIBSVM's source (and this
// command) in double.

func libsvmTools(t *testing.T) (train, predict string) {
	t.Helper()
	tr, err1 := exec.LookPath("svm-train")
	pr, err2 := exec.LookPath("svm-predict")
	if err1 != nil || err2 != nil {
		t.Skip("LIBSVM's svm-train/svm-predict not installed (apt-get install libsvm-tools): skipping the comparison")
	}
	return tr, pr
}

// genData writes the test's generated data sets into dir: "reg", a
// regression set (150 rows, 4 features, y = sin(2 x1) + x2/2 - x3 x4 +
// noise), "pre", heart_scale's first 60 rows as a precomputed linear kernel
// ("0:i 1:K(x_i,x_1) ..."), "preg", the same for the first 60 rows of reg,
// and "ties", a set of duplicated rows with binary features (many exact ties
// in the gradient).
func genData(t *testing.T, dir string) {
	t.Helper()
	r := rand.New(rand.NewPCG(5, 6))
	var reg bytes.Buffer
	var regRows [][]float64
	var regY []float64
	for i := 0; i < 150; i++ {
		x := make([]float64, 4)
		for k := range x {
			x[k] = roundSig(2*r.Float64()-1, 6)
		}
		y := roundSig(math.Sin(2*x[0])+0.5*x[1]-x[2]*x[3]+0.1*r.NormFloat64(), 6)
		regRows, regY = append(regRows, x), append(regY, y)
		fmt.Fprintf(&reg, "%s", g6(y))
		for k, v := range x {
			fmt.Fprintf(&reg, " %d:%s", k+1, g6(v))
		}
		reg.WriteString("\n")
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "reg"), reg.Bytes(), 0o644))

	h, err := svm.ReadDatasetFile(td + "heart_scale")
	require.NoError(t, err)
	dense := func(row []svm.Node, n int) []float64 {
		v := make([]float64, n)
		for _, e := range row {
			v[e.Index-1] = e.Value
		}
		return v
	}
	writePre := func(name string, X [][]float64, Y []float64) {
		var b bytes.Buffer
		for i := range X {
			fmt.Fprintf(&b, "%s 0:%d", g6(Y[i]), i+1)
			for j := range X {
				s := 0.0
				for k := range X[i] {
					s += X[i][k] * X[j][k]
				}
				fmt.Fprintf(&b, " %d:%s", j+1, strconv.FormatFloat(s, 'g', 17, 64))
			}
			b.WriteString("\n")
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644))
	}
	var hx [][]float64
	for i := 0; i < 60; i++ {
		hx = append(hx, dense(h.X[i], h.MaxIndex))
	}
	writePre("pre", hx, h.Y[:60])
	writePre("preg", regRows[:60], regY[:60])

	var ties bytes.Buffer
	for i := 0; i < 60; i++ {
		x := make([]int, 6)
		s := 0
		for k := range x {
			x[k] = r.IntN(2)
			s += x[k]
		}
		lab := 1
		if s < 3 || r.IntN(8) == 0 {
			lab = -1
		}
		for rep := 0; rep < 2; rep++ {
			fmt.Fprintf(&ties, "%d", lab)
			for k, v := range x {
				if v != 0 {
					fmt.Fprintf(&ties, " %d:%d", k+1, v)
				}
			}
			ties.WriteString("\n")
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ties"), ties.Bytes(), 0o644))
}

func roundSig(v float64, n int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', n, 64), 64)
	return f
}

func g6(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// runSummary is what svm-train prints for one solver run.
type runSummary struct {
	iter       int
	named      map[string]float64 // nu, C, epsilon, obj, rho
	nSV, nBSV  int
	totalSV    int
	cv         string
	probSigma  string
	linesCount int
}

var (
	reIter  = regexp.MustCompile(`^optimization finished, #iter = (\d+)$`)
	reNamed = regexp.MustCompile(`^(nu|C|epsilon) = (\S+)$`)
	reObj   = regexp.MustCompile(`^obj = (\S+), rho = (\S+)$`)
	reSV    = regexp.MustCompile(`^nSV = (\d+), nBSV = (\d+)$`)
	reTotal = regexp.MustCompile(`^Total nSV = (\d+)$`)
)

// parseSummaries splits svm-train's output into its solver runs.
func parseSummaries(t *testing.T, out string) ([]runSummary, []string) {
	t.Helper()
	var runs []runSummary
	var other []string
	sc := bufio.NewScanner(strings.NewReader(out))
	cur := func() *runSummary { return &runs[len(runs)-1] }
	for sc.Scan() {
		line := strings.TrimLeft(sc.Text(), ".*")
		if m := reIter.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			runs = append(runs, runSummary{iter: n, named: map[string]float64{}})
			continue
		}
		num := func(s string) float64 {
			v, err := strconv.ParseFloat(s, 64)
			require.NoError(t, err, line)
			return v
		}
		switch {
		case reNamed.MatchString(line) && len(runs) > 0:
			m := reNamed.FindStringSubmatch(line)
			cur().named[m[1]] = num(m[2])
		case reObj.MatchString(line) && len(runs) > 0:
			m := reObj.FindStringSubmatch(line)
			cur().named["obj"] = num(m[1])
			cur().named["rho"] = num(m[2])
		case reSV.MatchString(line) && len(runs) > 0:
			m := reSV.FindStringSubmatch(line)
			cur().nSV, _ = strconv.Atoi(m[1])
			cur().nBSV, _ = strconv.Atoi(m[2])
		case reTotal.MatchString(line) && len(runs) > 0:
			cur().totalSV, _ = strconv.Atoi(reTotal.FindStringSubmatch(line)[1])
		case strings.TrimSpace(line) != "":
			other = append(other, line)
		}
	}
	return runs, other
}

// near reports whether printed values agree to 1e-6 relative (or to the 6
// printed decimals).
func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-6*math.Max(math.Abs(b), 1)
}

type libsvmCase struct {
	args []string // flags
	data string   // file (in testdata or the generated dir)
	test string   // file to predict ("" = data)
}

// compareTrain runs both trainers and checks summaries, model files and
// predictions both ways.
func compareTrain(t *testing.T, ltrain, lpredict, dir string, c libsvmCase) {
	t.Helper()
	name := strings.Join(append(append([]string{}, c.args...), filepath.Base(c.data)), " ")
	lm, gm := filepath.Join(dir, "l.model"), filepath.Join(dir, "g.model")
	os.Remove(lm)
	os.Remove(gm)
	lout := runTool(t, ltrain, append(append([]string{}, c.args...), c.data, lm)...)
	var gout bytes.Buffer
	require.NoError(t, run(append(append([]string{}, c.args...), c.data, gm), &gout, io.Discard), name)

	lruns, lother := parseSummaries(t, lout)
	gruns, gother := parseSummaries(t, gout.String())
	require.NotEmpty(t, lruns, name)
	require.Len(t, gruns, len(lruns), name)
	for k := range lruns {
		l, g := lruns[k], gruns[k]
		require.Equal(t, l.iter, g.iter, "%s: run %d iterations", name, k)
		require.Equal(t, l.nSV, g.nSV, "%s: run %d nSV", name, k)
		require.Equal(t, l.nBSV, g.nBSV, "%s: run %d nBSV", name, k)
		require.Equal(t, l.totalSV, g.totalSV, "%s: run %d total nSV", name, k)
		require.Equal(t, len(l.named), len(g.named), "%s: run %d values %v %v", name, k, l.named, g.named)
		for key, lv := range l.named {
			require.True(t, near(g.named[key], lv), "%s: run %d %s = %v, LIBSVM %v", name, k, key, g.named[key], lv)
		}
	}
	require.Equal(t, lother, gother, name)

	lmod, err := svm.ReadModelFile(lm)
	require.NoError(t, err, name)
	gmod, err := svm.ReadModelFile(gm)
	require.NoError(t, err, name)
	compareModels(t, name, lmod, gmod)
	lb, _ := os.ReadFile(lm)
	gb, _ := os.ReadFile(gm)
	if !bytes.Equal(lb, gb) {
		t.Logf("%s: model files equal to 1e-6 but not byte for byte", name)
	}

	// LIBSVM's svm-predict on both models: the same output.
	test := c.test
	if test == "" {
		test = c.data
	}
	var flags [][]string
	flags = append(flags, nil)
	if lmod.HasProbability() {
		flags = append(flags, []string{"-b", "1"})
	}
	for _, f := range flags {
		lp, gp := filepath.Join(dir, "l.pred"), filepath.Join(dir, "g.pred")
		o1 := runTool(t, lpredict, append(append([]string{}, f...), test, lm, lp)...)
		o2 := runTool(t, lpredict, append(append([]string{}, f...), test, gm, gp)...)
		p1, _ := os.ReadFile(lp)
		p2, _ := os.ReadFile(gp)
		if lmod.Type.Regression() {
			// Values to 17 digits: the C library's exp may differ from
			// Go's in the last bit.
			requireNearLines(t, name, string(p1), string(p2), 1e-12)
		} else {
			require.Equal(t, string(p1), string(p2), "%s %v: LIBSVM's predictions with either model", name, f)
			require.Equal(t, o1, o2, name)
		}
		// This package's prediction with LIBSVM's model agrees with
		// LIBSVM's svm-predict.
		d, err := svm.ReadDatasetFile(test)
		require.NoError(t, err)
		prob := len(f) > 0 && lmod.Type.Classification()
		pred, probs := lmod.PredictAll(d.X, 2, prob)
		var b strings.Builder
		if prob {
			b.WriteString("labels")
			for _, l := range lmod.Label {
				fmt.Fprintf(&b, " %d", l)
			}
			b.WriteString("\n")
		}
		for i, v := range pred {
			if prob {
				b.WriteString(g6(v))
				for _, q := range probs[i] {
					b.WriteString(" " + g6(q))
				}
				b.WriteString("\n")
			} else {
				b.WriteString(strconv.FormatFloat(v, 'g', 17, 64) + "\n")
			}
		}
		if lmod.Type.Regression() {
			requireNearLines(t, name, string(p1), b.String(), 1e-12)
		} else {
			require.Equal(t, string(p1), b.String(), "%s %v: predictions with LIBSVM's model", name, f)
		}
	}
}

func compareModels(t *testing.T, name string, l, g *svm.Model) {
	t.Helper()
	require.Equal(t, l.Type, g.Type, name)
	require.Equal(t, l.Kernel, g.Kernel, name)
	require.Equal(t, l.NrClass, g.NrClass, name)
	require.Equal(t, l.Label, g.Label, name)
	require.Equal(t, l.NSV, g.NSV, name)
	require.Equal(t, l.TotalSV(), g.TotalSV(), name)
	nearSlice := func(what string, a, b []float64, tol float64) {
		require.Len(t, b, len(a), "%s %s", name, what)
		for i := range a {
			require.True(t, math.Abs(a[i]-b[i]) <= tol*math.Max(math.Abs(a[i]), 1e-3),
				"%s %s[%d]: LIBSVM %v, here %v", name, what, i, a[i], b[i])
		}
	}
	nearSlice("rho", l.Rho, g.Rho, 1e-6)
	nearSlice("probA", l.ProbA, g.ProbA, 1e-6)
	nearSlice("probB", l.ProbB, g.ProbB, 1e-6)
	for k := range l.SVCoef {
		nearSlice("sv_coef", l.SVCoef[k], g.SVCoef[k], 1e-6)
	}
	require.Equal(t, l.SV, g.SV, name)
}

func requireNearLines(t *testing.T, name, a, b string, tol float64) {
	t.Helper()
	la, lb := strings.Fields(a), strings.Fields(b)
	require.Len(t, lb, len(la), name)
	for i := range la {
		x, err1 := strconv.ParseFloat(la[i], 64)
		y, err2 := strconv.ParseFloat(lb[i], 64)
		require.NoError(t, err1)
		require.NoError(t, err2)
		require.True(t, math.Abs(x-y) <= tol*math.Max(math.Abs(x), 1e-300), "%s: value %d: %v vs %v", name, i, x, y)
	}
}

func runTool(t *testing.T, tool string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(tool, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), "%s %v: %s", tool, args, errb.String())
	return out.String()
}

// Every problem type with every kernel, and the other flags, against
// LIBSVM's svm-train and svm-predict.
func TestTrainMatchesLIBSVMTools(t *testing.T) {
	ltrain, lpredict := libsvmTools(t)
	dir := t.TempDir()
	genData(t, dir)
	heartFile := td + "heart_scale"
	synth := td + "synth3"
	reg := filepath.Join(dir, "reg")
	var cases []libsvmCase
	for s := 0; s <= 4; s++ {
		data := heartFile
		if s >= 3 {
			data = reg
		}
		for k := 0; k <= 3; k++ {
			cases = append(cases, libsvmCase{args: []string{"-s", strconv.Itoa(s), "-t", strconv.Itoa(k)}, data: data})
		}
		pre := filepath.Join(dir, "pre")
		if s >= 3 {
			pre = filepath.Join(dir, "preg")
		}
		cases = append(cases, libsvmCase{args: []string{"-s", strconv.Itoa(s), "-t", "4"}, data: pre})
	}
	cases = append(cases,
		libsvmCase{args: []string{"-s", "2"}, data: reg},
		libsvmCase{args: []string{"-s", "3"}, data: heartFile},
		libsvmCase{args: []string{"-s", "0", "-c", "4", "-g", "0.5", "-h", "0"}, data: synth},
		libsvmCase{args: []string{"-s", "0", "-t", "1", "-d", "2", "-r", "0.5", "-c", "2"}, data: synth},
		libsvmCase{args: []string{"-s", "0", "-c", "8", "-w1", "2", "-w5", "0.5", "-e", "0.0001"}, data: synth},
		libsvmCase{args: []string{"-s", "1", "-n", "0.25", "-h", "0"}, data: synth},
		libsvmCase{args: []string{"-s", "2", "-n", "0.125", "-g", "2"}, data: synth},
		libsvmCase{args: []string{"-s", "3", "-c", "4", "-p", "0.25", "-e", "0.0001", "-m", "0.5"}, data: reg},
		libsvmCase{args: []string{"-s", "4", "-n", "0.75", "-c", "2", "-h", "0"}, data: reg},
		libsvmCase{args: []string{"-s", "0", "-b", "1"}, data: heartFile},
		libsvmCase{args: []string{"-s", "1", "-b", "1"}, data: synth},
		libsvmCase{args: []string{"-s", "3", "-b", "1"}, data: reg},
		libsvmCase{args: []string{"-s", "4", "-b", "1", "-t", "1"}, data: reg},
		libsvmCase{args: []string{"-s", "0", "-t", "0", "-c", "2"}, data: filepath.Join(dir, "ties")},
		libsvmCase{args: []string{"-s", "0", "-h", "0"}, data: filepath.Join(dir, "ties")},
	)
	for _, c := range cases {
		compareTrain(t, ltrain, lpredict, dir, c)
	}
}

// Cross-validation uses LIBSVM's folds (its rand() stream): the same
// accuracy, or mean squared error and squared correlation, and the same
// per-fold summaries.
func TestCrossValidationMatchesLIBSVMTools(t *testing.T) {
	ltrain, _ := libsvmTools(t)
	dir := t.TempDir()
	genData(t, dir)
	reg := filepath.Join(dir, "reg")
	cases := [][]string{
		{"-s", "0", "-v", "5", td + "heart_scale"},
		{"-s", "1", "-v", "4", td + "synth3"},
		{"-s", "2", "-v", "5", td + "heart_scale"},
		{"-s", "3", "-v", "5", reg},
		{"-s", "4", "-v", "3", "-t", "0", reg},
		{"-s", "0", "-v", "3", "-b", "1", td + "synth3"},
		{"-s", "3", "-v", "2", "-b", "1", reg},
	}
	for _, c := range cases {
		name := strings.Join(c, " ")
		lout := runTool(t, ltrain, c...)
		var gout bytes.Buffer
		require.NoError(t, run(c, &gout, io.Discard), name)
		lruns, lother := parseSummaries(t, lout)
		gruns, gother := parseSummaries(t, gout.String())
		require.Len(t, gruns, len(lruns), name)
		for k := range lruns {
			require.Equal(t, lruns[k].iter, gruns[k].iter, "%s: run %d", name, k)
			require.Equal(t, lruns[k].nSV, gruns[k].nSV, "%s: run %d", name, k)
			for key, lv := range lruns[k].named {
				require.True(t, near(gruns[k].named[key], lv), "%s: run %d %s", name, k, key)
			}
		}
		require.Equal(t, lother, gother, name)
		require.Contains(t, strings.Join(gother, "\n"), "Cross Validation", name)
	}
}
