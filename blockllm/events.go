package blockllm

import "time"

// Event is what a Trainer reports to its observers while it runs: one of *StartEvent,
// *StepEvent, *SelectionEvent, *EvalEvent, *CheckpointEvent, *SummaryEvent and
// *ErrorEvent. Events are delivered synchronously, in order, on the goroutine that
// runs the trainer; an observer must not keep the pointer after it returns.
type Event interface{ event() }

// Observer receives a Trainer's events (TrainConfig.Observers). The command layer's
// progress bar and JSON-lines writer are observers.
type Observer interface{ Observe(Event) }

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// StartEvent opens a run: Step steps are done already (more than 0 after a resume) of
// Steps.
type StartEvent struct {
	Method string
	Step   int
	Steps  int
}

// StepEvent reports an optimizer step (its statistics) and the run's throughput so far.
type StepEvent struct {
	StepStats
	// RunTokensPerSec is the tokens per second over the steps of this run so far.
	RunTokensPerSec float64
}

// SelectionEvent reports a new BlockLLM selection made at the start of step Step, with
// the memory account of that step.
type SelectionEvent struct {
	Step      int
	Selection Selection
	Memory    Memory
}

// EvalEvent reports the metrics of TrainConfig.Eval after step Step.
type EvalEvent struct {
	Step    int
	Metrics map[string]float64
}

// CheckpointEvent reports a checkpoint written after step Step into Path.
type CheckpointEvent struct {
	Step int
	Path string
}

// SummaryEvent closes a run that completed or was interrupted.
type SummaryEvent struct {
	Status Status
	Step   int
	// Loss is the last step's loss; NaN when no step ran.
	Loss         float64
	TokensPerSec float64
	// Memory is the last step's account with the run's peak.
	Memory     Memory
	Checkpoint string
	Elapsed    time.Duration
}

// ErrorEvent closes a run that failed at step Step (the steps completed before it) with
// Err; Checkpoint is the last good checkpoint ("" when none was written).
type ErrorEvent struct {
	Step       int
	Err        error
	Checkpoint string
}

func (*StartEvent) event()      {}
func (*StepEvent) event()       {}
func (*SelectionEvent) event()  {}
func (*EvalEvent) event()       {}
func (*CheckpointEvent) event() {}
func (*SummaryEvent) event()    {}
func (*ErrorEvent) event()      {}
