// Command svm-train trains an SVM like LIBSVM's svm-train (C-SVC, nu-SVC,
// one-class SVM, epsilon-SVR and nu-SVR with any of LIBSVM's kernels,
// precomputed included), with the same flags, defaults and summary lines,
// plus -rule (working-set rule), -step (exact or fixed 1/L steps) and
// -threads (goroutines computing kernel columns).
//
// Usage: svm-train [options] training_set_file [model_file]
package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/blockllm/blockllm-go/blockllm/svm"
)

const usage = `Usage: svm-train [options] training_set_file [model_file]
options:
-s svm_type : set type of SVM (default 0)
	0 -- C-SVC		(multi-class classification)
	1 -- nu-SVC		(multi-class classification)
	2 -- one-class SVM
	3 -- epsilon-SVR	(regression)
	4 -- nu-SVR		(regression)
-t kernel_type : set type of kernel function (default 2)
	0 -- linear: u'*v
	1 -- polynomial: (gamma*u'*v + coef0)^degree
	2 -- radial basis function: exp(-gamma*|u-v|^2)
	3 -- sigmoid: tanh(gamma*u'*v + coef0)
	4 -- precomputed kernel (kernel values in training_set_file)
-d degree : set degree in kernel function (default 3)
-g gamma : set gamma in kernel function (default 1/num_features)
-r coef0 : set coef0 in kernel function (default 0)
-c cost : set the parameter C of C-SVC, epsilon-SVR, and nu-SVR (default 1)
-n nu : set the parameter nu of nu-SVC, one-class SVM, and nu-SVR (default 0.5)
-p epsilon : set the epsilon in loss function of epsilon-SVR (default 0.1)
-m cachesize : set cache memory size in MB (default 100)
-e epsilon : set tolerance of termination criterion (default 0.001)
-h shrinking : whether to use the shrinking heuristics, 0 or 1 (default 1)
-b probability_estimates : whether to train a SVC or SVR model for probability estimates, 0 or 1 (default 0)
-wi weight : set the parameter C of class i to weight*C, for C-SVC (default 1)
-v n: n-fold cross validation mode
-q : quiet mode (no outputs)
-rule name : working-set rule: wss2 (default, LIBSVM's), mvp (maximal violating pair), gsq, random, gs1
-step exact|fixed : LIBSVM's exact step (default) or the fixed 1/L step
-threads n : goroutines computing kernel columns (default 1)
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "svm-train:", err)
		os.Exit(1)
	}
}

type options struct {
	params   *svm.Params
	gammaSet bool
	nFold    int
	quiet    bool
	input    string
	model    string
}

func parseArgs(args []string) (*options, error) {
	o := &options{params: svm.DefaultParams(0)}
	p := o.params
	p.Kernel.Gamma = 0
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if len(a) < 2 || a[0] != '-' {
			break
		}
		name := a[1:]
		if name == "q" {
			o.quiet = true
			continue
		}
		if i+1 >= len(args) {
			return nil, fmt.Errorf("option %s needs a value\n%s", a, usage)
		}
		val := args[i+1]
		i++
		var err error
		fl := func() float64 {
			v, e := strconv.ParseFloat(val, 64)
			if e != nil && err == nil {
				err = fmt.Errorf("option %s: bad number %q", a, val)
			}
			return v
		}
		in := func() int {
			v, e := strconv.Atoi(val)
			if e != nil && err == nil {
				err = fmt.Errorf("option %s: bad integer %q", a, val)
			}
			return v
		}
		switch {
		case name == "s":
			t := in()
			if err == nil && (t < 0 || t > 4) {
				return nil, fmt.Errorf("-s %d: unknown svm type (want 0..4)", t)
			}
			p.Type = svm.SVMType(t)
		case name == "t":
			t := in()
			if err == nil && (t < 0 || t > 4) {
				return nil, fmt.Errorf("-t %d: unknown kernel type (want 0..4)", t)
			}
			p.Kernel.Type = svm.KernelType(t)
		case name == "d":
			p.Kernel.Degree = in()
		case name == "g":
			p.Kernel.Gamma = fl()
			o.gammaSet = p.Kernel.Gamma != 0
		case name == "r":
			p.Kernel.Coef0 = fl()
		case name == "c":
			p.C = fl()
		case name == "n":
			p.Nu = fl()
		case name == "p":
			p.P = fl()
		case name == "m":
			p.CacheMB = fl()
		case name == "e":
			p.Eps = fl()
		case name == "h":
			p.Shrinking = zeroOne(in(), "shrinking", &err)
		case name == "b":
			p.Probability = zeroOne(in(), "probability", &err)
		case name == "v":
			o.nFold = in()
			if err == nil && o.nFold < 2 {
				return nil, fmt.Errorf("n-fold cross validation: n must >= 2")
			}
		case name == "rule":
			p.Rule, err = svm.ParseRule(val)
		case name == "step":
			switch val {
			case "exact":
				p.FixedStep = false
			case "fixed":
				p.FixedStep = true
			default:
				err = fmt.Errorf("option -step: want exact or fixed, got %q", val)
			}
		case name == "threads":
			p.Threads = in()
			if err == nil && p.Threads < 1 {
				return nil, fmt.Errorf("-threads must be >= 1")
			}
		case strings.HasPrefix(name, "w"):
			lab, e := strconv.Atoi(name[1:])
			if e != nil {
				return nil, fmt.Errorf("option %s: bad class label", a)
			}
			if p.Weights == nil {
				p.Weights = map[int]float64{}
			}
			w := fl()
			if old, ok := p.Weights[lab]; ok {
				w *= old
			}
			p.Weights[lab] = w
		default:
			return nil, fmt.Errorf("unknown option: %s\n%s", a, usage)
		}
		if err != nil {
			return nil, err
		}
	}
	if i >= len(args) {
		return nil, fmt.Errorf("no training set file\n%s", usage)
	}
	o.input = args[i]
	if i+1 < len(args) {
		o.model = args[i+1]
	} else {
		o.model = filepath.Base(o.input) + ".model"
	}
	if i+2 < len(args) {
		return nil, fmt.Errorf("too many arguments\n%s", usage)
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseArgs(args)
	if err != nil {
		return err
	}
	d, err := svm.ReadDatasetFile(o.input)
	if err != nil {
		return err
	}
	p := o.params
	if !o.gammaSet {
		p.Kernel.Gamma = 0
		if d.MaxIndex > 0 {
			p.Kernel.Gamma = 1 / float64(d.MaxIndex)
		}
	}
	if !o.quiet {
		p.Progress = stdout
	}
	p.Warnings = stderr
	if o.nFold > 0 {
		target, err := svm.CrossValidation(d, p, o.nFold)
		if err != nil {
			return err
		}
		if p.Type.Regression() {
			mse, scc := svm.RegressionMetrics(target, d.Y)
			fmt.Fprintf(stdout, "Cross Validation Mean squared error = %s\n", gfmt(mse))
			fmt.Fprintf(stdout, "Cross Validation Squared correlation coefficient = %s\n", gfmt(scc))
		} else {
			fmt.Fprintf(stdout, "Cross Validation Accuracy = %s%%\n", gfmt(svm.Accuracy(target, d.Y)))
		}
		return nil
	}
	t0 := time.Now()
	m, err := svm.Train(d, p)
	if err != nil {
		return err
	}
	if !o.quiet && time.Since(t0) > 2*time.Second {
		fmt.Fprintf(stderr, "svm-train: trained in %.2f s\n", time.Since(t0).Seconds())
	}
	return m.Save(o.model)
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

// zeroOne reads a 0/1 option as LIBSVM's svm_check_parameter does: any other value is
// its error ("shrinking != 0 and shrinking != 1").
func zeroOne(v int, name string, err *error) bool {
	if *err == nil && v != 0 && v != 1 {
		*err = fmt.Errorf("%s != 0 and %s != 1", name, name)
	}
	return v == 1
}
