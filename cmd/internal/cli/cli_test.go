package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/cmd/internal/clitest"
	"github.com/blockllm/blockllm-go/data"
	"github.com/blockllm/blockllm-go/eval/report"
	"github.com/blockllm/blockllm-go/torch"
)

func TestMain(m *testing.M) {
	if err := torch.Init(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func runMain(run Run) (int, string) {
	var out, errb bytes.Buffer
	code := main("tool", run, nil, &out, &errb, false)
	return code, errb.String()
}

// TestMainStatus: exit statuses and messages of the scaffolding.
func TestMainStatus(t *testing.T) {
	code, msg := runMain(func(context.Context, []string, io.Writer, io.Writer) error { return nil })
	assert.Equal(t, 0, code)
	assert.Empty(t, msg)
	code, _ = runMain(func(context.Context, []string, io.Writer, io.Writer) error { return flag.ErrHelp })
	assert.Equal(t, 0, code, "-h is not an error")
	code, msg = runMain(func(context.Context, []string, io.Writer, io.Writer) error { return errors.New("bad flag") })
	assert.Equal(t, 1, code)
	assert.Equal(t, "tool: bad flag\n", msg)

	// A libtorch error raised as a panic is an error message, not a stack trace.
	code, msg = runMain(func(context.Context, []string, io.Writer, io.Writer) error {
		s := torch.NewScope()
		defer s.Close()
		s.FromFloat32([]float32{1, 2}, 2).Matmul(s.FromFloat32([]float32{1, 2, 3}, 3))
		return nil
	})
	assert.Equal(t, 1, code)
	assert.Contains(t, msg, "tool: torch: ")
	assert.NotContains(t, msg, "goroutine")
	assert.NotContains(t, msg, ".go:")

	code, msg = runMain(func(context.Context, []string, io.Writer, io.Writer) error { panic("boom") })
	assert.Equal(t, 2, code)
	assert.Contains(t, msg, "tool: internal error: boom")
	assert.NotContains(t, msg, "goroutine")
}

// TestInterruptedStatus: a run stopped by SIGTERM exits 143 (128 + 15), by SIGINT 130,
// with the signal and the hint in the message.
func TestInterruptedStatus(t *testing.T) {
	for _, c := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 143}, {syscall.SIGINT, 130}} {
		var errb bytes.Buffer
		code := main("tool", func(ctx context.Context, _ []string, _, _ io.Writer) error {
			require.NoError(t, syscall.Kill(os.Getpid(), c.sig))
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				return errors.New("no cancellation")
			}
			return Interrupted(ctx, "resume with --resume latest")
		}, nil, io.Discard, &errb, true)
		assert.Equal(t, c.code, code, errb.String())
		assert.Contains(t, errb.String(), "interrupted (received "+c.sig.String()+"): resume with --resume latest")
		assert.Contains(t, errb.String(), "stopping after the current step")
	}
}

func TestSplitList(t *testing.T) {
	assert.Equal(t, []string{"a", "b c", "d"}, SplitList(" a,,b c , d,"))
	assert.Nil(t, SplitList(" , "))
}

func TestSetup(t *testing.T) {
	dev, err := Setup(0, "cpu")
	require.NoError(t, err)
	assert.Equal(t, torch.CPU, dev)
	assert.GreaterOrEqual(t, torch.NumThreads(), 1)
	_, err = Setup(1, "cpu")
	require.NoError(t, err)
	assert.Equal(t, 1, torch.NumThreads())
	_, err = Setup(-1, "cpu")
	assert.ErrorContains(t, err, "--threads -1")
	_, err = Setup(0, "tpu")
	assert.ErrorContains(t, err, "--device")
	if !torch.CUDAAvailable() {
		_, err = Setup(0, "cuda:0")
		assert.ErrorContains(t, err, "no such CUDA device")
	}
	_, err = Setup(0, "cuda:99")
	assert.ErrorContains(t, err, "cuda:99")
	dt, err := ParseTrainDType("bf16")
	require.NoError(t, err)
	assert.Equal(t, torch.BF16, dt)
	_, err = ParseTrainDType("i64")
	assert.ErrorContains(t, err, "want f32 or bf16")
	torch.SetNumThreads(0)
}

