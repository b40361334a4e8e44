package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/torch"
)

// WriteJSON writes v as one JSON line.
func WriteJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// JSONFloat maps NaN and infinities to nil (JSON null), other values to themselves.
func JSONFloat(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

// JSONLines is a trainer observer that writes each event as a JSON line to W, with the
// fields of Extra (e.g. "method", "task") added: "step", "selection", "eval",
// "checkpoint", "summary" and "error" lines. A write error is kept and returned by Err.
type JSONLines struct {
	W     io.Writer
	Extra map[string]any

	mu  sync.Mutex
	err error
}

// Observe implements blockllm.Observer.
func (j *JSONLines) Observe(e blockllm.Event) {
	var v map[string]any
	switch e := e.(type) {
	case *blockllm.StepEvent:
		v = map[string]any{"event": "step", "step": e.Step, "loss": e.Loss, "lr": e.LR, "grad_norm": e.GradNorm,
			"tokens": e.Tokens, "ms": float64(e.Duration.Microseconds()) / 1000,
			"tokens_per_s": float64(e.Tokens) / e.Duration.Seconds(), "memory": e.Memory}
	case *blockllm.SelectionEvent:
		v = map[string]any{"event": "selection", "step": e.Step, "selection": e.Selection, "memory": e.Memory}
	case *blockllm.EvalEvent:
		v = map[string]any{"event": "eval", "step": e.Step, "metrics": e.Metrics}
	case *blockllm.CheckpointEvent:
		v = map[string]any{"event": "checkpoint", "step": e.Step, "path": e.Path}
	case *blockllm.SummaryEvent:
		v = map[string]any{"event": "summary", "status": e.Status.String(), "step": e.Step, "loss": JSONFloat(e.Loss),
			"tokens_per_s": e.TokensPerSec, "memory": e.Memory, "checkpoint": e.Checkpoint, "elapsed_s": e.Elapsed.Seconds()}
	case *blockllm.ErrorEvent:
		v = map[string]any{"event": "error", "step": e.Step, "error": e.Err.Error(), "checkpoint": e.Checkpoint}
	default:
		return
	}
	for k, x := range j.Extra {
		v[k] = x
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err == nil {
		j.err = WriteJSON(j.W, v)
	}
}

// Err is the first write error, if any.
func (j *JSONLines) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// Progress is a trainer observer that draws a progress bar on W (step, loss, learning
// rate, tokens/s, optimizer state and peak memory), prints a line for each BlockLLM
// selection, and a summary line at the end.
type Progress struct {
	W   io.Writer
	bar *progressbar.ProgressBar
}

// Observe implements blockllm.Observer.
func (p *Progress) Observe(e blockllm.Event) {
	switch e := e.(type) {
	case *blockllm.StartEvent:
		p.bar = progressbar.NewOptions(e.Steps, progressbar.OptionSetWriter(p.W),
			progressbar.OptionSetWidth(20), progressbar.OptionShowCount(),
			progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetPredictTime(true))
		_ = p.bar.Set(e.Step)
	case *blockllm.SelectionEvent:
		if p.bar != nil {
			_ = p.bar.Clear()
		}
		x := e.Selection
		fmt.Fprintf(p.W, "selection %d at step %d: %d tensors, %d of %d eligible elements (budget %d), %d new, %d left, %s of state freed; %s\n",
			x.Index, e.Step, len(x.Names), x.Elements, x.Eligible, x.Budget, x.Entered, x.Left, torch.FormatBytes(x.Freed), e.Memory)
	case *blockllm.StepEvent:
		if p.bar == nil {
			return
		}
		p.bar.Describe(fmt.Sprintf("loss %.4f lr %.2e %.0f tok/s opt %s peak %s", e.Loss, e.LR,
			e.RunTokensPerSec, torch.FormatBytes(e.Memory.OptimizerState), torch.FormatBytes(e.Memory.Peak)))
		_ = p.bar.Set(e.Step)
	case *blockllm.SummaryEvent:
		if p.bar != nil {
			_ = p.bar.Finish()
		}
		fmt.Fprintf(p.W, "\n%s after %d steps: loss %.4f, %.0f tokens/s; %s\n", e.Status, e.Step, e.Loss, e.TokensPerSec, e.Memory)
	case *blockllm.ErrorEvent:
		fmt.Fprintln(p.W)
	}
}
