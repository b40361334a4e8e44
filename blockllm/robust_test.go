package blockllm

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// scalarModel has one weight w (initialised to 1) and the loss (c·w)², where the data
// chooses c per step: a scripted loss curve with gradient 2c²w (exactly 0 when c = 0).
type scalarModel struct{ *nn.Params }

func newScalarModel(t *testing.T) *scalarModel {
	m := &scalarModel{nn.NewParams("scalar")}
	m.Add("w", m.Store.FromFloat32([]float32{1}, 1), 0)
	t.Cleanup(m.Close)
	return m
}

func (m *scalarModel) Device() torch.Device { return torch.CPU }

func (m *scalarModel) Forward(s *torch.Scope, b *nn.Batch, _ bool) (*nn.Output, error) {
	var out *nn.Output
	err := torch.Try(func() {
		c := s.In(b.InputIDs).To(torch.F32).Sum()
		l := s.In(m.W(s, m.Get("w"))).Sum().Mul(c)
		out = &nn.Output{Loss: l.Mul(l)}
	})
	return out, err
}

// scriptData yields a [1, 1] batch holding c(step).
type scriptData struct {
	c func(step int) int64
	n int
}

func (d *scriptData) Next(s *torch.Scope) (*nn.Batch, error) {
	d.n++
	return &nn.Batch{InputIDs: s.FromInt64([]int64{d.c(d.n)}, 1, 1)}, nil
}
func (d *scriptData) State() (json.RawMessage, error) { return json.Marshal(d.n) }
func (d *scriptData) Restore(r json.RawMessage) error { return json.Unmarshal(r, &d.n) }

func runScript(t *testing.T, c func(int) int64, cfg TrainConfig) (*Result, error) {
	m := newScalarModel(t)
	o, err := NewAdamW(m, AdamConfig{})
	require.NoError(t, err)
	defer o.Close()
	return Train(context.Background(), m, o, &scriptData{c: c}, cfg, "")
}

// TestDivergenceGuard: a loss that jumps to 9 times its start stops the run once the
// last 10 steps' mean passes 5 times the first 10 steps'; a gradient of exactly 0 for
// 10 steps stops it at the 10th; the guards can be off; the
// error names the last good checkpoint, and no checkpoint of the diverged state is made.
func TestDivergenceGuard(t *testing.T) {
	dir := t.TempDir()
	jump := func(step int) int64 {
		if step > 12 {
			return 3 // loss 9
		}
		return 1 // loss 1
	}
	res, err := runScript(t, jump, TrainConfig{Steps: 50, LR: 1e-9, DivergeFactor: 5, CheckpointDir: dir, CheckpointEvery: 15})
	require.ErrorIs(t, err, ErrDiverged)
	// steps 13.. have loss 9; the guard compares two disjoint windows of 10, from step 20:
	// steps 11-20 hold 8 losses of 9 and 2 of 1, mean 7.4 > 5
	assert.Equal(t, 20, res.Step, "stopped at the first check, after step 20")
	assert.ErrorContains(t, err, "mean loss of steps 11-20, 7.4, is above 5 times that of the first 10 steps, 1")
	assert.ErrorContains(t, err, "last good checkpoint: "+checkpointPath(dir, 15))
	latest, _ := LatestCheckpoint(dir)
	assert.Equal(t, checkpointPath(dir, 15), latest, "no checkpoint after the divergence")

	res, err = runScript(t, func(int) int64 { return 0 }, TrainConfig{Steps: 50, LR: 1e-3, ZeroGradSteps: 10})
	require.ErrorIs(t, err, ErrDiverged)
	assert.ErrorContains(t, err, "exactly 0 for 10 steps")
	assert.ErrorContains(t, err, "none written")
	assert.Equal(t, 10, res.Step)

	res, err = runScript(t, jump, TrainConfig{Steps: 30, LR: 1e-9})
	require.NoError(t, err, "guards off")
	assert.Equal(t, 30, res.Step)
	_, err = NewTrainer(newScalarModel(t), nil, nil, TrainConfig{Steps: 1, LR: 1, DivergeFactor: 0.5})
	assert.Error(t, err)
	m := newScalarModel(t)
	o, _ := NewAdamW(m, AdamConfig{})
	defer o.Close()
	_, err = NewTrainer(m, o, &scriptData{c: jump}, TrainConfig{Steps: 1, LR: 1, DivergeFactor: 0.5})
	assert.ErrorContains(t, err, "must be above 1")
}

