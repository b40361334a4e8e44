package blockllm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// newOpt builds an optimizer by method name for the toy model.
func newOpt(t testing.TB, method string, m nn.Model) Optimizer {
	var o Optimizer
	var err error
	adam := AdamConfig{WeightDecay: 0.01}
	switch method {
	case "adamw":
		o, err = NewAdamW(m, adam)
	case "blockllm":
		o, err = NewBlockLLM(m, BlockLLMConfig{Adam: adam, Sparsity: 0.9, Patience: 2})
	case "blockllm-bf16-master":
		o, err = NewBlockLLM(m, BlockLLMConfig{Adam: AdamConfig{WeightDecay: 0.01, MasterF32: true}, Sparsity: 0.8, Patience: 2, MaskFraction: 0.5})
	case "blockllm-mask":
		o, err = NewBlockLLM(m, BlockLLMConfig{Adam: adam, Sparsity: 0.8, Patience: 3, MaskFraction: 0.3, KeepMoments: true})
	case "badam":
		o, err = NewBAdam(m, BAdamConfig{Adam: adam, SwitchEvery: 3, Order: Random, Seed: 4})
	case "lisa":
		o, err = NewLISA(m, LISAConfig{Adam: adam, SwitchEvery: 3, Layers: 2, Seed: 4})
	default:
		err = fmt.Errorf("unknown method %q", method)
	}
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// trainCfg is the resume tests' configuration. BlockLLM runs get a tiny rate so that
// the loss plateaus and the trigger fires within a few steps.
func trainCfg(method string, steps int, dir string) TrainConfig {
	lr := 3e-2
	if strings.HasPrefix(method, "blockllm") {
		lr = 1e-5
	}
	return TrainConfig{Steps: steps, LR: lr, Schedule: Schedule{Kind: Cosine, Warmup: 2, MinRatio: 0.1},
		MaxGradNorm: 1, GradAccum: 2, CheckpointDir: dir, MaxShardBytes: 8192}
}

// TestResumeBitForBit: train N steps uninterrupted; train k steps, checkpoint, rebuild
// everything from a different random init, resume and continue: the losses and final
// weights are identical, bit for bit.
func TestResumeBitForBit(t *testing.T) {
	const total, cut = 11, 5
	for _, method := range []string{"adamw", "blockllm", "blockllm-mask", "blockllm-bf16-master", "badam", "lisa"} {
		t.Run(method, func(t *testing.T) {
			ctx := context.Background()
			opts := toyOpts{}
			if strings.Contains(method, "bf16") {
				opts.dt = torch.BF16
			}
			ref := newToy(t, opts, 21)
			ro := newOpt(t, method, ref)
			defer ro.Close()
			rres, err := Train(ctx, ref, ro, newFixedData(64, 2, 8, 7, 9), trainCfg(method, total, ""), "")
			require.NoError(t, err)
			require.Len(t, rres.Losses, total)

			dir := t.TempDir()
			a := newToy(t, opts, 21)
			ao := newOpt(t, method, a)
			ta, err := NewTrainer(a, ao, newFixedData(64, 2, 8, 7, 9), trainCfg(method, total, dir))
			require.NoError(t, err)
			for i := 0; i < cut; i++ {
				_, err := ta.Step()
				require.NoError(t, err)
			}
			ckpt := filepath.Join(dir, "mid")
			require.NoError(t, ta.SaveCheckpoint(ckpt))
			assert.FileExists(t, filepath.Join(ckpt, "model.safetensors.index.json"), "sharded weights")
			ao.Close()

			b := newToy(t, opts, 99) // different weights: all must come from the checkpoint
			bo := newOpt(t, method, b)
			defer bo.Close()
			res, err := Train(ctx, b, bo, newFixedData(64, 2, 8, 7, 9), trainCfg(method, total, ""), ckpt)
			require.NoError(t, err)
			if testDevice == torch.CPU {
				assert.Equal(t, rres.Losses, res.Losses, "loss trajectory")
				want := paramBytes(ref)
				for name, got := range paramBytes(b) {
					assert.True(t, bytes.Equal(want[name], got), "%s differs after resume", name)
				}
			} else { // CUDA kernels with atomics (embedding backward) are not bitwise reproducible
				assert.InDeltaSlice(t, rres.Losses, res.Losses, 1e-4, "loss trajectory")
				for _, p := range b.Parameters() {
					assert.True(t, torch.AllClose(p.T, ref.Get(p.Name).T, 1e-3, 1e-4), "%s differs after resume", p.Name)
				}
			}
			assert.Equal(t, ro.StateBytes(), bo.StateBytes())
			if bl, ok := ro.(*BlockLLM); ok {
				assert.Greater(t, bl.Selections(), 1, "the run reselected")
				assert.Equal(t, bl.Visits(), bo.(*BlockLLM).Visits())
			}
			if method == "adamw" || method == "lisa" {
				// the losses go down on this repeated data
				assert.Less(t, res.Losses[total-1], res.Losses[0])
			}
		})
	}
}

func TestTrainerLeak(t *testing.T) {
	for _, method := range []string{"adamw", "blockllm-mask", "lisa"} {
		m := newToy(t, toyOpts{}, 3)
		o := newOpt(t, method, m)
		tr, err := NewTrainer(m, o, newFixedData(64, 2, 8, 3, 1), TrainConfig{Steps: 10, LR: 1e-3, MaxGradNorm: 1})
		require.NoError(t, err)
		_, err = tr.Step()
		require.NoError(t, err)
		live := torch.LiveTensors()
		for i := 0; i < 2; i++ { // no reselection or switch within these steps
			_, err = tr.Step()
			require.NoError(t, err)
		}
		assert.Equal(t, live, torch.LiveTensors(), "%s: live handles after training steps", method)
		o.Close()
		setGrads(m.Parameters(), nil)
	}
}

// nanData poisons the batch: the toy's embedding row 0 is set to NaN and batches use it
// from step `at` on.
type nanData struct {
	*fixedData
	at, n int
}

func (d *nanData) Next(s *torch.Scope) (*nn.Batch, error) {
	d.n++
	ids := make([]int64, d.B*d.T) // token 0: the NaN row
	if d.n <= d.at {
		for i, v := range d.ids[d.n%len(d.ids)] {
			ids[i] = 1 + v%63 // never token 0
		}
	}
	t := s.FromInt64(ids, int64(d.B), int64(d.T))
	if d.dev != torch.CPU {
		t = t.ToDevice(torch.I64, d.dev)
	}
	return &nn.Batch{InputIDs: t}, nil
}

func TestNonFinite(t *testing.T) {
	m := newToy(t, toyOpts{}, 3)
	s := torch.NewScope()
	defer s.Close()
	torch.NoGrad(func() {
		s.In(m.Get("embed.weight").T).Select(0, 0).Fill(math.NaN())
	})
	o := newOpt(t, "blockllm", m)
	defer o.Close()
	dir := t.TempDir()
	var rec recorder
	cfg := TrainConfig{Steps: 10, LR: 1e-3, CheckpointDir: dir, CheckpointEvery: 2, Observers: []Observer{&rec}}
	res, err := Train(context.Background(), m, o, &nanData{fixedData: newFixedData(64, 2, 8, 3, 1), at: 3}, cfg, "")
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrNonFinite))
	assert.ErrorContains(t, err, "at step 4")
	assert.ErrorContains(t, err, "last good checkpoint: "+filepath.Join(dir, "step-00000002"))
	assert.Equal(t, 3, res.Step)
	assert.Equal(t, Failed, res.Status)
	require.NotEmpty(t, rec.events)
	last, ok := rec.events[len(rec.events)-1].(*ErrorEvent)
	require.True(t, ok, "the run ends with an ErrorEvent")
	assert.ErrorIs(t, last.Err, ErrNonFinite)
	assert.Equal(t, 3, last.Step)
	assert.Equal(t, filepath.Join(dir, "step-00000002"), last.Checkpoint)
	latest, err := LatestCheckpoint(dir)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "step-00000002"), latest)
	withGrad, err := GradParams(m.Parameters())
	require.NoError(t, err)
	assert.Empty(t, withGrad, "no gradient left behind")
}

