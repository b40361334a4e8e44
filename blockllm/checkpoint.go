package blockllm

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/hf/safetensors"
	"github.com/blockllm/blockllm-go/torch"
)

// Checkpoint files.
const (
	// ModelFile holds every model parameter under its Hugging Face name (or, above
	// TrainConfig.MaxShardBytes, shards indexed by model.safetensors.index.json, as
	// transformers' save_pretrained writes them).
	ModelFile = "model.safetensors"
	// OptimizerFile holds the optimizer's state tensors.
	OptimizerFile = "optimizer.safetensors"
	// StateFile holds the step, losses, optimizer metadata (selection, visit counts,
	// loss history), data position and RNG state as JSON. It is written last.
	StateFile = "trainer_state.json"
)

const checkpointVersion = 1

// checkpointState is StateFile's content.
type checkpointState struct {
	Version    int               `json:"version"`
	Method     string            `json:"method"`
	Step       int               `json:"step"`
	Steps      int               `json:"steps"`
	Tokens     int64             `json:"tokens"`
	Losses     []float64         `json:"losses"`
	Optimizer  json.RawMessage   `json:"optimizer"`
	Data       json.RawMessage   `json:"data"`
	Generators [][]byte          `json:"generators,omitempty"`
	Evals      []EvalRecord      `json:"evals,omitempty"`
	Settings   map[string]string `json:"settings,omitempty"`
	WorldSize  int               `json:"world_size,omitempty"`
	Saved      string            `json:"saved"`
}

func checkpointPath(root string, step int) string {
	return filepath.Join(root, fmt.Sprintf("step-%08d", step))
}

// LatestCheckpoint returns the complete checkpoint with the highest step under root
// ("step-N" directories holding StateFile), or "" when there is none.
func LatestCheckpoint(root string) (string, error) {
	steps, err := listCheckpoints(root)
	if err != nil || len(steps) == 0 {
		return "", err
	}
	return checkpointPath(root, steps[len(steps)-1]), nil
}

// listCheckpoints returns the steps of the complete checkpoints under root, ascending.
func listCheckpoints(root string) ([]int, error) {
	ents, err := os.ReadDir(root)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blockllm: %w", err)
	}
	var steps []int
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), "step-")
		if !ok || !e.IsDir() {
			continue
		}
		k, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, e.Name(), StateFile)); err == nil {
			steps = append(steps, k)
		}
	}
	sort.Ints(steps)
	return steps, nil
}

func pruneCheckpoints(root string, keep int) error {
	if keep <= 0 {
		return nil
	}
	steps, err := listCheckpoints(root)
	if err != nil {
		return err
	}
	for len(steps) > keep {
		if err := os.RemoveAll(checkpointPath(root, steps[0])); err != nil {
			return fmt.Errorf("blockllm: removing old checkpoint: %w", err)
		}
		steps = steps[1:]
	}
	return nil
}

// SaveCheckpoint writes a checkpoint of the current state to dir atomically: the files
// are assembled in a temporary sibling directory that is then renamed to dir (an
// existing dir is replaced).
func (t *Trainer) SaveCheckpoint(dir string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("blockllm: checkpoint: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+tmpMarker)
	if err != nil {
		return fmt.Errorf("blockllm: checkpoint: %w", err)
	}
	// MkdirTemp makes the directory private (0700); a checkpoint is ordinary output.
	if err := os.Chmod(tmp, 0o755); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("blockllm: checkpoint: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = os.RemoveAll(tmp)
		}
	}()
	err = catch(func() error {
		var ts []safetensors.Tensor
		for _, p := range t.model.Parameters() {
			x, err := nn.SafetensorsTensor(p.Name, p.T, 0)
			if err != nil {
				return err
			}
			ts = append(ts, x)
		}
		if _, err := safetensors.SaveSharded(tmp, ts, t.cfg.MaxShardBytes, nil); err != nil {
			return fmt.Errorf("blockllm: checkpoint: %w", err)
		}
		ost, err := t.opt.SaveState()
		if err != nil {
			return err
		}
		ts = ts[:0]
		for name, x := range ost.Tensors {
			y, err := nn.SafetensorsTensor(name, x, 0)
			if err != nil {
				return err
			}
			ts = append(ts, y)
		}
		if err := safetensors.Save(filepath.Join(tmp, OptimizerFile), ts, nil); err != nil {
			return fmt.Errorf("blockllm: checkpoint: %w", err)
		}
		ds, err := t.data.State()
		if err != nil {
			return fmt.Errorf("blockllm: checkpoint: data position: %w", err)
		}
		cs := checkpointState{Version: checkpointVersion, Method: t.opt.Name(), Step: t.step, Steps: t.cfg.Steps,
			Tokens: t.tokens, Losses: t.losses, Optimizer: ost.Meta, Data: ds, Evals: t.evals,
			Settings: t.cfg.Settings, WorldSize: t.worldSize(), Saved: time.Now().UTC().Format(time.RFC3339)}
		for _, g := range t.cfg.Generators {
			cs.Generators = append(cs.Generators, g.State())
		}
		if t.cfg.SaveExtra != nil {
			if err := t.cfg.SaveExtra(tmp); err != nil {
				return fmt.Errorf("blockllm: checkpoint: %w", err)
			}
		}
		b, err := json.MarshalIndent(cs, "", " ")
		if err != nil {
			return fmt.Errorf("blockllm: checkpoint: %w", err)
		}
		return writeSync(filepath.Join(tmp, StateFile), b)
	})
	if err != nil {
		return err
	}
	var old string
	if _, err := os.Stat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("blockllm: checkpoint: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir)
		}
		return fmt.Errorf("blockllm: checkpoint: %w", err)
	}
	done = true
	if old != "" {
		_ = os.RemoveAll(old)
	}
	t.lastCkpt = dir
	return nil
}

