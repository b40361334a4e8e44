package blockllm

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
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
	"github.com/blockllm/blockllm-go/torch/dist"
)

// Data-parallel tests: two worker processes (this test binary, re-executed with
// BLOCKLLM_DP_SCENARIO set) train the toy model over Gloo on 127.0.0.1, each on its half
// of every global batch, and write their final weights; the test compares them with
// each other and with one process training on the whole batches.

const (
	dpSteps   = 8
	dpBatch   = 2 // per rank
	dpBatches = 6 // distinct global batches
)

// dpScenario is what a worker (or the single-process reference) runs.
type dpScenario struct {
	Method string `json:"method"`
	Shard  bool   `json:"shard"`   // ShardState (ZeRO-1)
	Ckpt   string `json:"ckpt"`    // checkpoint directory
	StopAt int    `json:"stop_at"` // cancel the run after this step (0: never)
	Resume bool   `json:"resume"`
	Slow   bool   `json:"slow"` // many slow steps (the kill test)
}

// dpResult is what a run reports.
type dpResult struct {
	Weights    []byte   `json:"weights"`
	Selections []string `json:"selections"`
	StateBytes int64    `json:"state_bytes"`
	Step       int      `json:"step"`
}

// shardData hands rank r rows r*B..(r+1)*B-1 of each global batch of src.
type shardData struct {
	src        *fixedData
	rank, size int
}

func (d *shardData) Next(s *torch.Scope) (*nn.Batch, error) {
	b, err := d.src.Next(s)
	if err != nil || d.size == 1 {
		return b, err
	}
	B := b.InputIDs.Size(0) / int64(d.size)
	return &nn.Batch{InputIDs: b.InputIDs.Narrow(0, int64(d.rank)*B, B)}, nil
}
func (d *shardData) State() (json.RawMessage, error) { return d.src.State() }
func (d *shardData) Restore(r json.RawMessage) error { return d.src.Restore(r) }

