package blockllm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/hf/roberta"
	"github.com/blockllm/blockllm-go/torch"
)

// Determinism: identical runs give identical weights, bit for bit, in one process, in
// separate processes, and across an interruption and resume. Before the shim kept the
// autograd order independent of the OS thread a cgo call lands on (see ThreadSync in
// cgo/csrc/shim.cpp), two runs of the tiny Llama differed at float32 rounding now and
// then: the gradient of the normed hidden state feeding q, k and v was summed in an
// order that depended on the Go scheduler.

// detSteps is the length of every determinism run.
const detSteps = 24

// detCase is one short training run.
type detCase struct {
	Name   string
	Model  string // "llama": the llama-tiny config, random init, fortunes (pretrain path); "roberta": the roberta-tiny-sst2 fixture, a classification task (fine-tune path)
	Method string // "adamw" or "blockllm" (Patience 2: it reselects within the run)
	Opts   llama.Options
}

var detCases = []detCase{
	{Name: "llama-adamw", Model: "llama", Method: "adamw"},
	{Name: "llama-blockllm-fused", Model: "llama", Method: "blockllm", Opts: llama.Options{Recompute: true, LossChunk: 8, PadMLP: 64}},
	{Name: "roberta-adamw", Model: "roberta", Method: "adamw"},
	{Name: "roberta-blockllm", Model: "roberta", Method: "blockllm"},
}

// detResult is what a run leaves: every parameter's bytes, the losses, the held-out
// loss after the last step (the perplexity's logarithm) and BlockLLM's selection count.
type detResult struct {
	Weights    map[string][]byte
	Losses     []float64
	EvalLoss   float64
	Selections int
	Status     string
	Step       int
}

// detSetup builds the model, optimizer, data and trainer of c (checkpoints under dir
// when set) and a held-out evaluation.
func detSetup(t *testing.T, c detCase, dir string) (*Trainer, nn.Model, Optimizer, func() float64) {
	t.Helper()
	var m nn.Model
	var data Data
	var held *nn.Batch
	hs := torch.NewScope()
	t.Cleanup(hs.Close)
	lr := 1e-2
	switch c.Model {
	case "llama":
		cfg, err := config.LoadLlama(filepath.Join(fixtureRoot(), "llama-tiny"))
		require.NoError(t, err)
		o := c.Opts
		o.Device = testDevice
		lm, err := llama.New(cfg, o, 7)
		require.NoError(t, err)
		t.Cleanup(lm.Close)
		m, data = lm, fortunesData(t, 2, 32)
		rt, err := NewRandomTokens(cfg.VocabSize, 4, 32, 99, testDevice)
		require.NoError(t, err)
		held, err = rt.Next(hs)
		require.NoError(t, err)
	case "roberta":
		rm, err := roberta.Load(filepath.Join(fixtureRoot(), "roberta-tiny-sst2"), roberta.Options{Device: testDevice})
		require.NoError(t, err)
		t.Cleanup(rm.Close)
		cd := newClassData(rm.Config().VocabSize, 4, 12, 6, 3)
		m, data = rm, cd
		held = newClassData(rm.Config().VocabSize, 8, 12, 1, 77).batch(hs, 0)
		lr = 2e-3
	default:
		t.Fatalf("unknown model %q", c.Model)
	}
	var opt Optimizer
	var err error
	adam := AdamConfig{WeightDecay: 0.01}
	if c.Method == "adamw" {
		opt, err = NewAdamW(m, adam)
	} else {
		opt, err = NewBlockLLM(m, BlockLLMConfig{Adam: adam, Sparsity: 0.7, Patience: 2})
	}
	require.NoError(t, err)
	t.Cleanup(func() { opt.Close() })
	tr, err := NewTrainer(m, opt, data, TrainConfig{Steps: detSteps, LR: lr,
		Schedule: Schedule{Kind: Cosine, Warmup: 3, MinRatio: 0.1}, MaxGradNorm: 1, CheckpointDir: dir})
	require.NoError(t, err)
	eval := func() float64 {
		var l float64
		torch.NoGrad(func() {
			require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
				out, err := m.Forward(s, held, false)
				if err != nil {
					return err
				}
				l = out.Loss.Item()
				return nil
			}))
		})
		return l
	}
	return tr, m, opt, eval
}

func (r *detResult) collect(tr *Trainer, m nn.Model, opt Optimizer, eval func() float64) {
	r.Weights = paramBytes(m)
	r.Losses = tr.Losses()
	r.EvalLoss = eval()
	r.Step = tr.StepCount()
	if bl, ok := opt.(*BlockLLM); ok {
		r.Selections = bl.Selections()
	}
}

