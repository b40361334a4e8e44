// Command svm-train trains a C-SVC like LIBSVM's svm-train, with the same
// flags and summary lines, plus -rule (working-set rule) and -threads
// (goroutines computing kernel columns).
//
// Usage: svm-train [options] training_set_file [model_file]
package main

import (
	"fmt"
	"io"
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
	0 -- C-SVC		(multi-class classification; the only type supported)
-t kernel_type : set type of kernel function (default 2)
	0 -- linear: u'*v
	1 -- polynomial: (gamma*u'*v + coef0)^degree
	2 -- radial basis function: exp(-gamma*|u-v|^2)
	3 -- sigmoid: tanh(gamma*u'*v + coef0)
-d degree : set degree in kernel function (default 3)
-g gamma : set gamma in kernel function (default 1/num_features)
-r coef0 : set coef0 in kernel function (default 0)
-c cost : set the parameter C of C-SVC (default 1)
-m cachesize : set cache memory size in MB (default 100)
-e epsilon : set tolerance of termination criterion (default 0.001)
-h shrinking : whether to use the shrinking heuristics, 0 or 1 (default 1)
-b probability_estimates : whether to train a SVC model for probability estimates, 0 or 1 (default 0)
-wi weight : set the parameter C of class i to weight*C (default 1)
-v n : n-fold cross validation mode
-q : quiet mode (no outputs)
-rule name : working-set rule: wss2 (default, LIBSVM's solver), gs1, mvp, gsq, random
-threads n : goroutines computing kernel columns (default 1)
`

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
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
			if s := in(); err == nil && s != 0 {
				return nil, fmt.Errorf("only C-SVC (-s 0) is supported, got -s %d", s)
			}
		case name == "t":
			t := in()
			if err == nil && (t < 0 || t > 3) {
				return nil, fmt.Errorf("-t %d: kernel type must be 0..3 (precomputed kernels are not supported)", t)
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
		case name == "n", name == "p":
			fl() // nu / epsilon-SVR parameters: accepted and unused for C-SVC
		case name == "m":
			p.CacheMB = fl()
		case name == "e":
			p.Eps = fl()
		case name == "h":
			p.Shrinking = in() != 0
		case name == "b":
			p.Probability = in() != 0
		case name == "v":
			o.nFold = in()
			if err == nil && o.nFold < 2 {
				return nil, fmt.Errorf("n-fold cross validation: n must >= 2")
			}
		case name == "rule":
			p.Rule, err = svm.ParseRule(val)
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

func run(args []string, stdout io.Writer) error {
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
	if o.nFold > 0 {
		_, acc, err := svm.CrossValidation(d, p, o.nFold)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Cross Validation Accuracy = %s%%\n", strconv.FormatFloat(acc, 'g', 6, 64))
		return nil
	}
	t0 := time.Now()
	m, err := svm.Train(d, p)
	if err != nil {
		return err
	}
	if !o.quiet && time.Since(t0) > 2*time.Second {
		fmt.Fprintf(os.Stderr, "svm-train: trained in %.2f s\n", time.Since(t0).Seconds())
	}
	return m.Save(o.model)
}