// TestResumeSettings: a checkpoint records the run's settings; resuming with another
// value of one is refused by name unless AllowChanged lists it.
func TestResumeSettings(t *testing.T) {
	dir := t.TempDir()
	c := func(int) int64 { return 1 }
	set := map[string]string{"lr": "0.001", "seq-len": "64"}
	_, err := runScript(t, c, TrainConfig{Steps: 4, LR: 1e-3, CheckpointDir: dir, Settings: set})
	require.NoError(t, err)
	ck := checkpointPath(dir, 4)
	resume := func(s map[string]string, allow []string) error {
		m := newScalarModel(t)
		o, _ := NewAdamW(m, AdamConfig{})
		defer o.Close()
		tr, err := NewTrainer(m, o, &scriptData{c: c}, TrainConfig{Steps: 8, LR: 1e-3, CheckpointDir: dir, Settings: s, AllowChanged: allow})
		require.NoError(t, err)
		return tr.Resume(ck)
	}
	assert.NoError(t, resume(set, nil))
	changed := map[string]string{"lr": "0.002", "seq-len": "64", "new-flag": "x"}
	err = resume(changed, nil)
	assert.ErrorContains(t, err, `--lr "0.002" (checkpoint: "0.001")`)
	assert.ErrorContains(t, err, "--resume-allow lr")
	assert.NoError(t, resume(changed, []string{"lr"}))
	assert.NoError(t, resume(changed, []string{"*"}))
}

// TestResumeOlderSetsAsideNewer: resuming step 2 when steps 4 and 6 exist moves 4 and 6
// into abandoned-<time>/ (nothing deleted), so that the new timeline's checkpoints and
// LatestCheckpoint are not confused with the old one's.
func TestResumeOlderSetsAsideNewer(t *testing.T) {
	dir := t.TempDir()
	c := func(int) int64 { return 1 }
	_, err := runScript(t, c, TrainConfig{Steps: 6, LR: 1e-3, CheckpointDir: dir, CheckpointEvery: 2})
	require.NoError(t, err)
	m := newScalarModel(t)
	o, _ := NewAdamW(m, AdamConfig{})
	defer o.Close()
	tr, err := NewTrainer(m, o, &scriptData{c: c}, TrainConfig{Steps: 6, LR: 1e-3, CheckpointDir: dir, CheckpointEvery: 2})
	require.NoError(t, err)
	require.NoError(t, tr.Resume(checkpointPath(dir, 2)))
	aside, steps := tr.SetAside()
	assert.Equal(t, []int{4, 6}, steps)
	assert.True(t, strings.HasPrefix(filepath.Base(aside), "abandoned-"), aside)
	assert.FileExists(t, filepath.Join(aside, "step-00000006", StateFile))
	latest, _ := LatestCheckpoint(dir)
	assert.Equal(t, checkpointPath(dir, 2), latest)
	_, err = tr.Run(context.Background())
	require.NoError(t, err)
	latest, _ = LatestCheckpoint(dir)
	assert.Equal(t, checkpointPath(dir, 6), latest)
}