func TestSchedule(t *testing.T) {
	c := Schedule{Kind: Cosine, Warmup: 10}
	assert.Equal(t, 0.0, c.Factor(0, 110))
	assert.InDelta(t, 0.5, c.Factor(5, 110), 1e-12)
	assert.InDelta(t, 1, c.Factor(10, 110), 1e-12)
	assert.InDelta(t, 0.5, c.Factor(60, 110), 1e-12)
	assert.InDelta(t, 0, c.Factor(110, 110), 1e-12)
	c.MinRatio = 0.1
	assert.InDelta(t, 0.1+0.9*0.5, c.Factor(60, 110), 1e-12)
	l := Schedule{Kind: Linear, Warmup: 10}
	assert.InDelta(t, 0.75, l.Factor(35, 110), 1e-12)
	assert.InDelta(t, 2e-3*0.75, l.LR(2e-3, 35, 110), 1e-15)
	k := Schedule{Kind: Constant, Warmup: 4}
	assert.InDelta(t, 0.25, k.Factor(1, 10), 1e-12)
	assert.Equal(t, 1.0, k.Factor(9, 10))
	assert.Error(t, Schedule{Warmup: -1}.Validate())
	assert.Error(t, Schedule{MinRatio: 2}.Validate())
	_, err := ParseScheduleKind("cosine")
	assert.NoError(t, err)
	_, err = ParseScheduleKind("exp")
	assert.ErrorContains(t, err, "unknown schedule")
}

