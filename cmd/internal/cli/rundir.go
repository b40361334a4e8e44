package cli

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/blockllm/blockllm-go/blockllm"
)

// RunFlags holds the flags that keep a run's output and numbers safe: --overwrite,
// --resume-allow (resumable commands), --diverge-factor and --zero-grad-steps.
type RunFlags struct {
	Overwrite     bool
	ResumeAllow   string
	DivergeFactor float64
	ZeroGradSteps int
}

// Register defines the flags on fs; resumable adds --resume-allow.
func (r *RunFlags) Register(fs *flag.FlagSet, resumable bool) {
	fs.BoolVar(&r.Overwrite, "overwrite", false, "delete what --out holds from an earlier run and start afresh (without it, a directory\n"+
		"that holds another run is refused)")
	if resumable {
		fs.StringVar(&r.ResumeAllow, "resume-allow", "", "with --resume: comma list of flags whose value may differ from the checkpoint's run\n"+
			"(e.g. lr,steps; '*' for any); other differences are refused")
	}
	fs.Float64Var(&r.DivergeFactor, "diverge-factor", 5, "stop when the mean loss of the last 10 steps exceeds this many times that of the first 10\n"+
		"(the last good checkpoint is kept; 0: off)")
	fs.IntVar(&r.ZeroGradSteps, "zero-grad-steps", 20, "stop when the gradient norm is exactly 0 for this many steps in a row (0: off)")
}

// Validate checks the values.
func (r *RunFlags) Validate() error {
	switch {
	case r.DivergeFactor < 0 || math.IsNaN(r.DivergeFactor) || (r.DivergeFactor > 0 && r.DivergeFactor <= 1):
		return fmt.Errorf("--diverge-factor %g must be above 1 (0: off)", r.DivergeFactor)
	case r.ZeroGradSteps < 0:
		return fmt.Errorf("--zero-grad-steps %d must not be negative", r.ZeroGradSteps)
	}
	return nil
}

// Apply sets the guards and the settings that may change on resume in cfg.
func (r *RunFlags) Apply(cfg *blockllm.TrainConfig) {
	cfg.DivergeFactor = r.DivergeFactor
	cfg.ZeroGradSteps = r.ZeroGradSteps
	cfg.AllowChanged = SplitList(r.ResumeAllow)
}

// OpenOut takes --out for a run of command: it is created, locked for this process and
// labelled with settings (see blockllm.OpenRunDir). resume continues the run it holds;
// otherwise a directory holding another run is refused unless --overwrite.
func (r *RunFlags) OpenOut(dir, command string, settings map[string]string, resume bool) (*blockllm.RunDir, error) {
	mode := blockllm.NewRun
	switch {
	case resume && r.Overwrite:
		return nil, fmt.Errorf("--resume and --overwrite contradict each other")
	case resume:
		mode = blockllm.ResumeRun
	case r.Overwrite:
		mode = blockllm.OverwriteRun
	}
	return blockllm.OpenRunDir(dir, blockllm.RunInfo{Command: command, Settings: settings}, mode)
}

// Settings formats the values that define a run, for blockllm.TrainConfig.Settings and
// run.json: strings as they are, numbers in their shortest exact form.
func Settings(kv ...any) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		switch v := kv[i+1].(type) {
		case string:
			m[k] = v
		case float64:
			m[k] = strconv.FormatFloat(v, 'g', -1, 64)
		case int:
			m[k] = strconv.Itoa(v)
		case uint64:
			m[k] = strconv.FormatUint(v, 10)
		case bool:
			m[k] = strconv.FormatBool(v)
		default:
			m[k] = fmt.Sprint(v)
		}
	}
	return m
}

// CheckOutputFile checks, before any work, that path can be written: its directory is
// created when missing, and a file can be made there; exts, when given, are the
// extensions accepted (".png", ...).
func CheckOutputFile(flagName, path string, exts ...string) error {
	if path == "" {
		return nil
	}
	if len(exts) > 0 {
		ok := false
		for _, e := range exts {
			ok = ok || strings.EqualFold(filepath.Ext(path), e)
		}
		if !ok {
			return fmt.Errorf("%s %s: the file name must end in %s", flagName, path, strings.Join(exts, ", "))
		}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", flagName, err)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s %s is a directory", flagName, path)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("%s %s: cannot write there: %w", flagName, path, err)
	}
	f.Close()
	return os.Remove(f.Name())
}