// TestStaleTemporariesAndMode: the hidden directory a killed checkpoint write leaves is
// removed by RemoveStaleTemporaries (and nothing else is); checkpoints are 0755.
func TestStaleTemporariesAndMode(t *testing.T) {
	dir := t.TempDir()
	_, err := runScript(t, func(int) int64 { return 1 }, TrainConfig{Steps: 2, LR: 1e-3, CheckpointDir: dir})
	require.NoError(t, err)
	st, err := os.Stat(checkpointPath(dir, 2))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), st.Mode().Perm())
	stale := filepath.Join(dir, ".step-00000004.tmp-123456")
	require.NoError(t, os.MkdirAll(filepath.Join(stale, "x"), 0o700))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "notes"), 0o755))
	removed, err := RemoveStaleTemporaries(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{".step-00000004.tmp-123456"}, removed)
	assert.NoDirExists(t, stale)
	assert.DirExists(t, filepath.Join(dir, "notes"))
	assert.DirExists(t, checkpointPath(dir, 2))
	removed, err = RemoveStaleTemporaries(filepath.Join(dir, "missing"))
	assert.NoError(t, err)
	assert.Empty(t, removed)
}

// TestRunDir: one run at a time holds the directory; a new run refuses a directory that
// holds another run, resume keeps it, overwrite clears it.
func TestRunDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	info := RunInfo{Command: "pretrain", Settings: map[string]string{"lr": "0.001"}}
	a, err := OpenRunDir(dir, info, NewRun)
	require.NoError(t, err)
	_, err = OpenRunDir(dir, info, ResumeRun)
	assert.ErrorContains(t, err, "is in use by process")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "adamw", "checkpoints"), 0o755))
	require.NoError(t, a.Close())

	_, err = OpenRunDir(dir, info, NewRun)
	assert.ErrorContains(t, err, "holds the pretrain run started")
	assert.ErrorContains(t, err, `--lr "0.001"`)
	assert.ErrorContains(t, err, "--resume latest")
	assert.ErrorContains(t, err, "--overwrite")

	b, err := OpenRunDir(dir, RunInfo{Command: "pretrain", Settings: map[string]string{"lr": "9"}}, ResumeRun)
	require.NoError(t, err)
	assert.Equal(t, "0.001", b.Info.Settings["lr"], "resume keeps the recorded run")
	assert.DirExists(t, filepath.Join(dir, "adamw"))
	require.NoError(t, b.Close())

	c, err := OpenRunDir(dir, RunInfo{Command: "pretrain", Settings: map[string]string{"lr": "9"}}, OverwriteRun)
	require.NoError(t, err)
	assert.NoDirExists(t, filepath.Join(dir, "adamw"), "overwrite deletes the earlier run")
	assert.Equal(t, "9", c.Info.Settings["lr"])
	require.NoError(t, c.Close())

	// a directory with files but no run.json (an older version's output) is not taken over
	old := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(old, "model.safetensors"), nil, 0o644))
	_, err = OpenRunDir(old, info, NewRun)
	assert.ErrorContains(t, err, "files of an earlier run (model.safetensors)")
	_ = errors.New
}

// TestLRScheduledAmount: the scheduled learning rate, not only some rate, reaches the
// update: with a linear warmup of 2 steps the first step's rate is 0 (w stays 1) and the
// second's 0.5·lr; Adam's second update of a constant gradient g is then exactly
// rate·g/(|g|+eps) (both bias-corrected moments equal g and g²).
func TestLRScheduledAmount(t *testing.T) {
	m := newScalarModel(t)
	o, err := NewAdamW(m, AdamConfig{})
	require.NoError(t, err)
	defer o.Close()
	tr, err := NewTrainer(m, o, &scriptData{c: func(int) int64 { return 1 }}, TrainConfig{Steps: 4, LR: 1e-2, Schedule: Schedule{Kind: Linear, Warmup: 2}})
	require.NoError(t, err)
	w := func() float64 { return m.Get("w").T.Float64s()[0] }
	st, err := tr.Step()
	require.NoError(t, err)
	assert.Equal(t, 0.0, st.LR)
	assert.Equal(t, 1.0, w(), "rate 0 at warmup step 0")
	st, err = tr.Step()
	require.NoError(t, err)
	assert.Equal(t, 0.5e-2, st.LR)
	g := 2.0 // d/dw (w)² at w = 1
	assert.InDelta(t, 1-0.5e-2*g/(g+1e-8), w(), 1e-7, "the second update moves w by exactly the scheduled rate")
}