// TestLRReachesOptimizer: the scheduled rate drives every update (the authors' code
// never passed it on): with lr 0 at warmup step 0 the weights do not move, later they do
// by the scheduled amount.
func TestLRReachesOptimizer(t *testing.T) {
	m := newToy(t, toyOpts{}, 3)
	o := newOpt(t, "blockllm", m)
	defer o.Close()
	tr, err := NewTrainer(m, o, newFixedData(64, 2, 8, 3, 1), TrainConfig{Steps: 4, LR: 1e-2, Schedule: Schedule{Kind: Linear, Warmup: 2}})
	require.NoError(t, err)
	w0 := paramBytes(m)
	st, err := tr.Step()
	require.NoError(t, err)
	assert.Equal(t, 0.0, st.LR)
	assert.Equal(t, w0, paramBytes(m), "lr 0 (warmup step 0): no change")
	st, err = tr.Step()
	require.NoError(t, err)
	assert.Equal(t, 0.5e-2, st.LR)
	assert.NotEqual(t, w0, paramBytes(m))
}

func TestMemoryString(t *testing.T) {
	assert.Contains(t, Memory{Weights: 2048, Peak: 3 << 20}.String(), "weights 2.00 KiB, grads 0 B, optimizer 0 B, peak 3.0 MiB")
}

func TestClipGrads(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	a := s.FromFloat32([]float32{3, 0}, 2)
	b := s.FromFloat32([]float32{0, 4}, 2)
	n := clipGrads([]*torch.Tensor{a, b}, 1)
	assert.InDelta(t, 5, n, 1e-6)
	assert.InDeltaSlice(t, []float64{0.6, 0}, a.Float64s(), 1e-6)
	assert.InDeltaSlice(t, []float64{0, 0.8}, b.Float64s(), 1e-6)
	n = clipGrads([]*torch.Tensor{a, b}, 10)
	assert.InDelta(t, 1, n, 1e-5)
	assert.InDeltaSlice(t, []float64{0.6, 0}, a.Float64s(), 1e-6, "no clipping below the limit")
}

// TestGradAccum: 2 micro-batches of 2 give the same update as one batch of 4.
func TestGradAccum(t *testing.T) {
	src := newFixedData(64, 2, 8, 2, 5)
	big := &fixedData{B: 4, T: 8, dev: testDevice, ids: [][]int64{append(append([]int64(nil), src.ids[0]...), src.ids[1]...)}}
	a := newToy(t, toyOpts{}, 8)
	b := newToy(t, toyOpts{}, 8)
	oa := newOpt(t, "adamw", a)
	ob := newOpt(t, "adamw", b)
	defer oa.Close()
	defer ob.Close()
	ta, err := NewTrainer(a, oa, src, TrainConfig{Steps: 1, LR: 1e-2, GradAccum: 2, MaxGradNorm: 0.5})
	require.NoError(t, err)
	tb, err := NewTrainer(b, ob, big, TrainConfig{Steps: 1, LR: 1e-2, MaxGradNorm: 0.5})
	require.NoError(t, err)
	sa, err := ta.Step()
	require.NoError(t, err)
	sb, err := tb.Step()
	require.NoError(t, err)
	assert.InDelta(t, sb.Loss, sa.Loss, 1e-6)
	assert.InDelta(t, sb.GradNorm, sa.GradNorm, 1e-5)
	for _, p := range a.Parameters() {
		assert.True(t, torch.AllClose(p.T, b.Get(p.Name).T, 1e-5, 1e-6), p.Name)
	}
}