func TestLoadTokenizer(t *testing.T) {
	_, b, err := LoadTokenizer("", "", data.LlamaTinyTokenizer)
	require.NoError(t, err)
	want, _ := data.Tokenizer(data.LlamaTinyTokenizer)
	assert.Equal(t, want, b, "the embedded demo tokenizer")
	_, _, err = LoadTokenizer("", "", "")
	assert.ErrorContains(t, err, "pass --tokenizer")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), want, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o644))
	for _, c := range [][2]string{{"", dir}, {"", filepath.Join(dir, "config.json")}, {dir, "llama-60m"}, {filepath.Join(dir, "tokenizer.json"), ""}} {
		tok, got, err := LoadTokenizer(c[0], c[1], "")
		require.NoError(t, err, c)
		assert.Equal(t, want, got)
		assert.Equal(t, 1024, tok.VocabSize())
	}
	_, _, err = LoadTokenizer("", "llama-60m", "")
	assert.ErrorContains(t, err, "--model llama-60m is a preset: pass --tokenizer")
	_, _, err = LoadTokenizer("", filepath.Join(dir, "nope"), "")
	assert.ErrorContains(t, err, "no such file")
	_, _, err = LoadTokenizer(t.TempDir(), "", "")
	assert.ErrorContains(t, err, "slow tokenizers")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o644))
	_, _, err = LoadTokenizer(filepath.Join(dir, "bad.json"), "", "")
	assert.ErrorContains(t, err, "bad.json")

	out := t.TempDir()
	require.NoError(t, WriteTokenizer(out, []byte("first")))
	require.NoError(t, WriteTokenizer(out, []byte("second")))
	b, _ = os.ReadFile(filepath.Join(out, "tokenizer.json"))
	assert.Equal(t, "first", string(b), "an existing tokenizer.json is kept")
}

// events is a short run's events: a start, a selection, two steps, an evaluation, a
// checkpoint and a summary.
func events() []blockllm.Event {
	mem := blockllm.Memory{Params: 10, Weights: 40, OptimizerState: 16, Peak: 3 << 20}
	st := blockllm.StepStats{Step: 1, Loss: 2.5, LR: 1e-3, Tokens: 64, Duration: 20 * time.Millisecond, Memory: mem}
	sel := blockllm.Selection{Index: 1, Names: []string{"a"}, Elements: 5, Budget: 5, Eligible: 10, Freed: 2048}
	st2 := st
	st2.Step, st2.Loss = 2, 2.25
	return []blockllm.Event{
		&blockllm.StartEvent{Method: "blockllm", Steps: 2},
		&blockllm.SelectionEvent{Step: 1, Selection: sel, Memory: mem},
		&blockllm.StepEvent{StepStats: st, RunTokensPerSec: 3200},
		&blockllm.StepEvent{StepStats: st2, RunTokensPerSec: 3200},
		&blockllm.EvalEvent{Step: 2, Metrics: map[string]float64{"val_ppl": 9}},
		&blockllm.CheckpointEvent{Step: 2, Path: "ck/step-00000002"},
		&blockllm.SummaryEvent{Status: blockllm.Completed, Step: 2, Loss: 2.25, TokensPerSec: 3200, Memory: mem, Checkpoint: "ck/step-00000002", Elapsed: time.Second},
	}
}

