package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/cmd/internal/clitest"
	"github.com/blockllm/blockllm-go/data"
	"github.com/blockllm/blockllm-go/eval/glue"
	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/hf/roberta"
	"github.com/blockllm/blockllm-go/torch"
)

const tinyRoberta = "../../testdata/hf/roberta-tiny-sst2"

func runArgs(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"--progress=false", "--threads", "2"}, args...), &out, &errb)
	return out.String(), errb.String(), err
}

// TestDemoSmall runs the demo path (embedded data and tiny model) on a few
// examples with both default methods: the table has both rows, a score
// column and the memory columns, the demo is announced, and BlockLLM holds
// less optimizer state than full AdamW.
func TestDemoSmall(t *testing.T) {
	plot := filepath.Join(t.TempDir(), "loss.png")
	out, _, err := runArgs(t, "--max-train", "64", "--max-eval", "40", "--epochs", "1", "--batch-size", "16", "--plot", plot)
	require.NoError(t, err)
	assert.Contains(t, out, "DEMO")
	assert.Contains(t, out, "40 validation examples")
	for _, s := range []string{"SST-2", "Optimizer memory", "Peak memory", "BlockLLM (sparsity 0.5, eligible .*)", "Full AdamW"} {
		assert.Contains(t, out, s)
	}
	f, err := os.Open(plot)
	require.NoError(t, err)
	defer f.Close()
	_, err = png.Decode(f)
	require.NoError(t, err)
}

func jsonEvents(t *testing.T, out string) []map[string]any {
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

// TestJSONAndMemory: --json writes only JSON lines to stdout: step events
// tagged with task and method, one eval per epoch, and result lines whose
// optimizer state is smaller for BlockLLM than for AdamW.
func TestJSONAndMemory(t *testing.T) {
	out, _, err := runArgs(t, "--max-train", "48", "--max-eval", "24", "--epochs", "2", "--batch-size", "16", "--json",
		"--sparsity", "0.95", "--eligible", "encoder")
	require.NoError(t, err)
	evs := jsonEvents(t, out)
	results := map[string]map[string]any{}
	evals := map[string]int{}
	steps := 0
	for _, ev := range evs {
		switch ev["event"] {
		case "result":
			results[ev["method"].(string)] = ev
		case "eval":
			evals[ev["method"].(string)]++
			assert.Equal(t, "sst2", ev["task"])
		case "step":
			steps++
		}
	}
	assert.Equal(t, 2*2*3, steps, "2 methods x 2 epochs x 3 batches")
	assert.Equal(t, map[string]int{"blockllm": 2, "adamw": 2}, evals)
	require.Len(t, results, 2)
	bl, aw := results["BlockLLM (sparsity 0.95, eligible encoder)"], results["Full AdamW"]
	require.NotNil(t, bl)
	require.NotNil(t, aw)
	assert.Less(t, bl["optimizer_state_bytes"].(float64), aw["optimizer_state_bytes"].(float64)/4)
	assert.Greater(t, bl["peak_bytes"].(float64), 0.0)
	assert.Equal(t, true, bl["demo"])
}

// writeJSONL writes Hugging Face-layout JSON lines.
func writeJSONL(t *testing.T, path string, rows []map[string]any) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	var b bytes.Buffer
	for _, r := range rows {
		j, err := json.Marshal(r)
		require.NoError(t, err)
		b.Write(append(j, '\n'))
	}
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
}

// pairData writes stsb and mnli sets in the Hugging Face jsonl layout, built
// from demo sentences.
func pairData(t *testing.T) string {
	t.Helper()
	ds, err := glue.LoadFS(data.DemoGLUE(), "sst2", "train")
	require.NoError(t, err)
	s := func(i int) string { return ds.Examples[i%len(ds.Examples)].TextA }
	dir := t.TempDir()
	for _, split := range []string{"train", "validation"} {
		var st []map[string]any
		for i := range 24 {
			st = append(st, map[string]any{"sentence1": s(i), "sentence2": s(i + 7), "label": float64(i%11) / 2, "idx": i})
		}
		writeJSONL(t, filepath.Join(dir, "stsb", split+".jsonl"), st)
	}
	for _, split := range []string{"train", "validation_matched", "validation_mismatched"} {
		var mn []map[string]any
		for i := range 24 {
			mn = append(mn, map[string]any{"premise": s(i), "hypothesis": s(2*i + 1), "label": i % 3, "idx": i})
		}
		writeJSONL(t, filepath.Join(dir, "mnli", split+".jsonl"), mn)
	}
	return dir
}

