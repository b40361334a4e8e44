package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// readLines reads bench output lines from path (blank lines and lines not starting with
// '{' are skipped).
func readLines(path string) ([]Line, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Line
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		b := sc.Bytes()
		if len(b) == 0 || b[0] != '{' {
			continue
		}
		var l Line
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// sameRun matches rows on method, model, batch size and sequence length, and on
// whether activations are recomputed (gradient checkpointing is a different setting).
func sameRun(a, b Line) bool {
	return a.Method == b.Method && a.Model == b.Model && a.BatchSize == b.BatchSize && a.SeqLen == b.SeqLen &&
		hasOption(a, "recompute") == hasOption(b, "recompute")
}

func hasOption(l Line, name string) bool {
	for _, o := range strings.Split(l.Options, ",") {
		if o == name {
			return true
		}
	}
	return false
}

// writeComparison prints, for each row of ours with a matching reference row, the
// tokens/s ratio (ours / reference) and the ratio of peak memory above the weights.
func writeComparison(w io.Writer, ref, ours []Line) error {
	fmt.Fprintf(w, "%-9s %-12s %5s %5s %12s %12s %9s %14s %14s %9s  %s\n", "method", "model", "batch", "seq",
		"tok/s", "ref tok/s", "speed", "above-w MiB", "ref above-w", "memory", "options")
	matched := 0
	for _, o := range ours {
		for _, r := range ref {
			if !sameRun(o, r) {
				continue
			}
			matched++
			above := float64(o.PeakMemoryBytes-o.WeightsBytes) / (1 << 20)
			rabove := float64(r.PeakMemoryBytes-r.WeightsBytes) / (1 << 20)
			speed, mem := ratio(o.TokensPerS, r.TokensPerS), ratio(above, rabove)
			opts := o.Options
			if o.Sparsity > 0 {
				opts = strings.TrimSuffix(fmt.Sprintf("s=%g,%s", o.Sparsity, opts), ",")
			}
			fmt.Fprintf(w, "%-9s %-12s %5d %5d %12.1f %12.1f %8.2fx %14.1f %14.1f %8.2fx  %s\n", o.Method, o.Model,
				o.BatchSize, o.SeqLen, o.TokensPerS, r.TokensPerS, speed, above, rabove, mem, opts)
			break
		}
	}
	if matched == 0 {
		return fmt.Errorf("no reference row matches method, model, batch size, sequence length and recompute")
	}
	return nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// runCompare is `bench compare REF OURS`.
func runCompare(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: bench compare REFERENCE.jsonl OURS.jsonl")
	}
	ref, err := readLines(args[0])
	if err != nil {
		return err
	}
	ours, err := readLines(args[1])
	if err != nil {
		return err
	}
	return writeComparison(os.Stdout, ref, ours)
}
