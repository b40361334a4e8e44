package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/blockllm/blockllm-go/cmd/internal/clitest"
	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func benchLine(t *testing.T, args ...string) Line {
	t.Helper()
	var out, errb bytes.Buffer
	require.NoError(t, runTrain(args, &out, &errb), errb.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 1, "one JSON line")
	var l Line
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &l))
	return l
}

func TestBenchLine(t *testing.T) {
	cfg := filepath.Join("..", "..", "testdata", "hf", "llama-tiny", "config.json")
	common := []string{"--model", cfg, "--batch-size", "2", "--seq-len", "16", "--steps", "2", "--warmup", "1", "--threads", "2"}
	a := benchLine(t, append([]string{"--method", "adamw"}, common...)...)
	b := benchLine(t, append([]string{"--method", "blockllm", "--sparsity", "0.9"}, common...)...)
	for _, l := range []Line{a, b} {
		assert.Equal(t, 2, l.BatchSize)
		assert.Equal(t, 16, l.SeqLen)
		assert.Positive(t, l.MsPerStep)
		assert.InDelta(t, 32/(l.MsPerStep/1000), l.TokensPerS, 1e-6*l.TokensPerS)
		assert.GreaterOrEqual(t, l.PeakMemoryBytes, l.WeightsBytes)
		assert.Equal(t, 4*l.Params, l.WeightsBytes, "f32 weights")
		assert.Greater(t, l.Loss, 0.0)
	}
	assert.Equal(t, a.Params, a.TrainableParams)
	assert.Equal(t, 2*a.WeightsBytes, a.OptimizerStateBytes, "AdamW: two f32 moments per weight")
	assert.Equal(t, a.WeightsBytes, a.GradientBytes)
	assert.Equal(t, 2*4*b.TrainableParams, b.OptimizerStateBytes)
	assert.Equal(t, 4*b.TrainableParams, b.GradientBytes)
	assert.Less(t, b.OptimizerStateBytes, a.OptimizerStateBytes/8)
	assert.Less(t, b.PeakMemoryBytes, a.PeakMemoryBytes)

	// --compare against a reference file holding a's line as written
	ref := filepath.Join(t.TempDir(), "ref.jsonl")
	buf, _ := json.Marshal(a)
	require.NoError(t, os.WriteFile(ref, append([]byte("# reference\n"), append(buf, '\n')...), 0o644))
	var out, errb bytes.Buffer
	require.NoError(t, runTrain(append([]string{"--method", "adamw", "--compare", ref}, common...), &out, &errb))
	assert.Contains(t, errb.String(), "adamw")
	assert.Contains(t, errb.String(), "x")
	err := writeComparison(&errb, []Line{a}, []Line{b})
	assert.ErrorContains(t, err, "no reference row matches")
}

// TestBenchAdam8bit: --adam-8bit appears in "options" and shrinks AdamW's state on the
// llama-tiny config to the bytes worked out in blockllm's TestAdam8bitStateBytes
// (494464 against 1739264 for float32 moments); --fused-adamw beside it is an error.
func TestBenchAdam8bit(t *testing.T) {
	cfg := filepath.Join("..", "..", "testdata", "hf", "llama-tiny", "config.json")
	common := []string{"--model", cfg, "--batch-size", "2", "--seq-len", "16", "--steps", "1", "--warmup", "1", "--threads", "2", "--method", "adamw"}
	l := benchLine(t, append([]string{"--adam-8bit"}, common...)...)
	assert.Equal(t, "adam-8bit", l.Options)
	assert.Equal(t, int64(494464), l.OptimizerStateBytes)
	assert.Equal(t, int64(1739264), 2*l.WeightsBytes)
	var out, errb bytes.Buffer
	err := runTrain(append([]string{"--adam-8bit", "--fused-adamw"}, common...), &out, &errb)
	assert.ErrorContains(t, err, "--fused-adamw does not apply with --adam-8bit")
}

func TestBenchFlags(t *testing.T) {
	var out, errb bytes.Buffer
	err := runTrain([]string{"--method", "sgd", "--model", "llama-tiny", "--steps", "1", "--batch-size", "1", "--seq-len", "4"}, &out, &errb)
	assert.ErrorContains(t, err, `--method: blockllm: unknown method "sgd"`)
	err = runTrain([]string{"--method", "adamw,lisa"}, &out, &errb)
	assert.ErrorContains(t, err, "one method")
	err = runTrain([]string{"--model", "nope"}, &out, &errb)
	assert.ErrorContains(t, err, "neither a preset")
	err = runTrain([]string{"--batch-size", "0"}, &out, &errb)
	assert.ErrorContains(t, err, "must be positive")
	err = runTrain([]string{"svm"}, &out, &errb)
	assert.ErrorContains(t, err, `unexpected argument "svm"`)
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	require.NoError(t, os.WriteFile(bad, []byte("{\"method\": 3}\n"), 0o644))
	_, err = readLines(bad)
	assert.ErrorContains(t, err, "bad.jsonl:1")
}

