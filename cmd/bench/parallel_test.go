package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain runs the command itself when BLOCKLLM_BENCH_ARGS holds its arguments (a JSON
// list): the data-parallel test starts bench as a real process whose launcher re-runs
// this test binary as its workers.
func TestMain(m *testing.M) {
	if a := os.Getenv("BLOCKLLM_BENCH_ARGS"); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if os.Getenv("BLOCKLLM_LAUNCHED") != "" { // a worker: the launcher's flag is not its own
			for i := 0; i+1 < len(args); i++ {
				if args[i] == "--nproc-per-node" {
					args = append(args[:i:i], args[i+2:]...)
					break
				}
			}
		}
		os.Args = append([]string{"bench"}, args...)
		main()
		return
	}
	os.Exit(m.Run())
}

// TestBenchDataParallel: bench with two workers (--nproc-per-node 2, Gloo on 127.0.0.1)
// prints one line, from rank 0, with the world size, the global tokens per second, and
// the bytes all-reduced per step: every gradient for AdamW, only the block's for
// BlockLLM (plus the loss), so BlockLLM all-reduces about (1 - sparsity) of AdamW's.
func TestBenchDataParallel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	cfg := filepath.Join("..", "..", "testdata", "hf", "llama-tiny", "config.json")
	run := func(args ...string) Line {
		b, _ := json.Marshal(append([]string{"--model", cfg, "--batch-size", "2", "--seq-len", "16", "--steps", "2",
			"--warmup", "1", "--threads", "1", "--nproc-per-node", "2"}, args...))
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "BLOCKLLM_BENCH_ARGS="+string(b))
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		require.NoError(t, cmd.Run(), errb.String())
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		require.Len(t, lines, 1, "rank 0 alone prints: %q", out.String())
		var l Line
		require.NoError(t, json.Unmarshal([]byte(lines[0]), &l))
		return l
	}
	a := run("--method", "adamw")
	b := run("--method", "blockllm", "--sparsity", "0.9")
	for _, l := range []Line{a, b} {
		assert.Equal(t, 2, l.WorldSize)
		assert.InDelta(t, 2*2*16/(l.MsPerStep/1000), l.TokensPerS, 1e-6*l.TokensPerS, "tokens of both ranks")
		// the gradients of the trainable tensors and the loss, nothing else
		assert.GreaterOrEqual(t, l.AllReduceBytesPerStep, float64(4*l.TrainableParams), l.Method)
		assert.LessOrEqual(t, l.AllReduceBytesPerStep, float64(4*l.TrainableParams+64), l.Method)
		assert.Positive(t, l.CollectiveMsPerStep)
	}
	assert.Equal(t, a.Params, a.TrainableParams)
	assert.Less(t, b.AllReduceBytesPerStep, 0.2*a.AllReduceBytesPerStep)
}
