// Command svm-predict predicts with a LIBSVM-format C-SVC model like
// LIBSVM's svm-predict and prints its accuracy line.
//
// Usage: svm-predict [options] test_file model_file output_file
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/blockllm/blockllm-go/blockllm/svm"
)

const usage = `Usage: svm-predict [options] test_file model_file output_file
options:
-b probability_estimates: whether to predict probability estimates, 0 or 1 (default 0)
-q : quiet mode (no outputs)
-threads n : goroutines used for prediction (default 1)
`

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "svm-predict:", err)
		os.Exit(1)
	}
}

func gfmt(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

func run(args []string, stdout io.Writer) error {
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
	if prob && !m.HasProbability() {
		return fmt.Errorf("model does not support probabiliy estimates")
	}
	if !prob && m.HasProbability() && !quiet {
		fmt.Fprintf(stdout, "Model supports probability estimates, but disabled in prediction.\n")
	}
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
	if !quiet && total > 0 {
		fmt.Fprintf(stdout, "Accuracy = %s%% (%d/%d) (classification)\n", gfmt(100*float64(correct)/float64(total)), correct, total)
	}
	return nil
}