// detRun trains c for detSteps steps.
func detRun(t *testing.T, c detCase) detResult {
	t.Helper()
	tr, m, opt, eval := detSetup(t, c, "")
	res, err := tr.Run(context.Background())
	require.NoError(t, err)
	r := detResult{Status: res.Status.String()}
	r.collect(tr, m, opt, eval)
	return r
}

// requireSame compares two results bit for bit.
func requireSame(t *testing.T, want, got detResult, what string) {
	t.Helper()
	require.Equal(t, len(want.Weights), len(got.Weights), what)
	var differ []string
	for name, w := range want.Weights {
		if !bytes.Equal(w, got.Weights[name]) {
			differ = append(differ, name)
		}
	}
	assert.Empty(t, differ, "%s: tensors whose bytes differ", what)
	assert.Equal(t, want.Losses, got.Losses, "%s: losses", what)
	// exact float64 equality: the perplexity exp(loss) agrees to the last digit
	assert.Equal(t, want.EvalLoss, got.EvalLoss, "%s: held-out loss", what)
	assert.Equal(t, want.Selections, got.Selections, "%s: selections", what)
}

// TestIdenticalRuns: each case (tiny Llama pretraining and RoBERTa fine-tuning, AdamW
// and BlockLLM with reselections) runs once, then twice more at the same time in two
// goroutines (the Go scheduler moves them between OS threads), and in two other
// processes (not with -short): every run ends with the same weights, losses and
// held-out loss, bit for bit.
func TestIdenticalRuns(t *testing.T) {
	if testDevice != torch.CPU {
		t.Skip("bitwise reproducibility is a CPU property (CUDA kernels with atomics are not reproducible)")
	}
	// the other processes (not with -short) start first and run alongside this one
	var children []*detChild
	if !testing.Short() {
		for range 2 {
			children = append(children, startDetChild(t, detChildSpec{Mode: "run"}, ""))
		}
	}
	ref := map[string]detResult{}
	for _, c := range detCases {
		ref[c.Name] = detReference(t, c)
		r := ref[c.Name]
		require.Len(t, r.Losses, detSteps, c.Name)
		if c.Method == "blockllm" {
			assert.GreaterOrEqual(t, r.Selections, 2, "%s: the run reselected", c.Name)
		}
		if c.Method == "adamw" {
			assert.Less(t, r.Losses[detSteps-1], r.Losses[0], "%s: training lowers the loss", c.Name)
		}
	}
	for _, c := range detCases {
		var wg sync.WaitGroup
		got := make([]detResult, 2)
		for i := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i] = detRun(t, c)
			}()
		}
		wg.Wait()
		for i, g := range got {
			requireSame(t, ref[c.Name], g, fmt.Sprintf("%s, concurrent run %d", c.Name, i+1))
		}
	}
	for i, ch := range children {
		res := ch.wait(t)
		for _, c := range detCases {
			g, ok := res[c.Name]
			require.True(t, ok, "process %d: no result for %s", i+1, c.Name)
			requireSame(t, ref[c.Name], g, fmt.Sprintf("%s, process %d", c.Name, i+1))
		}
	}
}