// TestCheckpointPairTasks fine-tunes a checkpoint on a regression task and
// MNLI (pairs, two validation sets) with BlockLLM, AdamW and BAdam, saves the
// models and reloads two.
func TestCheckpointPairTasks(t *testing.T) {
	dir := pairData(t)
	outDir := t.TempDir()
	out, _, err := runArgs(t, "--model", tinyRoberta, "--data", dir, "--task", "stsb,mnli", "--method", "blockllm,adamw,badam",
		"--epochs", "1", "--batch-size", "8", "--max-len", "64", "--out", outDir, "--lr", "1e-3")
	require.NoError(t, err)
	assert.NotContains(t, out, "DEMO")
	// A checkpoint gets the paper's BlockLLM settings.
	for _, s := range []string{"STS-B", "MNLI-m", "MNLI-mm", "Avg", "BlockLLM (sparsity 0.95)", "Full AdamW", "BAdam"} {
		assert.Contains(t, out, s)
	}
	m, err := roberta.Load(filepath.Join(outDir, "stsb", "adamw"), roberta.Options{})
	require.NoError(t, err)
	defer m.Close()
	assert.Equal(t, 1, m.NumLabels())
	assert.Empty(t, m.NewlyInitialized)
	m3, err := roberta.Load(filepath.Join(outDir, "mnli", "badam"), roberta.Options{})
	require.NoError(t, err)
	defer m3.Close()
	assert.Equal(t, 3, m3.NumLabels())
	assert.FileExists(t, filepath.Join(outDir, "mnli", "badam", "tokenizer.json"))
}

func TestErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--task", "cola"}, "--task cola needs --data DIR"},
		{[]string{"--task", "nope"}, "--task"},
		{[]string{"--method", "sgd"}, `unknown method "sgd"`},
		{[]string{"--device", "tpu"}, "--device"},
		{[]string{"--dtype", "i64"}, "want f32 or bf16"},
		{[]string{"--sparsity", "1"}, "--sparsity 1 outside"},
		{[]string{"--data", "/nonexistent/glue"}, "/nonexistent/glue"},
		{[]string{"--model", "/nonexistent/model"}, "/nonexistent/model"},
		{[]string{"--model", tinyRoberta, "--max-len", "500"}, "--max-len 500 exceeds"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	}
	for _, c := range cases {
		_, _, err := runArgs(t, c.args...)
		if assert.Error(t, err, "%v", c.args) {
			assert.Contains(t, err.Error(), c.want, "%v", c.args)
		}
	}
	// --device cuda is accepted and passed through; without a GPU it fails clearly.
	_, _, err := runArgs(t, "--device", "cuda", "--max-train", "8")
	if err != nil {
		assert.Contains(t, err.Error(), "cuda")
	}
}

// TestInterrupted: a cancelled context (SIGINT) stops training; the command
// still evaluates and prints the table of what ran, and reports the interruption.
func TestInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	err := run(ctx, []string{"--progress=false", "--max-train", "32", "--max-eval", "16", "--method", "adamw,blockllm"}, &out, &errb)
	require.ErrorContains(t, err, "interrupted")
	assert.Contains(t, out.String(), "Full AdamW")
	assert.NotContains(t, out.String(), "BlockLLM (", "the second method did not start")
	assert.Contains(t, out.String(), "SST-2")
}

