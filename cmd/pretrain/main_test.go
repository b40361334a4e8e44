package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/cmd/internal/clitest"
	"github.com/blockllm/blockllm-go/hf/llama"
)

const tinyTok = "../../testdata/hf/llama-tiny-tok/tokenizer.json"

func runArgs(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"--progress=false", "--threads", "2"}, args...), &out, &errb)
	return out.String(), errb.String(), err
}

func events(t *testing.T, out string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev), sc.Text())
		evs = append(evs, ev)
	}
	return evs
}

// TestDemoSmallCheckpointResume runs the demo path for a few steps with both
// default methods, checks the table, the plot, the saved models and the
// checkpoints, then resumes AdamW from its latest checkpoint.
func TestDemoSmallCheckpointResume(t *testing.T) {
	dir := t.TempDir()
	plot := filepath.Join(dir, "loss.png")
	common := []string{"--seq-len", "32", "--batch-size", "4", "--eval-blocks", "8", "--eval-every", "3", "--out", dir}
	out, _, err := runArgs(t, append(common, "--steps", "6", "--plot", plot, "--lr", "1e-2")...)
	require.NoError(t, err)
	assert.Contains(t, out, "DEMO")
	for _, s := range []string{"Val PPL before", "Val PPL after", "BlockLLM (sparsity 0.5, eligible .*)", "Full AdamW", "Optimizer memory"} {
		assert.Contains(t, out, s)
	}
	assert.Contains(t, out, "validation perplexity at step 0")
	for _, m := range []string{"blockllm", "adamw"} {
		assert.FileExists(t, filepath.Join(dir, m, "final", "model.safetensors"))
		assert.FileExists(t, filepath.Join(dir, m, "final", "tokenizer.json"))
		assert.FileExists(t, filepath.Join(dir, m, "checkpoints", "step-00000006", "trainer_state.json"))
		assert.FileExists(t, filepath.Join(dir, m, "checkpoints", "step-00000006", "config.json"))
	}
	f, err := os.Open(plot)
	require.NoError(t, err)
	_, err = png.Decode(f)
	f.Close()
	require.NoError(t, err)
	// The final model loads as a Hugging Face Llama with the tokenizer's vocabulary.
	m, err := llama.Load(filepath.Join(dir, "adamw", "final"), llama.Options{})
	require.NoError(t, err)
	assert.Equal(t, 1024, m.Cfg.VocabSize)
	m.Close()

	// Resume: the run continues at step 6 and stops at 9; the perplexity
	// "before" is the checkpoint's, equal to the first run's final value.
	out1 := events(t, mustJSON(t, append(common, "--steps", "6", "--method", "adamw", "--json", "--lr", "1e-2", "--out", t.TempDir())...))
	out2, _, err := runArgs(t, append(common, "--steps", "9", "--method", "adamw", "--resume", "latest", "--resume-allow", "steps", "--json", "--lr", "1e-2")...)
	require.NoError(t, err)
	evs := events(t, out2)
	var res1, res2 map[string]any
	for _, ev := range out1 {
		if ev["event"] == "result" {
			res1 = ev
		}
	}
	stepsRun := 0
	for _, ev := range evs {
		switch ev["event"] {
		case "result":
			res2 = ev
		case "step":
			stepsRun++
			assert.Greater(t, ev["step"].(float64), 6.0)
		}
	}
	require.NotNil(t, res1)
	require.NotNil(t, res2)
	assert.Equal(t, 3, stepsRun)
	assert.Equal(t, 9.0, res2["steps"])
	assert.InDelta(t, res1["val_ppl_after"].(float64), res2["val_ppl_before"].(float64), 1e-6*res1["val_ppl_after"].(float64))
	assert.Less(t, res2["val_ppl_after"].(float64), res2["val_ppl_before"].(float64))
}

func mustJSON(t *testing.T, args ...string) string {
	t.Helper()
	out, _, err := runArgs(t, args...)
	require.NoError(t, err)
	return out
}

