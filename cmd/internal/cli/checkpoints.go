package cli

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/hf/nn"
)

// Checkpoints sets up the checkpoints of one method's run under out (--out): they go to
// out/<method>/checkpoints, saveExtra adds config.json and tokenizer.json to each, and
// the temporaries an interrupted write left there are removed (and reported on info, as
// name: label: ...) by the rank that owns the directory (main). It returns
// out/<method>; "" when out is empty (no checkpoints).
func Checkpoints(cfg *blockllm.TrainConfig, out, method string, saveExtra func(dir string) error, info io.Writer, name, label string, main bool) (string, error) {
	if out == "" {
		return "", nil
	}
	dir := filepath.Join(out, method)
	cfg.CheckpointDir = filepath.Join(dir, "checkpoints")
	cfg.SaveExtra = saveExtra
	if !main {
		return dir, nil
	}
	removed, err := blockllm.RemoveStaleTemporaries(cfg.CheckpointDir)
	if err != nil {
		return "", err
	}
	for _, r := range removed {
		fmt.Fprintf(info, "%s: %s: removed %s, left by an interrupted checkpoint write\n", name, label, filepath.Join(cfg.CheckpointDir, r))
	}
	return dir, nil
}

// RunIn says where one method's run keeps its checkpoints and how it reports: Out
// (--out, empty: no checkpoints), Method (the subdirectory), Resume (--resume),
// SaveExtra (config.json and tokenizer.json beside each checkpoint), Info, Name
// (the command) and Label (the method's label) for its messages, and Main (the rank
// that owns the directory).
type RunIn struct {
	Out, Method, Resume string
	SaveExtra           func(dir string) error
	Info                io.Writer
	Name, Label         string
	Main                bool
}

// StartTrainer starts one method's run as the training commands do: the checkpoints
// under r.Out (Checkpoints), the trainer, and the resume from r.Resume (Resume). It
// returns the trainer and out/<method> ("" without --out).
func StartTrainer(m nn.Model, opt blockllm.Optimizer, d blockllm.Data, cfg blockllm.TrainConfig, r RunIn) (*blockllm.Trainer, string, error) {
	dir, err := Checkpoints(&cfg, r.Out, r.Method, r.SaveExtra, r.Info, r.Name, r.Label, r.Main)
	if err != nil {
		return nil, "", err
	}
	tr, err := blockllm.NewTrainer(m, opt, d, cfg)
	if err != nil {
		return nil, "", err
	}
	if err := Resume(tr, r.Resume, cfg.CheckpointDir, r.Info, r.Name, r.Label); err != nil {
		return nil, "", err
	}
	return tr, dir, nil
}

// Resume continues tr from --resume: a checkpoint directory, or "latest" (the newest
// complete one under ckptDir; none there starts afresh), and reports on info what it did,
// including the newer checkpoints of an abandoned timeline it set aside.
func Resume(tr *blockllm.Trainer, resume, ckptDir string, info io.Writer, name, label string) error {
	if resume == "" {
		return nil
	}
	dir := resume
	if dir == "latest" {
		var err error
		if dir, err = blockllm.LatestCheckpoint(ckptDir); err != nil {
			return err
		}
		if dir == "" {
			fmt.Fprintf(info, "%s: %s: no checkpoint under %s, starting from scratch\n", name, label, ckptDir)
			return nil
		}
	}
	if err := tr.Resume(dir); err != nil {
		return err
	}
	fmt.Fprintf(info, "%s: %s: resumed from %s at step %d\n", name, label, dir, tr.StepCount())
	if aside, steps := tr.SetAside(); len(steps) > 0 {
		fmt.Fprintf(info, "%s: %s: the newer checkpoints of the earlier timeline (steps %v) moved to %s\n", name, label, steps, aside)
	}
	return nil
}

// SaveFinal saves a completed run's model in Hugging Face layout to methodDir/final,
// with the tokenizer, and says so on info.
func SaveFinal(save func(dir string) error, tokJSON []byte, methodDir string, info io.Writer, name, label string) error {
	final := filepath.Join(methodDir, "final")
	if err := save(final); err != nil {
		return err
	}
	if err := WriteTokenizer(final, tokJSON); err != nil {
		return err
	}
	fmt.Fprintf(info, "%s: %s: saved %s\n", name, label, final)
	return nil
}