func TestCheckpointsAndLog(t *testing.T) {
	m := newToy(t, toyOpts{}, 3)
	o := newOpt(t, "blockllm", m)
	defer o.Close()
	dir := t.TempDir()
	var rec recorder
	evals := 0
	cfg := TrainConfig{Steps: 7, LR: 1e-2, CheckpointDir: dir, CheckpointEvery: 2, KeepCheckpoints: 2,
		Observers: []Observer{&rec}, EvalEvery: 3,
		Eval: func(step int) (map[string]float64, error) {
			evals++
			return map[string]float64{"x": float64(step)}, nil
		},
		SaveExtra: func(d string) error { return os.WriteFile(filepath.Join(d, "config.json"), []byte("{}"), 0o644) }}
	res, err := Train(context.Background(), m, o, newFixedData(64, 2, 8, 3, 1), cfg, "")
	require.NoError(t, err)
	assert.Equal(t, Completed, res.Status)
	assert.Equal(t, 3, evals) // steps 3, 6, 7
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	assert.Equal(t, []string{"step-00000006", "step-00000007"}, got, "only the newest 2, no temporary dirs")
	for _, f := range []string{ModelFile, OptimizerFile, StateFile, "config.json"} {
		assert.FileExists(t, filepath.Join(dir, "step-00000007", f))
	}
	assert.Equal(t, filepath.Join(dir, "step-00000007"), res.Checkpoint)
	events := map[string]int{}
	for i, e := range rec.events {
		switch e := e.(type) {
		case *StartEvent:
			assert.Equal(t, 0, i, "the start comes first")
			assert.Equal(t, StartEvent{Method: "blockllm", Step: 0, Steps: 7}, *e)
			events["start"]++
		case *StepEvent:
			events["step"]++
			assert.Equal(t, events["step"], e.Step)
			assert.Positive(t, e.RunTokensPerSec)
		case *SelectionEvent:
			events["selection"]++
			assert.Positive(t, e.Memory.OptimizerState)
			assert.Positive(t, e.Memory.Weights)
			assert.NotEmpty(t, e.Selection.Names)
			next, ok := rec.events[i+1].(*StepEvent)
			require.True(t, ok, "a selection is followed by its step")
			assert.Equal(t, e.Step, next.Step)
		case *EvalEvent:
			events["eval"]++
			assert.Equal(t, float64(e.Step), e.Metrics["x"])
		case *CheckpointEvent:
			events["checkpoint"]++
			assert.Equal(t, checkpointPath(dir, e.Step), e.Path)
		case *SummaryEvent:
			events["summary"]++
			assert.Equal(t, len(rec.events)-1, i, "the summary comes last")
			assert.Equal(t, Completed, e.Status)
			assert.Equal(t, 7, e.Step)
			assert.Equal(t, res.Losses[6], e.Loss)
		default:
			t.Errorf("unexpected event %T", e)
		}
	}
	assert.Equal(t, 1, events["start"])
	assert.Equal(t, 7, events["step"])
	assert.Equal(t, 3, events["eval"])
	assert.Equal(t, 4, events["checkpoint"])
	assert.Equal(t, 1, events["summary"])
	assert.Positive(t, events["selection"])
	assert.Equal(t, events["selection"], res.Selections)
	maxOpt := int64(0)
	for _, e := range rec.events {
		if st, ok := e.(*StepEvent); ok {
			maxOpt = max(maxOpt, st.Memory.OptimizerState)
		}
	}
	assert.Equal(t, maxOpt, res.OptimizerBytes)
	assert.GreaterOrEqual(t, res.PeakBytes, res.Memory.Current)

	// resume refuses another method and a corrupt state file
	ao := newOpt(t, "adamw", m)
	defer ao.Close()
	_, err = Train(context.Background(), m, ao, newFixedData(64, 2, 8, 3, 1), cfg, res.Checkpoint)
	assert.ErrorContains(t, err, `written by method "blockllm", not "adamw"`)
	bad := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bad, StateFile), []byte("{"), 0o644))
	_, err = Train(context.Background(), m, o, newFixedData(64, 2, 8, 3, 1), cfg, bad)
	assert.ErrorContains(t, err, "blockllm: resume: "+filepath.Join(bad, StateFile))
}