// dpOptimizer makes the scenario's optimizer; a "-8bit" suffix gives it 8-bit moments for
// every tensor (the toy's tensors are small).
func dpOptimizer(t testing.TB, method string, m nn.Model) Optimizer {
	var o Optimizer
	var err error
	var adam AdamConfig
	if base, ok := strings.CutSuffix(method, "-8bit"); ok {
		method, adam.EightBit, adam.EightBitMinSize = base, true, 1
	}
	switch method {
	case "adamw":
		adam.WeightDecay = 0.01
		o, err = NewAdamW(m, adam)
	case "blockllm":
		o, err = NewBlockLLM(m, BlockLLMConfig{Sparsity: 0.7, Patience: 1, Eligible: []string{".*"}, Adam: adam})
	case "badam":
		o, err = NewBAdam(m, BAdamConfig{SwitchEvery: 2, Order: Random, Seed: 3, Adam: adam})
	default:
		t.Fatalf("unknown method %q", method)
	}
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// dpRun trains the scenario with group g (nil: one process on the whole batches).
func dpRun(t testing.TB, sc dpScenario, g *dist.Group) dpResult {
	rank, size := 0, 1
	if g != nil {
		rank, size = g.Rank(), g.Size()
	}
	m := newToy(t, toyOpts{}, 11)
	o := dpOptimizer(t, sc.Method, m)
	defer o.Close()
	steps := dpSteps
	var d Data = &shardData{src: newFixedData(64, dpBatch*2, 8, dpBatches, 5), rank: rank, size: size}
	if sc.Slow {
		steps = 100000
		d = &slowData{d.(*shardData).src}
	}
	var sels []string
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := TrainConfig{Steps: steps, LR: 3e-2, MaxGradNorm: 1, Dist: g, ShardState: sc.Shard, CheckpointDir: sc.Ckpt,
		Observers: []Observer{ObserverFunc(func(e Event) {
			switch e := e.(type) {
			case *SelectionEvent:
				sels = append(sels, fmt.Sprintf("%d:%s", e.Step, strings.Join(e.Selection.Names, ",")))
			case *StepEvent:
				if sc.Slow {
					fmt.Printf("step %d\n", e.Step)
				}
				if e.Step == sc.StopAt {
					cancel()
				}
			}
		})}}
	if strings.HasPrefix(sc.Method, "blockllm") {
		// a small rate: the loss then follows the batches, not the training, and the
		// trigger fires within the steps
		cfg.MaxGradNorm, cfg.LR = 0, 1e-3
	}
	tr, err := NewTrainer(m, o, d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Resume {
		last, err := LatestCheckpoint(sc.Ckpt)
		if err != nil || last == "" {
			t.Fatalf("no checkpoint to resume: %v", err)
		}
		if err := tr.Resume(last); err != nil {
			t.Fatal(err)
		}
	}
	res, err := tr.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var w []byte
	for _, p := range m.Parameters() {
		w = append(w, p.T.Bytes()...)
	}
	return dpResult{Weights: w, Selections: sels, StateBytes: o.StateBytes(), Step: res.Step}
}

// dpWorker is the body of a worker process.
func dpWorker() int {
	var sc dpScenario
	if err := json.Unmarshal([]byte(os.Getenv("BLOCKLLM_DP_SCENARIO")), &sc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	torch.SetNumThreads(1)
	g, err := dist.Init()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	res := dpRun(helperTB{}, sc, g)
	b, _ := json.Marshal(res)
	if err := os.WriteFile(filepath.Join(os.Getenv("BLOCKLLM_DP_OUT"), fmt.Sprintf("rank-%d.json", g.Rank())), b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := g.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type dpProc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	stdout *bytes.Buffer
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startDP starts the two workers of a scenario, writing their results into out.
func startDP(t *testing.T, sc dpScenario, out string) []*dpProc {
	b, _ := json.Marshal(sc)
	port := freePort(t)
	var ps []*dpProc
	for r := 0; r < 2; r++ {
		p := &dpProc{cmd: exec.Command(os.Args[0], "-test.run=^$"), stdout: &bytes.Buffer{}}
		p.cmd.Env = append(os.Environ(), "BLOCKLLM_DP_SCENARIO="+string(b), "BLOCKLLM_DP_OUT="+out,
			"RANK="+strconv.Itoa(r), "LOCAL_RANK="+strconv.Itoa(r), "WORLD_SIZE=2", "LOCAL_WORLD_SIZE=2",
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port))
		p.cmd.Stderr, p.cmd.Stdout = &p.stderr, p.stdout
		require.NoError(t, p.cmd.Start())
		t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
		ps = append(ps, p)
	}
	return ps
}

// runDP runs a scenario on two workers and returns their results.
func runDP(t *testing.T, sc dpScenario) [2]dpResult {
	out := t.TempDir()
	ps := startDP(t, sc, out)
	for r, p := range ps {
		require.NoError(t, p.cmd.Wait(), "rank %d: %s", r, p.stderr.String())
	}
	var res [2]dpResult
	for r := range res {
		b, err := os.ReadFile(filepath.Join(out, fmt.Sprintf("rank-%d.json", r)))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &res[r]))
	}
	return res
}

func floats(b []byte) []float64 {
	out := make([]float64, len(b)/4)
	for i := range out {
		out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
	}
	return out
}

// TestDataParallelMatchesOneProcess: after 8 steps on two ranks every rank holds the
// same weights (bit for bit), equal to one process training on the union of the ranks'
// batches to float32 rounding, for AdamW (with clipping), BlockLLM (with reselections:
// the same selections on both ranks and in the single process) and BAdam (random order).
func TestDataParallelMatchesOneProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for _, method := range []string{"adamw", "blockllm", "badam"} {
		t.Run(method, func(t *testing.T) {
			sc := dpScenario{Method: method}
			dp := runDP(t, sc)
			one := dpRun(t, sc, nil)
			assert.Equal(t, dp[0].Weights, dp[1].Weights, "the ranks' weights are the same")
			assert.InDeltaSlice(t, floats(one.Weights), floats(dp[0].Weights), 2e-5, "two ranks vs one process")
			assert.NotEqual(t, floats(newToyWeights(t)), floats(one.Weights), "the weights moved")
			if method == "blockllm" {
				assert.Equal(t, dp[0].Selections, dp[1].Selections)
				assert.Equal(t, one.Selections, dp[0].Selections)
				assert.GreaterOrEqual(t, len(one.Selections), 2, "a reselection within the steps")
			}
		})
	}
}

func newToyWeights(t *testing.T) []byte {
	m := newToy(t, toyOpts{}, 11)
	var w []byte
	for _, p := range m.Parameters() {
		w = append(w, p.T.Bytes()...)
	}
	return w
}

// TestShardedStateZeRO1: with the Adam state sharded across the two ranks the weights are
// those of the unsharded run bit for bit, and each rank holds about half the state; also
// with 8-bit moments (each rank then keeps its own copy of the two 1 KiB maps).
func TestShardedStateZeRO1(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for _, method := range []string{"adamw", "blockllm", "adamw-8bit", "blockllm-8bit"} {
		full := runDP(t, dpScenario{Method: method})
		half := runDP(t, dpScenario{Method: method, Shard: true})
		assert.Equal(t, full[0].Weights, half[0].Weights, "%s: sharded vs unsharded", method)
		assert.Equal(t, half[0].Weights, half[1].Weights, method)
		sum := half[0].StateBytes + half[1].StateBytes
		var maps int64
		if strings.HasSuffix(method, "-8bit") {
			maps = 2 * 256 * 4
		}
		assert.Equal(t, full[0].StateBytes+maps, sum, "%s: the shards add up to the whole state", method)
		for r := range half {
			share := float64(half[r].StateBytes-maps) / float64(full[0].StateBytes-maps) // the moments
			assert.InDelta(t, 0.5, share, 0.15, "%s: rank %d's share", method, r)
		}
	}
}

// TestDataParallelResume: a two-rank run checkpointed and stopped at step 4, then resumed
// by two ranks, ends with the weights of the uninterrupted two-rank run, bit for bit;
// also with the state sharded.
func TestDataParallelResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for _, c := range []struct {
		method string
		shard  bool
	}{{"blockllm", false}, {"blockllm", true}, {"blockllm-8bit", true}} {
		whole := runDP(t, dpScenario{Method: c.method, Shard: c.shard})
		ck := t.TempDir()
		part := runDP(t, dpScenario{Method: c.method, Shard: c.shard, Ckpt: ck, StopAt: 4})
		assert.Equal(t, 4, part[0].Step)
		last, err := LatestCheckpoint(ck)
		require.NoError(t, err)
		assert.Equal(t, checkpointPath(ck, 4), last)
		rest := runDP(t, dpScenario{Method: c.method, Shard: c.shard, Ckpt: ck, Resume: true})
		assert.Equal(t, dpSteps, rest[0].Step)
		assert.Equal(t, whole[0].Weights, rest[0].Weights, "%s shard=%v: resumed vs uninterrupted", c.method, c.shard)
		assert.Equal(t, rest[0].Weights, rest[1].Weights)
	}
	// a checkpoint of two ranks is refused by one process, by name
	ck := t.TempDir()
	runDP(t, dpScenario{Method: "adamw", Ckpt: ck, StopAt: 2})
	m := newToy(t, toyOpts{}, 11)
	o := dpOptimizer(t, "adamw", m)
	defer o.Close()
	tr, err := NewTrainer(m, o, newFixedData(64, 4, 8, 6, 5), TrainConfig{Steps: 8, LR: 1e-2, CheckpointDir: ck})
	require.NoError(t, err)
	last, _ := LatestCheckpoint(ck)
	assert.ErrorContains(t, tr.Resume(last), "written by a run of 2 ranks, this one has 1")
}

// TestDataParallelLostPeer: when one worker is killed mid-run the other stops with an
// error naming the lost rank, within seconds, instead of hanging.
func TestDataParallelLostPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ps := startDP(t, dpScenario{Method: "adamw", Slow: true}, t.TempDir())
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(ps[0].stdout.String(), "step 2") {
		require.True(t, time.Now().Before(deadline), "no progress: %s", ps[0].stderr.String())
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, ps[1].cmd.Process.Signal(syscall.SIGKILL))
	killed := time.Now()
	done := make(chan error, 1)
	go func() { done <- ps[0].cmd.Wait() }()
	select {
	case err := <-done:
		require.Error(t, err, "rank 0 must fail")
		assert.Contains(t, ps[0].stderr.String(), "lost peer rank 1")
		t.Logf("rank 0 stopped %.1fs after the kill: %s", time.Since(killed).Seconds(), strings.TrimSpace(ps[0].stderr.String()))
	case <-time.After(60 * time.Second):
		t.Fatal("rank 0 still running 60s after its peer was killed")
	}
}
