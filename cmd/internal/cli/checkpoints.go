package cli

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/hf/nn"
)

// checkpoints sets up the checkpoints of one method's run under r.Out (--out): they go
// to out/<method>/checkpoints, r.SaveExtra adds config.json and tokenizer.json to each,
// and the temporaries an interrupted write left there are removed (and reported on
// r.Info, as name: label: ...) by the rank that owns the directory (r.Main). It returns
// out/<method>; "" when r.Out is empty (no checkpoints).
func checkpoints(cfg *blockllm.TrainConfig, r RunIn) (string, error) {
	if r.Out == "" {
		return "", nil
	}
	dir := filepath.Join(r.Out, r.Method)
	cfg.CheckpointDir = filepath.Join(dir, "checkpoints")
	cfg.SaveExtra = r.SaveExtra
	if !r.Main {
		return dir, nil
	}
	removed, err := blockllm.RemoveStaleTemporaries(cfg.CheckpointDir)
	if err != nil {
		return "", err
	}
	for _, rm := range removed {
		fmt.Fprintf(r.Info, "%s: %s: removed %s, left by an interrupted checkpoint write\n", r.Name, r.Label, filepath.Join(cfg.CheckpointDir, rm))
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
// under r.Out (checkpoints), the trainer, and the resume from r.Resume (resume). It
// returns the trainer and out/<method> ("" without --out).
func StartTrainer(m nn.Model, opt blockllm.Optimizer, d blockllm.Data, cfg blockllm.TrainConfig, r RunIn) (*blockllm.Trainer, string, error) {
	dir, err := checkpoints(&cfg, r)
	if err != nil {
		return nil, "", err
	}
	tr, err := blockllm.NewTrainer(m, opt, d, cfg)
	if err != nil {
		return nil, "", err
	}
	if err := resume(tr, cfg.CheckpointDir, r); err != nil {
		return nil, "", err
	}
	return tr, dir, nil
}

// resume continues tr from r.Resume (--resume): a checkpoint directory, or "latest" (the
// newest complete one under ckptDir; none there starts afresh), and reports on r.Info
// what it did, including the newer checkpoints of an abandoned timeline it set aside.
func resume(tr *blockllm.Trainer, ckptDir string, r RunIn) error {
	if r.Resume == "" {
		return nil
	}
	dir := r.Resume
	if dir == "latest" {
		var err error
		if dir, err = blockllm.LatestCheckpoint(ckptDir); err != nil {
			return err
		}
		if dir == "" {
			fmt.Fprintf(r.Info, "%s: %s: no checkpoint under %s, starting from scratch\n", r.Name, r.Label, ckptDir)
			return nil
		}
	}
	if err := tr.Resume(dir); err != nil {
		return err
	}
	fmt.Fprintf(r.Info, "%s: %s: resumed from %s at step %d\n", r.Name, r.Label, dir, tr.StepCount())
	if aside, steps := tr.SetAside(); len(steps) > 0 {
		fmt.Fprintf(r.Info, "%s: %s: the newer checkpoints of the earlier timeline (steps %v) moved to %s\n", r.Name, r.Label, steps, aside)
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