func TestLayerwiseBaselines(t *testing.T) {
	m := newToy(t, toyOpts{taskHead: true}, 3)
	d := newFixedData(64, 2, 8, 1, 1)
	s := torch.NewScope()
	defer s.Close()
	b, _ := d.Next(s)

	ba, err := NewBAdam(m, BAdamConfig{SwitchEvery: 2, Order: Descending})
	require.NoError(t, err)
	defer ba.Close()
	var seen []int
	for i := 0; i < 6; i++ {
		withGrad := manualStep(t, m, ba, b, 1e-3)
		assert.Equal(t, names(ba.Trainable()), names(withGrad))
		seen = append(seen, ba.ActiveLayers()[0])
		assert.Contains(t, names(ba.Trainable()), "head.weight", "the task head always trains")
		// state: the current layer's 3 tensors and the head
		assert.Equal(t, 2*4*numel(ba.Trainable()), ba.StateBytes())
	}
	assert.Equal(t, []int{7, 7, 6, 6, 5, 5}, seen)

	li, err := NewLISA(m, LISAConfig{SwitchEvery: 1, Layers: 3, Seed: 1})
	require.NoError(t, err)
	defer li.Close()
	sets := map[string]bool{}
	for i := 0; i < 5; i++ {
		manualStep(t, m, li, b, 1e-3)
		layers := li.ActiveLayers()
		assert.Len(t, layers, 3)
		sets[fmt.Sprint(layers)] = true
		tr := names(li.Trainable())
		assert.Contains(t, tr, "embed.weight")
		assert.Contains(t, tr, "final.bias")
		assert.Len(t, tr, 3*3+3)
	}
	assert.Greater(t, len(sets), 1, "LISA resamples layers")
	_, err = NewLISA(m, LISAConfig{Layers: 9})
	assert.ErrorContains(t, err, "9 layers requested")
}

// ---- SIGINT: a helper process trains, is interrupted, and resumes ---------------------

const helperSteps = 12

func helperSetup(t testing.TB, dir string) (*Trainer, Optimizer) {
	m := newToy(t, toyOpts{}, 31)
	o := newOpt(t, "blockllm", m)
	tr, err := NewTrainer(m, o, &slowData{newFixedData(64, 2, 8, 5, 2)}, trainCfg("blockllm", helperSteps, dir))
	if err != nil {
		t.Fatal(err)
	}
	return tr, o
}

// slowData delays each batch so that a signal lands mid-run.
type slowData struct{ *fixedData }

func (d *slowData) Next(s *torch.Scope) (*nn.Batch, error) {
	if os.Getenv("BLOCKLLM_HELPER") != "" {
		time.Sleep(40 * time.Millisecond)
	}
	return d.fixedData.Next(s)
}

type helperTB struct{ testing.TB }

func (helperTB) Helper()          {}
func (helperTB) Cleanup(f func()) {}
func (helperTB) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, args...)
	os.Exit(2)
}