func writeSync(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("blockllm: checkpoint: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("blockllm: checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("blockllm: checkpoint: %w", err)
	}
	return f.Close()
}

// Resume restores the trainer, the model's weights, the optimizer, the data position
// and the generators from a checkpoint written by SaveCheckpoint. The model and
// optimizer must be of the same shape and method as those saved.
func (t *Trainer) Resume(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return fmt.Errorf("blockllm: resume: %w", err)
	}
	var cs checkpointState
	if err := json.Unmarshal(b, &cs); err != nil {
		return fmt.Errorf("blockllm: resume: %s: %w", filepath.Join(dir, StateFile), err)
	}
	if cs.Version != checkpointVersion {
		return fmt.Errorf("blockllm: resume: %s has version %d, want %d", filepath.Join(dir, StateFile), cs.Version, checkpointVersion)
	}
	if cs.Method != t.opt.Name() {
		return fmt.Errorf("blockllm: resume: checkpoint %s was written by method %q, not %q", dir, cs.Method, t.opt.Name())
	}
	if ws := max(cs.WorldSize, 1); ws != t.worldSize() {
		return fmt.Errorf("blockllm: resume: checkpoint %s was written by a run of %d ranks, this one has %d: resume with %d ranks "+
			"(--nproc-per-node %d), as another number would change what each step trains on", dir, ws, t.worldSize(), ws, ws)
	}
	if err := CompareSettings(t.cfg.Settings, cs.Settings, t.cfg.AllowChanged); err != nil {
		return fmt.Errorf("blockllm: resume from %s: %w", dir, err)
	}
	if len(cs.Generators) != len(t.cfg.Generators) {
		return fmt.Errorf("blockllm: resume: checkpoint has %d generator states, the trainer %d generators", len(cs.Generators), len(t.cfg.Generators))
	}
	if err := nn.CopyParams(dir, t.model.Parameters()); err != nil {
		return fmt.Errorf("blockllm: resume: %w", err)
	}
	err = torch.WithScope(func(s *torch.Scope) error {
		ts, err := nn.ReadTensors(s, filepath.Join(dir, OptimizerFile))
		if err != nil {
			return fmt.Errorf("blockllm: resume: %w", err)
		}
		return t.opt.LoadState(&State{Tensors: ts, Meta: cs.Optimizer})
	})
	if err != nil {
		return err
	}
	if err := t.data.Restore(cs.Data); err != nil {
		return fmt.Errorf("blockllm: resume: data position: %w", err)
	}
	for i, g := range t.cfg.Generators {
		if err := torch.Try(func() { g.SetState(cs.Generators[i]) }); err != nil {
			return fmt.Errorf("blockllm: resume: generator %d: %w", i, err)
		}
	}
	t.step, t.losses, t.tokens, t.evals = cs.Step, cs.Losses, cs.Tokens, cs.Evals
	t.lastCkpt = dir
	t.applied = false
	if t.cfg.CheckpointDir != "" && sameDir(filepath.Dir(dir), t.cfg.CheckpointDir) {
		if err := t.setAsideNewer(cs.Step); err != nil {
			return err
		}
	}
	return nil
}

// setAsideNewer moves the checkpoints newer than step out of the checkpoint directory
// into "abandoned-<time>": resuming an older step starts a new timeline, and its
// checkpoints must not be confused with (or pruned by the numbers of) the old one's.
// Nothing is deleted.
func (t *Trainer) setAsideNewer(step int) error {
	steps, err := listCheckpoints(t.cfg.CheckpointDir)
	if err != nil {
		return err
	}
	var newer []int
	for _, k := range steps {
		if k > step {
			newer = append(newer, k)
		}
	}
	if len(newer) == 0 {
		return nil
	}
	dst := filepath.Join(t.cfg.CheckpointDir, "abandoned-"+time.Now().UTC().Format("20060102T150405Z"))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("blockllm: resume: %w", err)
	}
	for _, k := range newer {
		src := checkpointPath(t.cfg.CheckpointDir, k)
		if err := os.Rename(src, filepath.Join(dst, filepath.Base(src))); err != nil {
			return fmt.Errorf("blockllm: resume: setting aside %s: %w", src, err)
		}
	}
	t.setAside, t.setAsideSteps = dst, newer
	return nil
}

// SetAside reports the checkpoints Resume moved aside because they were newer than the
// step resumed from (another timeline): the directory they are in now, and their steps.
func (t *Trainer) SetAside() (string, []int) { return t.setAside, t.setAsideSteps }

func sameDir(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

// tmpMarker is in the names of the directories checkpoints are assembled in.
const tmpMarker = ".tmp-"

// RemoveStaleTemporaries deletes the temporary directories that interrupted checkpoint
// writes left under root (".step-N.tmp-*", and their ".old" siblings), returning their
// names. Call it only while no other process writes checkpoints there (a RunDir's lock
// ensures that).
func RemoveStaleTemporaries(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blockllm: %w", err)
	}
	var removed []string
	for _, e := range ents {
		n := e.Name()
		if !e.IsDir() || !strings.HasPrefix(n, ".step-") || !strings.Contains(n, tmpMarker) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(root, n)); err != nil {
			return removed, fmt.Errorf("blockllm: removing a stale checkpoint temporary: %w", err)
		}
		removed = append(removed, n)
	}
	return removed, nil
}
