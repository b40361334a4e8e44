// Command svm-predict predicts with a LIBSVM-format model (any svm_type)
// like LIBSVM's svm-predict and prints its accuracy line (classification,
// one-class) or its mean squared error and squared correlation lines
// (regression).
//
// Usage: svm-predict [options] test_file model_file output_file
package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/blockllm/blockllm-go/blockllm/svm"
)

const usage = `Usage: svm-predict [options] test_file model_file output_file
options:
-b probability_estimates: whether to predict probability estimates, 0 or 1 (default 0); for one-class SVM only 0 is supported
-q : quiet mode (no outputs)
-threads n : goroutines used for prediction (default 1)
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "svm-predict:", err)
		os.Exit(1)
	}
}

// gfmt formats like C's %g.
func gfmt(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

func run(args []string, stdout, stderr io.Writer) error {
	prob, quiet, threads := false, false, 1
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if len(a) < 2 || a[0] != '-' {
			break
		}
		switch a {
		case "-q":
			quiet = true
			continue
		case "-b", "-threads":
			if i+1 >= len(args) {
				return fmt.Errorf("option %s needs a value\n%s", a, usage)
			}
			v, err := strconv.Atoi(args[i+1])
			if err != nil {
				return fmt.Errorf("option %s: bad integer %q", a, args[i+1])
			}
			i++
			if a == "-b" {
				prob = v != 0
			} else {
				if v < 1 {
					return fmt.Errorf("-threads must be >= 1")
				}
				threads = v
			}
		default:
			return fmt.Errorf("unknown option: %s\n%s", a, usage)
		}
	}
	if len(args)-i != 3 {
		return fmt.Errorf("wrong number of arguments\n%s", usage)
	}
	d, err := svm.ReadDatasetFile(args[i])
	if err != nil {
		return err
	}
	m, err := svm.ReadModelFile(args[i+1])
	if err != nil {
		return err
	}
	if err := m.CheckRows(d.X); err != nil {
		return fmt.Errorf("%s: %w", args[i], err)
	}
	if prob && !m.HasProbability() {
		return fmt.Errorf("model does not support probabiliy estimates")
	}
	if !prob && m.HasProbability() && !quiet {
		fmt.Fprintf(stdout, "Model supports probability estimates, but disabled in prediction.\n")
	}
	if sigma, ok := m.SVRProbability(); ok && prob && !quiet {
		fmt.Fprintf(stdout, "Prob. model for test data: target value = predicted value + z,\nz: Laplace distribution e^(-|z|/sigma)/(2sigma),sigma=%s\n", gfmt(sigma))
	}
	prob = prob && m.Type.Classification()
	f, err := os.Create(args[i+2])
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	pred, probs := m.PredictAll(d.X, threads, prob)
	if prob {
		fmt.Fprint(w, "labels")
		for _, l := range m.Label {
			fmt.Fprintf(w, " %d", l)
		}
		fmt.Fprintln(w)
	}
	correct := 0
	for k, y := range pred {
		if prob {
			w.WriteString(gfmt(y))
			for _, p := range probs[k] {
				w.WriteString(" " + gfmt(p))
			}
			w.WriteString("\n")
		} else {
			w.WriteString(strconv.FormatFloat(y, 'g', 17, 64) + "\n")
		}
		if y == d.Y[k] {
			correct++
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	total := len(pred)
	if quiet {
		return nil
	}
	if m.Type.Regression() {
		mse, scc := svm.RegressionMetrics(pred, d.Y)
		fmt.Fprintf(stdout, "Mean squared error = %s (regression)\n", gfmt(mse))
		fmt.Fprintf(stdout, "Squared correlation coefficient = %s (regression)\n", gfmt(scc))
	} else {
		fmt.Fprintf(stdout, "Accuracy = %s%% (%d/%d) (classification)\n", gfmt(float64(correct)/float64(total)*100), correct, total)
	}
	return nil
}