// TestLlamaResumeBitForBit: the tiny Llama (AdamW, and BlockLLM with the fused loss and
// recomputed layers) trained with a checkpoint at step 10, then resumed in a model whose
// weights were overwritten, ends bit for bit where the uninterrupted run ends (weights,
// losses, held-out loss); and so does a run interrupted by SIGINT in another process and
// resumed in a third (not with -short).
func TestLlamaResumeBitForBit(t *testing.T) {
	if testDevice != torch.CPU {
		t.Skip("bitwise reproducibility is a CPU property")
	}
	cases := detCases[:2]
	// SIGINT in another process, started first so that it runs alongside
	dir := t.TempDir()
	var names []string
	for _, c := range cases {
		names = append(names, c.Name)
	}
	var first *detChild
	if !testing.Short() {
		first = startDetChild(t, detChildSpec{Mode: "sigint", Cases: names, SigintAt: 10}, dir)
	}
	for _, c := range cases {
		want := detReference(t, c)
		tr, _, opt, _ := detSetup(t, c, "")
		for i := 0; i < 10; i++ {
			_, err := tr.Step()
			require.NoError(t, err)
		}
		ckpt := filepath.Join(t.TempDir(), "mid")
		require.NoError(t, tr.SaveCheckpoint(ckpt))
		opt.Close()
		tr2, m2, opt2, eval2 := detSetup(t, c, "")
		perturb(t, m2) // all weights must come from the checkpoint
		require.NoError(t, tr2.Resume(ckpt))
		res, err := tr2.Run(context.Background())
		require.NoError(t, err)
		assert.Equal(t, Completed, res.Status)
		var got detResult
		got.collect(tr2, m2, opt2, eval2)
		requireSame(t, want, got, c.Name+", resumed in process")
	}
	if first == nil {
		return // -short: no other processes
	}
	interrupted := first.wait(t)
	for _, c := range cases {
		out := interrupted[c.Name]
		require.Equal(t, "interrupted", out.Status, "%s: the first process was interrupted", c.Name)
		require.Greater(t, out.Step, 0)
		require.Less(t, out.Step, detSteps)
		latest, err := LatestCheckpoint(filepath.Join(dir, c.Name))
		require.NoError(t, err)
		assert.Equal(t, checkpointPath(filepath.Join(dir, c.Name), out.Step), latest, "%s: checkpoint written on SIGINT", c.Name)
	}
	resumed := startDetChild(t, detChildSpec{Mode: "resume", Cases: names}, dir).wait(t)
	for _, c := range cases {
		got := resumed[c.Name]
		assert.Equal(t, "completed", got.Status)
		requireSame(t, detReference(t, c), got, c.Name+", interrupted by SIGINT and resumed in another process")
	}
}

// TestDeterministicModeCPU: libtorch's deterministic-algorithms mode (what a
// --deterministic flag turns on for CUDA) changes nothing on the CPU: every op of the
// training steps runs in it, and the runs end with the same bits as without it.
func TestDeterministicModeCPU(t *testing.T) {
	if testDevice != torch.CPU {
		t.Skip("compares with the CPU runs")
	}
	want := map[string]detResult{}
	for _, c := range detCases {
		want[c.Name] = detReference(t, c)
	}
	torch.SetDeterministic(true, false)
	defer torch.SetDeterministic(false, false)
	for _, c := range detCases {
		requireSame(t, want[c.Name], detRun(t, c), c.Name+", deterministic mode")
	}
}

var (
	detRefMu sync.Mutex
	detRefs  = map[string]detResult{}
)

// detReference is the first run of c in this process (made once, shared by the tests).
func detReference(t *testing.T, c detCase) detResult {
	t.Helper()
	detRefMu.Lock()
	defer detRefMu.Unlock()
	if r, ok := detRefs[c.Name]; ok {
		return r
	}
	r := detRun(t, c)
	detRefs[c.Name] = r
	return r
}

// perturb overwrites every weight with other values.
func perturb(t *testing.T, m nn.Model) {
	g := torch.NewGenerator(12345, torch.CPU)
	defer g.Close()
	require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
		torch.NoGrad(func() {
			for _, p := range m.Parameters() {
				r := s.Randn(p.T.Shape(), torch.F32, torch.CPU, g)
				s.In(p.T).CopyFrom(r)
			}
		})
		return nil
	}))
}

// ---- child processes ---------------------------------------------------------------

// detChildSpec tells TestDeterminismChild what to do: "run" every case; "sigint" each of
// Cases in turn with checkpoints in Dir/<case>, raising SIGINT in itself when the data
// source is asked for batch SigintAt+1; "resume" each of Cases from the newest
// checkpoint in Dir/<case>.
type detChildSpec struct {
	Mode     string
	Cases    []string
	SigintAt int
	Dir      string
	Out      string
}

type detChild struct {
	cmd    *exec.Cmd
	out    string
	stderr bytes.Buffer
}

func startDetChild(t *testing.T, spec detChildSpec, dir string) *detChild {
	t.Helper()
	spec.Dir = dir
	spec.Out = filepath.Join(t.TempDir(), "result.gob")
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	ch := &detChild{out: spec.Out}
	ch.cmd = exec.Command(os.Args[0], "-test.run=^TestDeterminismChild$", "-test.count=1")
	ch.cmd.Env = append(os.Environ(), "BLOCKLLM_DETERM_CHILD="+string(b))
	ch.cmd.Stderr = &ch.stderr
	ch.cmd.Stdout = &ch.stderr
	require.NoError(t, ch.cmd.Start())
	return ch
}