// helperMain runs in the child process: train (resuming from the newest checkpoint in
// BLOCKLLM_CKPT if any) until done or SIGINT; print progress and the final losses.
func helperMain() int {
	dir := os.Getenv("BLOCKLLM_CKPT")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	tr, o := helperSetup(helperTB{}, dir)
	defer o.Close()
	// a line per step tells the parent how far training got
	tr.cfg.Observers = []Observer{ObserverFunc(func(e Event) {
		if st, ok := e.(*StepEvent); ok {
			fmt.Printf("step %d\n", st.Step)
		}
	})}
	if last, _ := LatestCheckpoint(dir); last != "" {
		if err := tr.Resume(last); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("resumed", tr.StepCount())
	}
	fmt.Println("ready")
	res, err := tr.Run(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b, _ := json.Marshal(res.Losses)
	fmt.Printf("%s %d %s\n", res.Status, res.Step, b)
	return 0
}

func TestSIGINTResume(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	run := func(interrupt bool) string {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "BLOCKLLM_HELPER=1", "BLOCKLLM_CKPT="+dir)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		sc := bufio.NewScanner(out)
		var last string
		steps, sent := 0, false
		for sc.Scan() {
			last = sc.Text()
			if strings.HasPrefix(last, "step ") {
				steps++
			}
			if interrupt && !sent && steps == 2 { // interrupt mid-run, during step 3
				require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
				sent = true
			}
		}
		require.NoError(t, cmd.Wait(), "helper failed: %s", stderr.String())
		return last
	}
	line := run(true)
	f := strings.Fields(line)
	require.Len(t, f, 3, line)
	assert.Equal(t, "interrupted", f[0], line)
	step, err := strconv.Atoi(f[1])
	require.NoError(t, err)
	require.Less(t, step, helperSteps, "interrupted before the end")
	require.GreaterOrEqual(t, step, 2)
	latest, err := LatestCheckpoint(dir)
	require.NoError(t, err)
	assert.Equal(t, checkpointPath(dir, step), latest, "checkpoint written on SIGINT")

	line = run(false)
	f = strings.Fields(line)
	require.Len(t, f, 3, line)
	assert.Equal(t, "completed", f[0])
	assert.Equal(t, strconv.Itoa(helperSteps), f[1])
	var got []float64
	require.NoError(t, json.Unmarshal([]byte(f[2]), &got))

	// the same run uninterrupted, in this process
	tr, o := helperSetup(t, "")
	defer o.Close()
	res, err := tr.Run(context.Background())
	require.NoError(t, err)
	if testDevice == torch.CPU {
		assert.Equal(t, res.Losses, got, "interrupted + resumed run equals the uninterrupted one")
	} else {
		assert.InDeltaSlice(t, res.Losses, got, 1e-4, "interrupted + resumed run follows the uninterrupted one")
	}
}

// TestFrozenLayersSaveNoActivations: with the block in the top layer, the layers below
// it save no activations, so a step's peak memory is lower than with the block in the
// bottom layer.
func TestFrozenLayersSaveNoActivations(t *testing.T) {
	if testDevice != torch.CPU {
		t.Skip("peak statistics compared on the CPU allocator")
	}
	peak := func(layer int) int64 {
		m := newToy(t, toyOpts{V: 64, D: 64, L: 12}, 3)
		o, err := NewBlockLLM(m, BlockLLMConfig{Sparsity: 0.999, Eligible: []string{fmt.Sprintf(`^layers\.%d\.w1$`, layer)}})
		require.NoError(t, err)
		defer o.Close()
		return secondStepPeak(t, m, o, newFixedData(64, 8, 32, 2, 1), TrainConfig{Steps: 3, LR: 1e-3})
	}
	top, bottom := peak(11), peak(0)
	t.Logf("step peak above resident: block in layer 11 %d bytes, in layer 0 %d bytes", top, bottom)
	assert.Less(t, float64(top), 0.5*float64(bottom))
}

// secondStepPeak trains two steps (the first makes the selection and the moments) and
// returns the second step's CPU peak above what was resident before it.
func secondStepPeak(t *testing.T, m nn.Model, o Optimizer, data Data, cfg TrainConfig) int64 {
	t.Helper()
	tr, err := NewTrainer(m, o, data, cfg)
	require.NoError(t, err)
	_, err = tr.Step()
	require.NoError(t, err)
	torch.ResetPeakMemory(torch.CPU)
	cur, _ := torch.MemStats(torch.CPU)
	_, err = tr.Step()
	require.NoError(t, err)
	_, p := torch.MemStats(torch.CPU)
	return p - cur
}

// recorder is an Observer that keeps every event.
type recorder struct{ events []Event }

func (r *recorder) Observe(e Event) { r.events = append(r.events, e) }
