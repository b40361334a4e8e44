package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/blockllm/blockllm-go/blockllm/svm"
)

func init() { subcommands["svm"] = runSVM }

// runSVM is `bench svm`: the greedy 2-coordinate paper's comparison of working-set rules
// (GS-1, maximal violating pair, GS-q, WSS2, random pairs) with fixed 1/L and exact
// steps, on a seeded summation-constrained problem, a bound-constrained one and SVM
// duals of LIBSVM data sets. Prints a table and writes one PNG per problem and step.
func runSVM(args []string) error {
	fs := flag.NewFlagSet("bench svm", flag.ContinueOnError)
	var o svm.CompareOptions
	var sets string
	fs.StringVar(&o.DataDir, "data", "../shared/data/svm", "directory of LIBSVM data sets (missing sets are skipped)")
	fs.StringVar(&sets, "sets", "heart_scale,a8a", "comma-separated data sets whose SVM duals are compared")
	fs.IntVar(&o.MaxRows, "max-rows", 5000, "keep the first rows of each set (-1: all)")
	fs.IntVar(&o.N, "n", 1000, "dimension of the synthetic problems")
	fs.IntVar(&o.MaxIter, "max-iter", 20000, "iteration cap per run")
	fs.DurationVar(&o.TimeLimit, "time-limit", 10*time.Second, "time cap per run")
	fs.StringVar(&o.OutDir, "out", ".", `directory for the PNG plots ("-": none)`)
	seed := fs.Uint64("seed", 1, "seed of the synthetic problems and the random rule")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.Seed = *seed
	if o.OutDir != "-" && o.OutDir != "" {
		if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
			return err
		}
	}
	if sets != "" {
		o.Sets = strings.Split(sets, ",")
	}
	return svm.RunComparison(os.Stdout, o)
}