// TestLlamaClassifier: a Llama causal-LM checkpoint fine-tunes with a new score head on
// a pair task and a regression task; the saved models reload as classifiers.
func TestLlamaClassifier(t *testing.T) {
	dir := pairData(t)
	outDir := t.TempDir()
	out, _, err := runArgs(t, "--model", "../../testdata/hf/llama-tiny", "--data", dir, "--task", "stsb,mnli",
		"--method", "blockllm,adamw", "--epochs", "1", "--batch-size", "8", "--max-len", "64", "--out", outDir, "--lr", "1e-3")
	require.NoError(t, err)
	for _, s := range []string{"STS-B", "MNLI-m", "BlockLLM (sparsity 0.95)", "Full AdamW"} {
		assert.Contains(t, out, s)
	}
	c, err := llama.LoadClassifier(filepath.Join(outDir, "mnli", "blockllm"), llama.Options{}, nil, 1)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, 3, c.NumLabels())
	assert.Empty(t, c.NewlyInitialized)
	r, err := llama.LoadClassifier(filepath.Join(outDir, "stsb", "adamw"), llama.Options{}, nil, 1)
	require.NoError(t, err)
	defer r.Close()
	assert.Equal(t, 1, r.NumLabels())
}

// TestJSONFields: the JSON lines keep their fields (golden field sets in
// testdata/jsonfields/finetune.json).
func TestJSONFields(t *testing.T) {
	out, _, err := runArgs(t, "--json", "--max-train", "16", "--max-eval", "8", "--batch-size", "8", "--epochs", "1",
		"--patience", "1", "--method", "blockllm,adamw,badam,lisa", "--switch-every", "1")
	require.NoError(t, err)
	clitest.CheckFields(t, "finetune", out)
}

// tinyCausalLM saves a random tiny Llama with the fortunes tokenizer and, when
// chatConfig is set, that tokenizer_config.json (its chat template).
func tinyCausalLM(t *testing.T, chatConfig string) string {
	t.Helper()
	c, err := config.LlamaPreset("llama-tiny")
	require.NoError(t, err)
	c.VocabSize = 1024
	c.MaxPositionEmbeddings = 256
	m, err := llama.New(c, llama.Options{}, 5)
	require.NoError(t, err)
	defer m.Close()
	dir := t.TempDir()
	require.NoError(t, m.Save(dir))
	tok, err := os.ReadFile("../../testdata/hf/llama-tiny-tok/tokenizer.json")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), tok, 0o644))
	if chatConfig != "" {
		b, err := os.ReadFile(chatConfig)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), b, 0o644))
	}
	return dir
}

// TestInstruct tunes a tiny Llama on Alpaca and chat records (the chat template from the
// model directory), lowers the validation perplexity of the response tokens, writes
// checkpoints and the final model, resumes, and refuses bad files by file and line.
func TestInstruct(t *testing.T) {
	model := tinyCausalLM(t, "../../testdata/chat/qwen2.5/tokenizer_config.json")
	dir := t.TempDir()
	var alpaca, chat strings.Builder
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&alpaca, `{"instruction": "Say the number %d.", "input": "", "output": "The number is %d."}`+"\n", i, i)
		fmt.Fprintf(&chat, `{"messages": [{"role": "user", "content": "Count to %d."}, {"role": "assistant", "content": "%s"}]}`+"\n",
			i%5+1, strings.Repeat("one ", i%5+1))
	}
	ap := filepath.Join(dir, "alpaca.jsonl")
	cp := filepath.Join(dir, "chat.jsonl")
	require.NoError(t, os.WriteFile(ap, []byte(alpaca.String()), 0o644))
	require.NoError(t, os.WriteFile(cp, []byte(chat.String()), 0o644))
	out := t.TempDir()
	args := []string{"--task", "instruct", "--model", model, "--data", ap + "," + cp, "--val-fraction", "0.2", "--epochs", "2",
		"--batch-size", "8", "--lr", "3e-3", "--method", "adamw,blockllm", "--sparsity", "0.5", "--out", out, "--json", "--max-len", "64"}
	stdout, _, err := runArgs(t, append(args, "--samples", "2")...)
	require.NoError(t, err)
	res := map[string]map[string]any{}
	answers := map[string]int{}
	for _, ev := range jsonEvents(t, stdout) {
		switch ev["event"] {
		case "result":
			res[ev["method"].(string)] = ev
		case "answer": // greedy answers to the first two validation prompts
			answers[ev["method"].(string)]++
			p := strings.TrimSpace(ev["prompt"].(string))
			assert.True(t, strings.HasSuffix(p, "### Response:") || strings.HasSuffix(p, "assistant"), "the prompt ends where the response starts: %q", p)
			assert.NotEmpty(t, ev["reference"])
		}
	}
	assert.Equal(t, map[string]int{"adamw": 2, "blockllm": 2}, answers)
	require.Len(t, res, 2)
	for m, r := range res {
		assert.Less(t, r["val_ppl_after"].(float64), r["val_ppl_before"].(float64), m)
	}
	for _, m := range []string{"adamw", "blockllm"} {
		assert.FileExists(t, filepath.Join(out, m, "final", "model.safetensors"))
		ck, _ := filepath.Glob(filepath.Join(out, m, "checkpoints", "step-*"))
		assert.NotEmpty(t, ck, m)
	}
	// resume: the run is complete, so it continues from its last step to the same end
	stdout, _, err = runArgs(t, append(args, "--resume", "latest", "--method", "adamw")...)
	require.NoError(t, err)
	assert.Contains(t, stdout, `"event":"result"`)

	bad := filepath.Join(dir, "bad.jsonl")
	require.NoError(t, os.WriteFile(bad, []byte(`{"instruction": "a", "output": "b"}`+"\n"+`{"instruction": "c"}`+"\n"), 0o644))
	_, _, err = runArgs(t, "--task", "instruct", "--model", model, "--data", bad, "--epochs", "1")
	assert.ErrorContains(t, err, "bad.jsonl:2")
	_, _, err = runArgs(t, "--task", "instruct", "--data", cp, "--epochs", "1")
	assert.ErrorContains(t, err, "--chat-template")
	_, _, err = runArgs(t, "--task", "sst2", "--pack")
	assert.ErrorContains(t, err, "apply to --task instruct")
}