// TestOwnDataAndConfig pretrains a model given as config.json on text files
// given by glob, with the validation documents held out by hash, and checks
// that the loss goes down for AdamW.
func TestOwnDataAndConfig(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := range 300 {
		fmt.Fprintf(&b, `{"text": "document %d: the quick brown fox jumps over the lazy dog %d times."}`+"\n", i, i%7)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "c4-train.00000-of-00002.json"), []byte(b.String()), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "c4-train.00001-of-00002.json"), []byte(b.String()), 0o644))
	cfg := `{"model_type": "llama", "vocab_size": 1024, "hidden_size": 32, "intermediate_size": 64,
	  "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 64, "initializer_range": 0.02}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644))
	out, _, err := runArgs(t, "--model", filepath.Join(dir, "config.json"), "--tokenizer", tinyTok,
		"--data", filepath.Join(dir, "c4-train.*.json"), "--val-fraction", "0.1", "--method", "adamw,blockllm",
		"--steps", "12", "--seq-len", "32", "--batch-size", "4", "--eval-blocks", "4", "--lr", "1e-2", "--json",
		"--recompute-mlp", "--loss-chunk", "8", "--pad-mlp", "48", // the memory/speed options (width 64 -> 96)
		"--step-in-backward", "--grad-clip", "0")
	require.NoError(t, err)
	res := map[string]map[string]any{}
	for _, ev := range events(t, out) {
		if ev["event"] == "result" {
			res[ev["method"].(string)] = ev
		}
	}
	// A new model from a config: BlockLLM gets the pretraining sparsity and
	// every tensor eligible (the embeddings must train).
	require.Contains(t, res, "BlockLLM (sparsity 0.9, eligible .*)")
	require.Contains(t, res, "Full AdamW")
	assert.Less(t, res["BlockLLM (sparsity 0.9, eligible .*)"]["optimizer_state_bytes"].(float64),
		res["Full AdamW"]["optimizer_state_bytes"].(float64))
	res = map[string]map[string]any{"": res["Full AdamW"]}
	aw := res[""]
	assert.Equal(t, false, aw["demo"])
	assert.Less(t, aw["val_ppl_after"].(float64), 0.5*aw["val_ppl_before"].(float64))
}

func TestErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--model", "llama-60m", "--data", "x.json"}, "is a preset: pass --tokenizer"},
		{[]string{"--model", "llama-1000b", "--tokenizer", tinyTok}, "not a file or directory, nor a preset"},
		{[]string{"--data", "/nonexistent/*.json.gz", "--tokenizer", tinyTok}, "/nonexistent"},
		{[]string{"--method", "blockllm,sgd"}, `unknown method "sgd"`},
		{[]string{"--schedule", "step"}, "--schedule"},
		{[]string{"--seq-len", "5000", "--steps", "1"}, "--seq-len 5000 exceeds"},
		{[]string{"--resume", "latest"}, "--resume latest needs --out"},
		{[]string{"--resume", "/x", "--method", "adamw,blockllm"}, "single --method"},
		{[]string{"--warmup", "50", "--steps", "10"}, "--warmup 50 exceeds"},
		{[]string{"--device", "cuda:x"}, "--device"},
		{[]string{"--loss-chunk", "-2"}, "--loss-chunk must not be negative"},
		{[]string{"--pad-mlp", "-3"}, "--pad-mlp not below -1"},
		{[]string{"--step-in-backward"}, "--step-in-backward needs --grad-clip 0"},
	}
	for _, c := range cases {
		_, _, err := runArgs(t, c.args...)
		if assert.Error(t, err, "%v", c.args) {
			assert.Contains(t, err.Error(), c.want, "%v", c.args)
		}
	}
}

// TestJSONFields: the JSON lines of every method keep their fields (golden field sets in
// testdata/jsonfields/pretrain.json).
func TestJSONFields(t *testing.T) {
	out, _, err := runArgs(t, "--json", "--steps", "4", "--seq-len", "16", "--batch-size", "2", "--eval-blocks", "2",
		"--eval-every", "2", "--checkpoint-every", "2", "--patience", "1", "--grad-clip", "1",
		"--method", "blockllm,adamw,badam,lisa", "--switch-every", "2", "--out", t.TempDir())
	require.NoError(t, err)
	clitest.CheckFields(t, "pretrain", out)
}

// TestAblation: --ablate runs every variant for every seed and reports one line per run
// and a summary per variant; the reference variant's switches reach the optimizer (its
// random first block makes seeds differ even with the same data).
func TestAblation(t *testing.T) {
	plot := filepath.Join(t.TempDir(), "ablation.png")
	out, _, err := runArgs(t, "--ablate", "default; reference --check-every 3; default --budget under", "--seeds", "1,2",
		"--steps", "6", "--seq-len", "16", "--batch-size", "2", "--eval-blocks", "2", "--eval-every", "3", "--patience", "1",
		"--json", "--plot", plot)
	require.NoError(t, err)
	runs := map[string][]map[string]any{}
	summary := map[string]map[string]any{}
	for _, ev := range events(t, out) {
		switch ev["event"] {
		case "ablation_run":
			runs[ev["variant"].(string)] = append(runs[ev["variant"].(string)], ev)
		case "ablation":
			summary[ev["variant"].(string)] = ev
		}
	}
	require.Len(t, runs, 3)
	require.Len(t, summary, 3)
	for v, rs := range runs {
		require.Len(t, rs, 2, v)
		assert.Equal(t, 1.0, rs[0]["seed"], v)
		assert.Equal(t, 2.0, rs[1]["seed"], v)
		s := summary[v]
		a, b := rs[0]["val_ppl"].(float64), rs[1]["val_ppl"].(float64)
		assert.InDelta(t, (a+b)/2, s["val_ppl_mean"].(float64), 1e-9, v)
		assert.InDelta(t, math.Abs(a-b)/math.Sqrt2, s["val_ppl_sd"].(float64), 1e-9, v)
	}
	assert.NotEqual(t, runs["default"][0]["val_ppl"], runs["reference --check-every 3"][0]["val_ppl"])
	assert.FileExists(t, plot)
	_, _, err = runArgs(t, "--ablate", "default", "--out", t.TempDir())
	assert.ErrorContains(t, err, "not checkpointed")
	_, _, err = runArgs(t, "--ablate", "--penalty none", "--steps", "2")
	assert.ErrorContains(t, err, "start with a preset")
	_, _, err = runArgs(t, "--ablate", "default --nope 3", "--steps", "2")
	assert.ErrorContains(t, err, `variant "default --nope 3"`)
}

// TestPEFTMethods pretrains the demo model with GaLore and LoRA (the demo's rank 32):
// both rows are in the table, LoRA's final directory holds the merged model and the
// adapter in peft's layout (the non-adapted tensors as modules_to_save), and both runs
// resume from their checkpoints.
func TestPEFTMethods(t *testing.T) {
	dir := t.TempDir()
	common := []string{"--seq-len", "32", "--batch-size", "4", "--eval-blocks", "8", "--eval-every", "3", "--out", dir, "--method", "galore,lora"}
	out, _, err := runArgs(t, append(common, "--steps", "4", "--lr", "1e-2")...)
	require.NoError(t, err)
	for _, s := range []string{"GaLore (rank 32)", "LoRA (r 32)", "Val PPL after"} {
		assert.Contains(t, out, s)
	}
	final := filepath.Join(dir, "lora", "final")
	m, err := llama.Load(final, llama.Options{})
	require.NoError(t, err, "the merged model loads as a Hugging Face Llama")
	m.Close()
	cfg, err := os.ReadFile(filepath.Join(final, "adapter", "adapter_config.json"))
	require.NoError(t, err)
	assert.Contains(t, string(cfg), `"target_modules": "all-linear"`)
	assert.Contains(t, string(cfg), `"model.embed_tokens"`)
	assert.FileExists(t, filepath.Join(dir, "galore", "final", "model.safetensors"))
	out2, _, err := runArgs(t, append(common, "--steps", "6", "--lr", "1e-2", "--resume", "latest", "--resume-allow", "steps")...)
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(out2, "checkpoints/step-00000004 at step 4"), "both methods resumed at step 4:\n%s", out2)
}