// TestJSONLines: the events become the JSON lines the commands have always written
// (the field sets are the golden ones of the commands' tests).
func TestJSONLines(t *testing.T) {
	var b bytes.Buffer
	j := &JSONLines{W: &b, Extra: map[string]any{"method": "blockllm"}}
	for _, e := range events() {
		j.Observe(e)
	}
	j.Observe(&blockllm.ErrorEvent{Step: 2, Err: errors.New("disk full"), Checkpoint: "ck/step-00000002"})
	require.NoError(t, j.Err())
	sets, err := clitest.FieldSets(b.String())
	require.NoError(t, err)
	assert.Equal(t, []string{"event", "method", "path", "step"}, sets["checkpoint"])
	assert.Equal(t, []string{"checkpoint", "error", "event", "method", "step"}, sets["error"])
	assert.Contains(t, sets["step"], "memory.optimizer_state_bytes")
	assert.Contains(t, sets["step"], "tokens_per_s")
	assert.Contains(t, sets["selection"], "selection.freed_bytes")
	assert.Contains(t, sets["summary"], "elapsed_s")
	assert.NotContains(t, sets, "start", "no line for the start (the commands never wrote one)")
	assert.Contains(t, b.String(), `"ms":20,"step":1,"tokens":64,"tokens_per_s":3200}`, "64 tokens in 20 ms")
	assert.Contains(t, b.String(), `"error":"disk full"`)

	j = &JSONLines{W: failWriter{}}
	j.Observe(events()[2])
	assert.Error(t, j.Err())
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

func TestProgress(t *testing.T) {
	var b bytes.Buffer
	p := &Progress{W: &b}
	for _, e := range events() {
		p.Observe(e)
	}
	out := b.String()
	assert.Contains(t, out, "selection 1 at step 1: 1 tensors, 5 of 10 eligible elements (budget 5), 0 new, 0 left, 2.00 KiB of state freed")
	assert.Contains(t, out, "loss 2.2500")
	assert.Contains(t, out, "completed after 2 steps: loss 2.2500, 3200 tokens/s")
	assert.True(t, strings.Count(out, "\n") >= 2)
}

func TestMemoryFlags(t *testing.T) {
	var m Memory
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	m.Register(fs, Memory{PadMLP: -1, FusedAdamW: true}, "-1: auto")
	require.NoError(t, fs.Parse([]string{"--recompute-mlp", "--loss-chunk", "32"}))
	assert.True(t, m.FusedAdamW)
	lo := m.LlamaOptions(torch.CPU, torch.F32, true)
	assert.Equal(t, 0, lo.PadMLP, "-1 is off on the CPU")
	assert.Equal(t, 64, m.LlamaOptions(torch.CUDA(0), torch.BF16, true).PadMLP, "-1 is 64 on CUDA")
	assert.True(t, lo.RecomputeMLP)
	assert.Equal(t, 32, lo.LossChunk)
	assert.Equal(t, []string{"fused-adamw", "recompute-mlp", "loss-chunk=32"}, m.Names())
	m.StepInBackward = true
	assert.ErrorContains(t, m.Validate(1, 1), "--step-in-backward needs --grad-clip 0")
	assert.NoError(t, m.Validate(0, 1))
}

// TestAdam8bitFlag: --adam-8bit is listed in the options, turns a command's default
// --fused-adamw off and is an error beside an explicit --fused-adamw.
func TestAdam8bitFlag(t *testing.T) {
	parse := func(args ...string) (*Memory, error) {
		var m Memory
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		m.Register(fs, Memory{FusedAdamW: true}, "")
		require.NoError(t, fs.Parse(args))
		return &m, m.Validate(0, 1)
	}
	m, err := parse("--adam-8bit")
	require.NoError(t, err)
	assert.True(t, m.Adam8bit)
	assert.False(t, m.FusedAdamW, "the default fused AdamW gives way")
	assert.Equal(t, []string{"adam-8bit"}, m.Names())
	_, err = parse("--adam-8bit", "--fused-adamw")
	assert.ErrorContains(t, err, "--fused-adamw does not apply with --adam-8bit")
	m, err = parse()
	require.NoError(t, err)
	assert.True(t, m.FusedAdamW)
	assert.Equal(t, []string{"fused-adamw"}, m.Names())
}

func TestMethodsFlags(t *testing.T) {
	var m Methods
	var sel Selection
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	m.Register(fs, "", "", "")
	sel.Register(fs)
	require.NoError(t, fs.Parse([]string{"--method", "adamw,blockllm", "--sparsity", "0.8", "--eligible", "a, b"}))
	sel.Parsed(fs)
	cs, err := m.Configs(blockllm.AdamConfig{WeightDecay: 0.1}, 7, &sel, 1000)
	require.NoError(t, err)
	require.Len(t, cs, 2)
	assert.Equal(t, "adamw", cs[0].Method)
	assert.Equal(t, 0.8, cs[1].BlockLLM.Sparsity)
	assert.Equal(t, []string{"a", "b"}, cs[1].BlockLLM.Eligible)
	assert.Equal(t, 0.1, cs[1].Adam.WeightDecay)
	assert.Equal(t, uint64(7), cs[1].Seed)
	assert.Equal(t, "", cs[1].Variant)
	m.List = "sgd"
	_, err = m.Configs(blockllm.AdamConfig{}, 0, &sel, 1000)
	assert.ErrorContains(t, err, "--method")
	m.Sparsity = 1
	assert.ErrorContains(t, m.Validate(), "--sparsity 1 outside")
}

// TestSelectionPresetAndOverrides: the reference preset sets the authors' switches; each
// flag given overrides its one setting; bad values are refused by flag name.
func TestSelectionPresetAndOverrides(t *testing.T) {
	parse := func(args ...string) (blockllm.BlockLLMConfig, error) {
		var sel Selection
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		sel.Register(fs)
		require.NoError(t, fs.Parse(args))
		sel.Parsed(fs)
		return sel.Apply(blockllm.BlockLLMConfig{Sparsity: 0.9}, 500, nil)
	}
	d, err := parse()
	require.NoError(t, err)
	assert.Equal(t, blockllm.PenaltyCount, d.Penalty)
	assert.Equal(t, 1, d.CheckEvery)
	assert.Empty(t, DescribeFlags(d))
	r, err := parse("--blockllm-preset", "reference")
	require.NoError(t, err)
	assert.Equal(t, 500, r.CheckEvery)
	assert.True(t, r.StrictTrigger)
	assert.Equal(t, blockllm.PenaltyExpFreq, r.Penalty)
	assert.Equal(t, blockllm.BudgetUnder, r.Budget)
	assert.Equal(t, blockllm.FirstRandom, r.FirstBlock)
	assert.Equal(t, []string{"embed", "lm_head"}, r.Exclude)
	assert.True(t, r.HeadsEligible)
	assert.Equal(t, 0.9, r.Sparsity, "sparsity is not part of the preset")
	o, err := parse("--blockllm-preset", "reference", "--first-block", "norm", "--check-every", "7", "--trigger", "ge", "--keep-moments")
	require.NoError(t, err)
	assert.Equal(t, blockllm.FirstNorm, o.FirstBlock)
	assert.Equal(t, 7, o.CheckEvery)
	assert.False(t, o.StrictTrigger)
	assert.True(t, o.KeepMoments)
	assert.Equal(t, blockllm.PenaltyExpFreq, o.Penalty, "the rest of the preset stays")
	p, err := parse("--penalty", "none", "--budget", "under", "--mask", "0.25", "--score", "per-element", "--exclude", "norm", "--heads", "eligible")
	require.NoError(t, err)
	assert.Equal(t, "--penalty none --budget under --mask 0.25 --score per-element --exclude norm --heads eligible", Describe(p))
	for _, c := range [][]string{{"--penalty", "square"}, {"--budget", "x"}, {"--first-block", "y"}, {"--trigger", "lt"},
		{"--heads", "z"}, {"--score", "w"}, {"--blockllm-preset", "paper"}, {"--mask", "1.5"}, {"--check-every", "-1"}} {
		_, err := parse(c...)
		assert.ErrorContains(t, err, c[0], c)
	}
}

// TestVerdict: variants are judged against the first in pooled standard deviations;
// identical results and single-seed runs are never called better or worse.
func TestVerdict(t *testing.T) {
	rows := []report.AblationRow{
		{Variant: "base", Seeds: 3, Metric: 100, MetricSD: 2},
		{Variant: "better", Seeds: 3, Metric: 90, MetricSD: 2},
		{Variant: "worse", Seeds: 3, Metric: 110, MetricSD: 2},
		{Variant: "close", Seeds: 3, Metric: 101, MetricSD: 2},
		{Variant: "same", Seeds: 3, Metric: 100, MetricSD: 2},
	}
	v := Verdict(rows, "val PPL", true)
	line := func(name string) string {
		for _, l := range strings.Split(v, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == name {
				return l
			}
		}
		t.Fatalf("no line for %s in\n%s", name, v)
		return ""
	}
	assert.Contains(t, line("better"), "+10.00 (+5.0 pooled sd): better beyond the seed spread")
	assert.Contains(t, line("worse"), "-10.00 (-5.0 pooled sd): worse beyond the seed spread")
	assert.Contains(t, line("close"), "within the seed spread")
	assert.Contains(t, line("same"), "the same result")
	assert.Less(t, strings.Index(v, "better"), strings.Index(v, "close"), "best first")

	one := []report.AblationRow{
		{Variant: "base", Seeds: 1, Metric: 100},
		{Variant: "lower", Seeds: 1, Metric: 90},
		{Variant: "higher", Seeds: 1, Metric: 110},
		{Variant: "equal", Seeds: 1, Metric: 100},
	}
	v = Verdict(one, "val PPL", true)
	assert.Contains(t, line("lower"), "one seed: no spread to judge by")
	assert.Contains(t, line("higher"), "-10.00 (-Inf pooled sd): one seed")
	assert.Contains(t, line("equal"), "the same result")
	assert.NotContains(t, v, "beyond")

	// scores: higher is better
	v = Verdict([]report.AblationRow{{Variant: "base", Seeds: 2, Metric: 80, MetricSD: 1}, {Variant: "up", Seeds: 2, Metric: 85, MetricSD: 1}}, "score", false)
	assert.Contains(t, line("up"), "+5.00 (+5.0 pooled sd): better beyond the seed spread")
}

// TestVerdictNoSpread: seeds that all give the same result (the seed changes nothing)
// leave no spread to judge a difference by.
func TestVerdictNoSpread(t *testing.T) {
	v := Verdict([]report.AblationRow{
		{Variant: "base", Seeds: 3, Metric: 81.17},
		{Variant: "gt", Seeds: 3, Metric: 81.53},
		{Variant: "keep", Seeds: 3, Metric: 80.61},
	}, "val PPL", true)
	assert.Contains(t, v, "gt")
	assert.Contains(t, v, "-0.36 (-Inf pooled sd): every seed gave the same result")
	assert.Contains(t, v, "+0.56 (+Inf pooled sd): every seed gave the same result")
	assert.NotContains(t, v, "beyond")
}