// TestReferenceFile: the H100 reference rows of issue 7 parse, and gradient-checkpointed
// rows match only runs that recompute.
func TestReferenceFile(t *testing.T) {
	ref, err := readLines(filepath.Join("..", "..", "testdata", "bench", "reference-h100.jsonl"))
	require.NoError(t, err)
	require.Len(t, ref, 11)
	ours := Line{Method: "blockllm", Model: "llama-1b", BatchSize: 16, SeqLen: 256, TokensPerS: 30000,
		PeakMemoryBytes: 4 << 30, WeightsBytes: ref[5].WeightsBytes}
	var out bytes.Buffer
	require.NoError(t, writeComparison(&out, ref, []Line{ours}))
	// matched the plain row (182.1 ms: 22493.1 tok/s), not the checkpointed one
	assert.Contains(t, out.String(), "22493.1")
	ours.Options = "recompute,loss-chunk=256"
	out.Reset()
	require.NoError(t, writeComparison(&out, ref, []Line{ours}))
	assert.Contains(t, out.String(), "15586.0") // 16*256/262.8 ms
	ours.Model = "llama-60m"
	assert.Error(t, writeComparison(&out, ref, []Line{ours}), "no checkpointed 60m reference")
}

// scripts/torch_reference.py (the same-machine torch AdamW reference) builds the models
// from its own copy of the preset table: it must match hf/config's.
func TestTorchReferencePresets(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "scripts", "torch_reference.py"))
	require.NoError(t, err)
	re := regexp.MustCompile(`"(llama-[a-z0-9]+)": \((\d+), (\d+), (\d+), (\d+), (\d+)\)`)
	rows := re.FindAllStringSubmatch(string(src), -1)
	require.Len(t, rows, len(config.LlamaPresets()))
	for _, r := range rows {
		c, err := config.LlamaPreset(r[1])
		require.NoError(t, err, r[1])
		want := fmt.Sprintf("%d %d %d %d %d", c.HiddenSize, c.IntermediateSize, c.NumAttentionHeads,
			c.NumHiddenLayers, c.MaxPositionEmbeddings)
		assert.Equal(t, want, strings.Join(r[2:], " "), r[1])
		assert.Equal(t, 32000, c.VocabSize)
	}
}

// TestJSONFields: the bench line keeps its fields (golden field set in
// testdata/jsonfields/bench.json).
func TestJSONFields(t *testing.T) {
	cfg := filepath.Join("..", "..", "testdata", "hf", "llama-tiny", "config.json")
	var out, errb bytes.Buffer
	require.NoError(t, runTrain([]string{"--model", cfg, "--batch-size", "2", "--seq-len", "16", "--steps", "1", "--warmup", "0",
		"--threads", "2", "--method", "blockllm", "--fused-adamw"}, &out, &errb), errb.String())
	clitest.CheckFields(t, "bench", out.String())
}

// TestBenchPEFT: bench's lines for GaLore and LoRA carry their memory accounts: LoRA's
// trainable set is the adapters plus the non-adapted tensors (trained in full, as
// pretrain's LoRA baseline), its optimizer state the adapters plus the Adam moments of
// that set; GaLore trains every parameter with the projected moments and projections
// of the attention and MLP weights.
func TestBenchPEFT(t *testing.T) {
	cfg := filepath.Join("..", "..", "testdata", "hf", "llama-tiny", "config.json")
	common := []string{"--model", cfg, "--batch-size", "2", "--seq-len", "16", "--steps", "2", "--warmup", "1", "--threads", "2"}
	a := benchLine(t, append([]string{"--method", "adamw"}, common...)...)
	l := benchLine(t, append([]string{"--method", "lora", "--lora-r", "4", "--lora-targets", "q_proj,v_proj"}, common...)...)
	g := benchLine(t, append([]string{"--method", "galore", "--galore-rank", "4"}, common...)...)
	assert.Equal(t, "lora", l.Method)
	assert.Equal(t, "lora-r=4,lora-alpha=32,lora-dropout=0.1,lora-targets=q_proj,v_proj", l.Options)
	assert.Equal(t, "galore-rank=4,galore-gap=200,galore-scale=0.25", g.Options)
	// llama-tiny: hidden 64, q_proj [64, 64], v_proj [32, 64], 2 layers
	adapters := int64(2 * (4*64 + 64*4 + 4*64 + 32*4))
	frozen := int64(2 * (64*64 + 32*64))
	assert.Equal(t, a.Params, l.Params, "adapters are not model parameters")
	assert.Equal(t, a.Params-frozen+adapters, l.TrainableParams)
	assert.Equal(t, 4*adapters+2*4*l.TrainableParams, l.OptimizerStateBytes, "adapters plus Adam moments")
	assert.Equal(t, 4*l.TrainableParams, l.GradientBytes)
	assert.Equal(t, a.Params, g.TrainableParams)
	assert.Less(t, g.OptimizerStateBytes, a.OptimizerStateBytes, "projected moments")
	assert.Equal(t, a.GradientBytes, g.GradientBytes, "full gradients")
	assert.Greater(t, l.Loss, 0.0)
	assert.Greater(t, g.Loss, 0.0)
}
