package blockllm

import (
	"fmt"
	"math"
)

// ScheduleKind is the shape of the learning-rate schedule after warmup.
type ScheduleKind int

const (
	// Constant keeps the peak learning rate.
	Constant ScheduleKind = iota
	// Linear decays linearly to MinRatio x peak at the last step.
	Linear
	// Cosine decays along a half cosine to MinRatio x peak at the last step.
	Cosine
)

// String returns "constant", "linear" or "cosine".
func (k ScheduleKind) String() string {
	switch k {
	case Constant:
		return "constant"
	case Linear:
		return "linear"
	case Cosine:
		return "cosine"
	}
	return fmt.Sprintf("ScheduleKind(%d)", int(k))
}

// ParseScheduleKind accepts "constant", "linear" and "cosine".
func ParseScheduleKind(s string) (ScheduleKind, error) {
	switch s {
	case "constant", "":
		return Constant, nil
	case "linear":
		return Linear, nil
	case "cosine":
		return Cosine, nil
	}
	return 0, fmt.Errorf("blockllm: unknown schedule %q (want constant, linear or cosine)", s)
}

// Schedule is a learning-rate schedule with linear warmup, following Hugging Face's
// get_{constant,linear,cosine}_schedule_with_warmup: the factor at 0-based step t is
// t/Warmup during warmup, then Constant: 1; Linear: (T - t)/(T - Warmup); Cosine:
// 0.5 (1 + cos(pi (t - Warmup)/(T - Warmup))), each mapped to MinRatio + (1 - MinRatio) x
// factor (MinRatio 0 is Hugging Face's schedule).
type Schedule struct {
	Kind     ScheduleKind
	Warmup   int     // warmup steps
	MinRatio float64 // floor as a fraction of the peak, in [0, 1]
}

// Validate checks the fields.
func (s Schedule) Validate() error {
	switch {
	case s.Kind < Constant || s.Kind > Cosine:
		return fmt.Errorf("blockllm: unknown schedule kind %d", int(s.Kind))
	case s.Warmup < 0:
		return fmt.Errorf("blockllm: negative warmup %d", s.Warmup)
	case !(s.MinRatio >= 0 && s.MinRatio <= 1):
		return fmt.Errorf("blockllm: schedule floor %g outside [0, 1]", s.MinRatio)
	}
	return nil
}

// Factor is the multiplier of the peak learning rate at 0-based step t of total steps.
func (s Schedule) Factor(t, total int) float64 {
	if t < s.Warmup {
		return float64(t) / float64(max(1, s.Warmup))
	}
	var f float64
	switch s.Kind {
	case Constant:
		return 1
	case Linear:
		f = max(0, float64(total-t)/float64(max(1, total-s.Warmup)))
	case Cosine:
		p := float64(t-s.Warmup) / float64(max(1, total-s.Warmup))
		f = 0.5 * (1 + math.Cos(math.Pi*min(p, 1)))
	}
	return s.MinRatio + (1-s.MinRatio)*f
}

// LR is peak x Factor(t, total).
func (s Schedule) LR(peak float64, t, total int) float64 { return peak * s.Factor(t, total) }