// TestPEFTMethods fine-tunes the RoBERTa fixture with LoRA and GaLore: both rows are in
// the table with their labels (the GLUE defaults: r 8, rank 4), LoRA's output directory
// holds the merged model (a plain Hugging Face checkpoint) and the adapter in peft's
// layout, and the adapter read back onto the base checkpoint gives the merged model's
// logits.
func TestPEFTMethods(t *testing.T) {
	outDir := t.TempDir()
	out, _, err := runArgs(t, "--model", tinyRoberta, "--method", "lora,galore", "--max-train", "32", "--max-eval", "16",
		"--epochs", "1", "--batch-size", "8", "--max-len", "32", "--out", outDir, "--lr", "5e-3")
	require.NoError(t, err)
	for _, s := range []string{"LoRA (r 8)", "GaLore (rank 4)", "Optimizer memory"} {
		assert.Contains(t, out, s)
	}
	dir := filepath.Join(outDir, "sst2", "lora")
	assert.FileExists(t, filepath.Join(dir, "model.safetensors"))
	assert.FileExists(t, filepath.Join(dir, "adapter", "adapter_config.json"))
	assert.FileExists(t, filepath.Join(outDir, "sst2", "galore", "model.safetensors"))
	merged, err := roberta.Load(dir, roberta.Options{})
	require.NoError(t, err)
	defer merged.Close()
	base, err := roberta.Load(tinyRoberta, roberta.Options{NumLabels: 2})
	require.NoError(t, err)
	defer base.Close()
	o, info, err := blockllm.LoadLoRAAdapter(base, filepath.Join(dir, "adapter"), blockllm.AdamConfig{}, 1)
	require.NoError(t, err)
	defer o.Close()
	abs, _ := filepath.Abs(tinyRoberta)
	assert.Equal(t, abs, info.BaseModel)
	assert.Equal(t, 0.1, o.Config().Dropout)
	s := torch.NewScope()
	defer s.Close()
	b := &nn.Batch{InputIDs: s.FromInt64([]int64{0, 31, 47, 82, 2, 0, 15, 90, 11, 2}, 2, 5)}
	var lm, la []float64
	torch.NoGrad(func() {
		om, err := merged.Forward(s, b, false)
		require.NoError(t, err)
		oa, err := base.Forward(s, b, false)
		require.NoError(t, err)
		lm, la = om.Logits.Float64s(), oa.Logits.Float64s()
	})
	assert.InDeltaSlice(t, lm, la, 1e-4, "merged model = base + adapter")
}