func (ch *detChild) wait(t *testing.T) map[string]detResult {
	t.Helper()
	require.NoError(t, ch.cmd.Wait(), "child process: %s", ch.stderr.String())
	f, err := os.Open(ch.out)
	require.NoError(t, err, "child process: %s", ch.stderr.String())
	defer f.Close()
	var res map[string]detResult
	require.NoError(t, gob.NewDecoder(bufio.NewReader(f)).Decode(&res))
	return res
}

// TestDeterminismChild is the other process of the determinism tests (it does nothing
// unless BLOCKLLM_DETERM_CHILD is set): it trains as its spec says and writes the
// results for the parent to compare.
func TestDeterminismChild(t *testing.T) {
	env := os.Getenv("BLOCKLLM_DETERM_CHILD")
	if env == "" {
		t.Skip("the child process of TestIdenticalRuns and TestLlamaResumeBitForBit")
	}
	var spec detChildSpec
	require.NoError(t, json.Unmarshal([]byte(env), &spec))
	res := map[string]detResult{}
	find := func(name string) detCase {
		for _, c := range detCases {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("unknown case %q", name)
		return detCase{}
	}
	switch spec.Mode {
	case "run":
		for _, c := range detCases {
			res[c.Name] = detRun(t, c)
		}
	case "sigint", "resume":
		for _, name := range spec.Cases {
			c := find(name)
			dir := filepath.Join(spec.Dir, c.Name)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			tr, m, opt, eval := detSetup(t, c, dir)
			if spec.Mode == "sigint" {
				tr.data = &sigintData{Data: tr.data, at: spec.SigintAt}
			} else {
				last, err := LatestCheckpoint(dir)
				require.NoError(t, err)
				require.NotEmpty(t, last, "%s: no checkpoint to resume from", c.Name)
				require.NoError(t, tr.Resume(last))
			}
			run, err := tr.Run(ctx)
			stop()
			require.NoError(t, err)
			r := detResult{Status: run.Status.String()}
			r.collect(tr, m, opt, eval)
			res[c.Name] = r
		}
	default:
		t.Fatalf("unknown mode %q", spec.Mode)
	}
	f, err := os.Create(spec.Out)
	require.NoError(t, err)
	require.NoError(t, gob.NewEncoder(f).Encode(res))
	require.NoError(t, f.Close())
}

// sigintData sends SIGINT to this process when batch at+1 is asked for: the trainer
// stops at a step boundary after it (the signal arrives asynchronously) and writes a
// checkpoint, as on a user's Ctrl-C.
type sigintData struct {
	Data
	at, n int
}

func (d *sigintData) Next(s *torch.Scope) (*nn.Batch, error) {
	d.n++
	if d.n == d.at+1 {
		if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
			return nil, err
		}
	}
	return d.Data.Next(s)
}

// ---- a seeded classification task --------------------------------------------------

// classData cycles through n seeded batches of B sequences of T token ids (3 and up, as
// after special tokens) with labels 0/1; its state is the batch position.
type classData struct {
	ids    [][]int64
	labels [][]int64
	B, T   int
	pos    int
}

func newClassData(vocab, B, T, n int, seed uint64) *classData {
	r := rand.New(rand.NewPCG(seed, 1))
	d := &classData{B: B, T: T}
	for i := 0; i < n; i++ {
		ids := make([]int64, B*T)
		lab := make([]int64, B)
		for b := 0; b < B; b++ {
			lab[b] = int64(r.IntN(2))
			for j := 0; j < T; j++ {
				// the label shows in the tokens: a learnable task
				ids[b*T+j] = int64(3 + r.IntN((vocab-3)/2) + int(lab[b])*((vocab-3)/2))
			}
		}
		d.ids, d.labels = append(d.ids, ids), append(d.labels, lab)
	}
	return d
}

func (d *classData) batch(s *torch.Scope, i int) *nn.Batch {
	i %= len(d.ids)
	return &nn.Batch{InputIDs: s.FromInt64(d.ids[i], int64(d.B), int64(d.T)).ToDevice(torch.I64, testDevice),
		Labels: s.FromInt64(d.labels[i], int64(d.B)).ToDevice(torch.I64, testDevice)}
}

func (d *classData) Next(s *torch.Scope) (*nn.Batch, error) {
	var b *nn.Batch
	err := torch.Try(func() { b = d.batch(s, d.pos) })
	d.pos++
	return b, err
}

func (d *classData) State() (json.RawMessage, error) { return json.Marshal(d.pos) }

func (d *classData) Restore(b json.RawMessage) error { return json.Unmarshal(b, &d.pos) }
